"""`load_mllm`: a local LLaVA-OneVision folder (+ optional MIND-Edit checkpoint) -> `MindEditMLLM`.

The folder is a Hugging Face layout (``config.json`` with ``model_type: llava_onevision``, safetensors
weights, tokenizer and processor files), e.g. ``llava-hf/llava-onevision-qwen2-0.5b-ov-hf`` or
``-7b-ov-hf`` downloaded once with ``hf download ... --local-dir``, or the tiny test fixture.
Nothing is ever fetched from a hub: loading is ``local_files_only``.

Works on transformers >= 4.52 (module paths and the ``torch_dtype`` -> ``dtype`` kwarg differ in 5.x).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import apply_lora, check_base_model, load_head, read_checkpoint
from ..images import DEFAULT_MAX_SIDE
from ..safe_files import CHECKPOINT_FIX, MLLM_FOLDER_FIX, check_safetensors_files, check_safetensors_folder
from .runner import MindEditMLLM

log = logging.getLogger(__name__)

DTYPES = ("auto", "bf16", "fp16", "fp32")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "auto")
QUANTIZATIONS = (None, "none", "4bit", "8bit")
_EXPECTED = (
    "config.json (model_type 'llava_onevision'), model*.safetensors (or pytorch_model*.bin), "
    "tokenizer files (tokenizer.json / tokenizer_config.json) and preprocessor_config.json"
)


class MLLMFolderError(FileNotFoundError):
    """The MLLM folder is missing or is not a LLaVA-OneVision folder."""


def check_llava_onevision_folder(model_dir: str | Path) -> Path:
    """Validate the folder before transformers sees it, with an error that says what is missing."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise MLLMFolderError(
            f"MLLM folder not found: {path}. Expected a local LLaVA-OneVision folder with {_EXPECTED}, "
            "e.g. `hf download llava-hf/llava-onevision-qwen2-0.5b-ov-hf --local-dir <ComfyUI>/models/LLM/llava-onevision-qwen2-0.5b-ov-hf`."
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MLLMFolderError(
            f"{path} is not a Hugging Face model folder: config.json is missing. Expected {_EXPECTED}."
        )
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except ValueError as exc:
        raise MLLMFolderError(f"{config_file} is not valid JSON: {exc}.") from exc
    if model_type != "llava_onevision":
        raise MLLMFolderError(
            f"{path} holds a {model_type!r} model, not LLaVA-OneVision (model_type 'llava_onevision'). "
            "Use a llava-hf/llava-onevision-qwen2-*-ov-hf folder (the '-hf' conversions; the original "
            "lmms-lab repos use another layout)."
        )
    names = {p.name for p in path.iterdir()}
    problems = []
    if not any(
        n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in names
    ):
        problems.append("no weights (model*.safetensors or pytorch_model*.bin)")
    if not names & {"tokenizer.json", "tokenizer_config.json", "vocab.json"}:
        problems.append("no tokenizer files (tokenizer.json / tokenizer_config.json)")
    if not names & {"preprocessor_config.json", "processor_config.json"}:
        problems.append("no processor files (preprocessor_config.json)")
    if problems:
        raise MLLMFolderError(
            f"{path} is an incomplete LLaVA-OneVision folder: {'; '.join(problems)}. Expected {_EXPECTED}; "
            "re-run the download."
        )
    return path


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, else fp16 on GPUs, fp32 on the CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]


def _dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _quantization_config(quantization: str, compute_dtype: torch.dtype, device: torch.device):
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(
            f"quantization={quantization!r} needs the bitsandbytes package, which is not installed: "
            "`pip install bitsandbytes` (CUDA GPUs), or choose quantization=None."
        )
    if device.type != "cuda":
        raise ValueError(f"quantization={quantization!r} needs a CUDA device, got {device}.")
    from transformers import BitsAndBytesConfig

    skip = ["vision_tower", "multi_modal_projector", "lm_head"]
    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=skip,
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def load_mllm(
    model_dir: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    attn_implementation: str = "sdpa",
    quantization: str | None = None,
    checkpoint_dir: str | Path | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
    merge_lora: bool = True,
) -> MindEditMLLM:
    """Load a local LLaVA-OneVision folder and, optionally, a MIND-Edit checkpoint.

    ``device`` defaults to CUDA when available, else the CPU. ``quantization``: None, "4bit" or "8bit"
    (bitsandbytes, CUDA). The checkpoint's base model is checked (hidden size, layer count), its LoRA
    verified and merged (kept as a peft model when quantized), its head put on the same device in fp32.
    """
    from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

    path = check_llava_onevision_folder(model_dir)
    ckpt = read_checkpoint(checkpoint_dir) if checkpoint_dir else None
    if ckpt is not None:  # a damaged head or LoRA file is named before the (slow) base-model load
        check_safetensors_files(
            sorted(ckpt.path.rglob("*.safetensors")), what="checkpoint file", fix=CHECKPOINT_FIX
        )
    device = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    torch_dtype = resolve_dtype(dtype, device)
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {attn_implementation!r}."
        )
    if attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ImportError(
            "attn_implementation='flash_attention_2' needs the flash-attn package, which is not installed: "
            "`pip install flash-attn` (CUDA), or use 'sdpa'."
        )
    if quantization == "none":
        quantization = None
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")

    kwargs: dict[str, Any] = {_dtype_kwarg(): torch_dtype, "local_files_only": True}
    if attn_implementation != "auto":
        kwargs["attn_implementation"] = attn_implementation
    if quantization:
        kwargs["quantization_config"] = _quantization_config(quantization, torch_dtype, device)
        kwargs["device_map"] = {"": device.index if device.index is not None else 0}
    check_safetensors_folder(path, what="MLLM weights file", fix=MLLM_FOLDER_FIX)
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(str(path), **kwargs)
    if not quantization:
        model.to(device)
    model.eval()
    try:
        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise MLLMFolderError(
            f"Could not load the processor of {path}: {type(exc).__name__}: {exc}. The folder needs "
            "preprocessor_config.json, the tokenizer files and a chat template; LLaVA-OneVision's video "
            "processor also needs torchvision."
        ) from exc
    if (
        getattr(processor, "chat_template", None) is None
        and getattr(processor.tokenizer, "chat_template", None) is None
    ):
        raise MLLMFolderError(f"{path} has no chat template (chat_template.json / chat_template.jinja).")

    head = None
    layer = None
    if ckpt is not None:
        check_base_model(ckpt, model)
        if ckpt.has_lora:
            model = apply_lora(model, ckpt, merge=merge_lora and not quantization)
            model.eval()
        head = load_head(ckpt, device=device)
        layer = ckpt.layer
        log.info("MIND-Edit checkpoint %s loaded (variant %s, layer %s).", ckpt.path, ckpt.variant, layer)
    return MindEditMLLM(
        model, processor, head, layer=layer, max_side=max_side, model_dir=str(path), checkpoint=ckpt
    )
