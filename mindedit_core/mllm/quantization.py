"""bitsandbytes 4-/8-bit loading: the option names, the CUDA-only check and the transformers config."""

from __future__ import annotations

import importlib.util

import torch

from .families import MLLMFamily

QUANTIZATIONS = ("none", "8bit", "4bit")


class QuantizationUnavailableError(RuntimeError):
    """4-/8-bit loading was asked for where bitsandbytes cannot run (no CUDA device)."""


def normalize_quantization(quantization: str | None) -> str | None:
    """``None`` / ``"none"`` -> None; ``"4bit"`` / ``"8bit"`` as is; anything else is refused."""
    if quantization in (None, "none"):
        return None
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS} (or None), got {quantization!r}.")
    return quantization


def check_quantization(quantization: str | None, device: torch.device) -> str | None:
    """Refuse quantization off CUDA or without bitsandbytes, before any weight is read."""
    quantization = normalize_quantization(quantization)
    if quantization is None:
        return None
    if device.type != "cuda":
        raise QuantizationUnavailableError(
            f"MIND-Edit: {quantization} quantization needs a CUDA GPU (bitsandbytes), but the MLLM would run "
            f"on {device}. Set quantization to 'none'."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(
            f"MIND-Edit: {quantization} quantization needs the bitsandbytes package, which is not installed: "
            "`pip install bitsandbytes` (CUDA GPUs), or set quantization to 'none'."
        )
    return quantization


def quantization_config(quantization: str, compute_dtype: torch.dtype, family: MLLMFamily):
    """A ``BitsAndBytesConfig`` that keeps the vision tower, projector and LM head in full precision."""
    from transformers import BitsAndBytesConfig

    skip = [*family.vision_modules, "lm_head"]
    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=skip,
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
