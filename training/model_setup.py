"""Load the base MLLM for training and make the right parts trainable (LoRA or full fine-tuning)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from mindedit_core.mllm import check_llava_onevision_folder, find_decoder_layers

log = logging.getLogger(__name__)

LORA_MODULES = r"(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"


def lora_target_regex(layers: list[int] | None = None) -> str:
    """LoRA on the language model's attention and MLP projections only (never SigLIP's), optionally
    only on the given 0-based layers. Module paths differ across transformers versions, hence
    ``(?:model\\.)?``; the pattern matches `mindedit_core.checkpoint.LORA_TARGET_REGEX` when
    ``layers`` is None."""
    which = r"\d+" if layers is None else "(?:" + "|".join(str(i) for i in layers) + ")"
    return rf".*language_model\.(?:model\.)?layers\.{which}\.{LORA_MODULES}"


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() else "fp32"
    return precision


def load_base_model(model_dir: str | Path, *, weights_dtype: torch.dtype, attn_implementation: str = "sdpa"):
    """``(model, processor)`` from a local LLaVA-OneVision folder (no hub access)."""
    from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

    path = check_llava_onevision_folder(model_dir)
    try:
        model = LlavaOnevisionForConditionalGeneration.from_pretrained(
            str(path), dtype=weights_dtype, attn_implementation=attn_implementation, local_files_only=True
        )
    except TypeError:  # transformers < 4.56 names it torch_dtype
        model = LlavaOnevisionForConditionalGeneration.from_pretrained(
            str(path),
            torch_dtype=weights_dtype,
            attn_implementation=attn_implementation,
            local_files_only=True,
        )
    processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    return model, processor


def add_lora(model: nn.Module, *, r: int, alpha: int, dropout: float, layers: list[int] | None = None):
    """Wrap ``model`` with a trainable LoRA adapter (everything else frozen)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=lora_target_regex(layers), bias="none"
    )
    peft_model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    if trainable == 0:
        raise RuntimeError(
            "LoRA found no module to adapt in the language model: is this a LLaVA-OneVision model? "
            f"(pattern {config.target_modules})"
        )
    return peft_model


def prepare_full_finetune(model: nn.Module, *, train_vision_tower: bool) -> nn.Module:
    """Train the language model (and projector); the SigLIP tower only when asked."""
    for name, param in model.named_parameters():
        in_vision = "vision_tower" in name
        param.requires_grad = train_vision_tower or not in_vision
    return model


def num_layers(model: nn.Module) -> int:
    return len(find_decoder_layers(model))


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Non-reentrant checkpointing: keeps the layer-m hook's tensor attached to the graph and needs no
    input-grad tricks with frozen embeddings."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    target.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(target, "config"):
        target.config.use_cache = False
