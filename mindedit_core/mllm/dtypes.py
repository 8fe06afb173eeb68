"""Weight precision names and their resolution: one table for the loader node, `load_mllm` and scripts.

The canonical names are the loader node's widget values (saved workflows store them): ``auto``,
``bfloat16``, ``float16``, ``float32``. The short spellings ``bf16`` / ``fp16`` / ``fp32`` are
accepted as aliases (scripts and training configs use them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DTYPE_NAMES = ("auto", "bfloat16", "float16", "float32")
_BY_NAME = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def default_auto_dtype(device: torch.device) -> torch.dtype:
    """``auto`` outside ComfyUI: bf16 on GPUs that support it, else fp16 on GPUs, fp32 on the CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def resolve_dtype(
    dtype: str | torch.dtype,
    device: torch.device,
    *,
    auto: Callable[[torch.device], torch.dtype] = default_auto_dtype,
) -> torch.dtype:
    """A dtype name (or a torch dtype, returned as is) -> the torch dtype; ``auto`` asks ``auto(device)``
    (ComfyUI passes its own choice for the compute device)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _ALIASES.get(dtype, dtype)
    if name == "auto":
        return auto(device)
    if name not in _BY_NAME:
        raise ValueError(f"dtype must be one of {DTYPE_NAMES} (or {tuple(_ALIASES)}), got {dtype!r}.")
    return _BY_NAME[name]
