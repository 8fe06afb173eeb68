"""`load_mllm`: a local folder of a supported VLM (+ optional MIND-Edit checkpoint) -> `MindEditMLLM`.

Supported families: `mindedit_core.mllm.families.FAMILIES`, chosen by ``config.json``'s ``model_type``
(each family names the transformers release it needs). Loading is
`loading.load_base_model` (local files only); this module adds the device, quantization and the
checkpoint (family and shape checked, LoRA verified and merged, head loaded).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..checkpoint import apply_lora, check_base_model, load_head, load_negative_embeds, read_checkpoint
from ..images import DEFAULT_MAX_SIDE
from ..safe_files import CHECKPOINT_FIX, check_safetensors_files
from .dtypes import resolve_dtype
from .loading import check_mllm_folder, load_base_model
from .options import PassOptions
from .quantization import check_quantization, quantization_config
from .runner import MindEditMLLM

log = logging.getLogger(__name__)


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
    """Load a local VLM folder and, optionally, a MIND-Edit checkpoint.

    ``device`` defaults to CUDA when available, else the CPU. ``dtype``: a `dtypes.DTYPE_NAMES` name,
    an alias (``bf16``...) or a torch dtype. ``quantization``: None/"none", "4bit" or "8bit"
    (bitsandbytes, CUDA). ``max_side``: the default image budget of later calls (each call may pass
    its own in `PassOptions`). The checkpoint's base model is checked (family, hidden size, layer
    count), its LoRA verified and merged (kept as a peft model when quantized), its head put on the
    same device in fp32.
    """
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
    quantization = check_quantization(quantization, device)
    _, family = check_mllm_folder(model_dir)
    quant_config = device_map = None
    if quantization:
        quant_config = quantization_config(quantization, torch_dtype, family)
        device_map = {"": device.index if device.index is not None else 0}
    model, processor, family = load_base_model(
        model_dir,
        dtype=torch_dtype,
        attn_implementation=attn_implementation,
        quantization_config=quant_config,
        device_map=device_map,
    )
    if not quantization:
        model.to(device)
    model.eval()

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
        model,
        processor,
        head,
        layer=layer,
        default_options=PassOptions(max_image_side=max_side),
        model_dir=str(Path(model_dir).expanduser()),
        checkpoint=ckpt,
        family=family,
        negative_embeds=load_negative_embeds(ckpt) if ckpt is not None else None,
    )
