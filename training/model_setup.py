"""Load the base MLLM for training and make the right parts trainable (LoRA or full fine-tuning).

Any supported family (`mindedit_core.mllm.families`): loading, the LoRA target pattern and the
decoder-layer lookup are the pack's own (`mindedit_core`), so training and inference cannot drift.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mindedit_core.checkpoint import lora_target_regex
from mindedit_core.mllm import family_of, find_decoder_layers
from mindedit_core.mllm import load_base_model as load_mllm_folder


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() else "fp32"
    return precision


def load_base_model(model_dir: str | Path, *, weights_dtype: torch.dtype, attn_implementation: str = "sdpa"):
    """``(model, processor)`` from a local folder of any supported family (no hub access)."""
    model, processor, _family = load_mllm_folder(
        model_dir, dtype=weights_dtype, attn_implementation=attn_implementation
    )
    return model, processor


def add_lora(model: nn.Module, *, r: int, alpha: int, dropout: float, layers: list[int] | None = None):
    """Wrap ``model`` with a trainable LoRA adapter (everything else frozen)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_regex(model, layers),
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    if trainable == 0:
        raise RuntimeError(
            f"LoRA found no module to adapt in the language model of {type(model).__name__} "
            f"(pattern {config.target_modules}): is this a supported MLLM family?"
        )
    return peft_model


def prepare_full_finetune(model: nn.Module, *, train_vision_tower: bool) -> nn.Module:
    """Train the language model (and LLaVA-OneVision's projector); the vision tower (SigLIP,
    Qwen's ``visual`` with its merger) only when asked."""
    tower = family_of(model).vision_modules[0]
    for name, param in model.named_parameters():
        in_vision = f"{tower}." in name
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
