"""FSDP's transformer auto-wrap classes, looked up from the loaded model of any MLLM family.

FSDP shards the model in units: one per language-model decoder layer and one per vision-encoder
layer (the rest, embeddings, projector and the vision head, sits in the root unit). Which classes
those are differs per family and per transformers release (LLaVA-OneVision: ``Qwen2DecoderLayer`` +
``SiglipEncoderLayer``; Qwen2.5-VL: ``Qwen2_5_VLDecoderLayer`` + ``Qwen2_5_VLVisionBlock``; Qwen3-VL:
``Qwen3VLTextDecoderLayer`` + ``Qwen3VLVisionBlock``; Qwen3.5: ``Qwen3_5DecoderLayer`` + ``Qwen3_5VisionBlock``;
Gemma 4: ``Gemma4TextDecoderLayer`` + ``Gemma4VisionEncoderLayer``), so the accelerate config does not name them:
training reads them from the model (`layer_classes_to_wrap`) and hands them to accelerate's FSDP plugin
(`configure_fsdp_wrap`). DeepSpeed ZeRO partitions every parameter and needs no such classes.
"""

from __future__ import annotations

import logging

from torch import nn

from mindedit_core.mllm import family_of, find_decoder_layers

log = logging.getLogger(__name__)


def find_vision_layers(model: nn.Module) -> nn.ModuleList:
    """The vision encoder's layers: the longest ``ModuleList`` inside the family's vision tower
    (``vision_tower.encoder.layers`` for SigLIP, ``visual.blocks`` for the Qwen ViTs; Qwen3-VL's
    three DeepStack mergers are a shorter list beside the blocks)."""
    tower = family_of(model).vision_modules[0]
    best: nn.ModuleList | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or not len(module):
            continue
        if f".{tower}." in f".{name}" and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise TypeError(
            f"Could not find the vision encoder's layers under `{tower}` in {type(model).__name__}."
        )
    return best


def layer_classes_to_wrap(model: nn.Module) -> list[str]:
    """``[decoder layer class, vision encoder layer class]`` of a loaded (plain or peft) MLLM."""
    names = [type(find_decoder_layers(model)[0]).__name__, type(find_vision_layers(model)[0]).__name__]
    return list(dict.fromkeys(names))


def configure_fsdp_wrap(fsdp_plugin, model: nn.Module) -> list[str] | None:
    """Give accelerate's FSDP plugin the model's layer classes (when it wraps by transformer layer).

    Classes named in the accelerate config (``fsdp_transformer_layer_cls_to_wrap``) are kept when the
    model has them all; otherwise the run stops with the classes this model needs, instead of
    accelerate's bare "Could not find the transformer layer class". Returns the classes, or ``None``
    when the plugin uses another wrap policy."""
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    if fsdp_plugin.auto_wrap_policy is not transformer_auto_wrap_policy:
        return None
    derived = layer_classes_to_wrap(model)
    configured = fsdp_plugin.transformer_cls_names_to_wrap
    if configured:
        present = {type(m).__name__ for m in model.modules()}
        missing = [name for name in configured if name not in present]
        if missing:
            raise ValueError(
                f"The accelerate config wraps {', '.join(missing)}, which {type(model).__name__} does not "
                f"have. Remove fsdp_transformer_layer_cls_to_wrap from the config (training derives the "
                f"classes from the model: {','.join(derived)}) or set it to {','.join(derived)}."
            )
        return list(configured)
    fsdp_plugin.transformer_cls_names_to_wrap = derived
    log.info("FSDP wraps each %s.", " and each ".join(derived))
    return derived
