"""The supported MLLM families, looked up by ``config.json``'s ``model_type``.

Adding a family: a module here with one `MLLMFamily` (its facts, releases and image budget),
registered in `FAMILIES` below, a fixture in ``devkit/fixtures`` and the tests' family list
(``tests/fixtures_mllm.py``); texts, tooltips, the download catalogue and the docs' tables are derived
from the family objects (see docs/MODELS.md; ``python -m devkit.family_docs`` rewrites the tables).
"""

from __future__ import annotations

from typing import Any

from .base import PACK_MIN_TRANSFORMERS, MLLMFamily, Release, UnsupportedTransformersError, check_family
from .gemma4 import GEMMA4
from .llava_onevision import LLAVA_ONEVISION
from .qwen2_5_vl import QWEN2_5_VL
from .qwen3_5 import QWEN3_5
from .qwen3_vl import QWEN3_VL

# The family table: order is the order of every list shown to users (catalogue, docs, errors).
FAMILIES: dict[str, MLLMFamily] = {
    f.model_type: f for f in (LLAVA_ONEVISION, QWEN2_5_VL, QWEN3_VL, QWEN3_5, GEMMA4)
}


class UnsupportedFamilyError(ValueError):
    """A model whose ``model_type`` is not one of `FAMILIES`."""


def family_names(conjunction: str = "or") -> str:
    """``"LLaVA-OneVision, Qwen2.5-VL or Qwen3-VL"``: every family's display name, for texts."""
    names = [f.display_name for f in FAMILIES.values()]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def supported_summary() -> str:
    return ", ".join(f"{f.display_name} ('{f.model_type}')" for f in FAMILIES.values())


def releases() -> list[tuple[MLLMFamily, Release]]:
    """Every release of every family, in table order (the download catalogue's VLM rows)."""
    return [(family, release) for family in FAMILIES.values() for release in family.releases]


def family_for(model_type: str | None, *, where: str = "the model") -> MLLMFamily:
    """The family of a ``model_type``; a clear refusal listing the supported ones otherwise."""
    family = FAMILIES.get(str(model_type))
    if family is None:
        notes = "".join(f"; for {f.display_name} {f.folder_note}" for f in FAMILIES.values() if f.folder_note)
        raise UnsupportedFamilyError(
            f"{where} holds a {model_type!r} model, which MIND-Edit does not support. Supported model_types: "
            f"{supported_summary()}. Use a Hugging Face folder of one of them (e.g. "
            f"{', '.join(f.example_repo for f in FAMILIES.values())}){notes}."
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
    "Release",
    "UnsupportedFamilyError",
    "UnsupportedTransformersError",
    "check_family",
    "family_for",
    "family_names",
    "family_of",
    "family_of_processor",
    "releases",
]
