"""The supported MLLM families, looked up by ``config.json``'s ``model_type``.

Adding a family: a module here with one `MLLMFamily`, registered in `FAMILIES`, a fixture in
``devkit/fixtures`` and the family tests (see docs/MODELS.md).
"""

from __future__ import annotations

from typing import Any

from .base import PACK_MIN_TRANSFORMERS, MLLMFamily, UnsupportedTransformersError
from .gemma4 import GEMMA4
from .llava_onevision import LLAVA_ONEVISION
from .qwen2_5_vl import QWEN2_5_VL
from .qwen3_5 import QWEN3_5
from .qwen3_vl import QWEN3_VL

FAMILIES: dict[str, MLLMFamily] = {
    f.model_type: f for f in (LLAVA_ONEVISION, QWEN2_5_VL, QWEN3_VL, QWEN3_5, GEMMA4)
}


class UnsupportedFamilyError(ValueError):
    """A model whose ``model_type`` is not one of `FAMILIES`."""


def supported_summary() -> str:
    return ", ".join(f"{f.display_name} ('{f.model_type}')" for f in FAMILIES.values())


def family_for(model_type: str | None, *, where: str = "the model") -> MLLMFamily:
    """The family of a ``model_type``; a clear refusal listing the supported ones otherwise."""
    family = FAMILIES.get(str(model_type))
    if family is None:
        raise UnsupportedFamilyError(
            f"{where} holds a {model_type!r} model, which MIND-Edit does not support. Supported model_types: "
            f"{supported_summary()}. Use a Hugging Face folder of one of them (e.g. "
            f"{', '.join(f.example_repo for f in FAMILIES.values())}); for LLaVA-OneVision the '-hf' "
            "conversions (the original lmms-lab repos use another layout)."
        )
    return family


def family_of(model_or_config: Any) -> MLLMFamily:
    """The family of a transformers model (plain or peft-wrapped) or config."""
    config = getattr(model_or_config, "config", model_or_config)
    return family_for(getattr(config, "model_type", None))


def family_of_processor(processor: Any) -> MLLMFamily:
    """The family whose processor class ``processor`` is (or derives from); an error when several
    families share that class (Qwen3-VL and Qwen3.5): then the caller must name the model's family."""
    names = {cls.__name__ for cls in type(processor).__mro__}
    matches = [family for family in FAMILIES.values() if family.processor_class in names]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnsupportedFamilyError(
            f"{type(processor).__name__} is the processor of several MLLM families "
            f"({', '.join(f.display_name for f in matches)}): pass the model's family explicitly."
        )
    raise UnsupportedFamilyError(
        f"{type(processor).__name__} is not the processor of a supported MLLM family ({supported_summary()})."
    )


__all__ = [
    "FAMILIES",
    "GEMMA4",
    "LLAVA_ONEVISION",
    "MLLMFamily",
    "PACK_MIN_TRANSFORMERS",
    "QWEN2_5_VL",
    "QWEN3_5",
    "QWEN3_VL",
    "UnsupportedFamilyError",
    "UnsupportedTransformersError",
    "family_for",
    "family_of",
    "family_of_processor",
]
