"""`PassOptions`: the per-call settings of one MLLM pass, passed as an argument (never set on the model).

One default per setting: ``max_new_tokens`` 200 (the refine nodes' widget default; an answer of two
prompts normally stops well before it) and ``max_image_side`` 384 (`mindedit_core.images.DEFAULT_MAX_SIDE`:
LLaVA-OneVision's one tile + base view; each family's token counts are its ``image_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..images import DEFAULT_MAX_SIDE
from ..prompt_styles import SD_TAGS, style_named

DEFAULT_MAX_NEW_TOKENS = 200


@dataclass(frozen=True)
class PassOptions:
    """``seed`` (sampling and tie-breaking), ``max_new_tokens``, ``max_image_side`` (the image budget:
    longest side in px before the processor; None keeps the size), ``do_sample`` / ``temperature``,
    ``style`` (the output style's name, `mindedit_core.prompt_styles`: ``"sd_tags"`` or
    ``"edit_instruction"``)."""

    seed: int = 0
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    max_image_side: int | None = DEFAULT_MAX_SIDE
    do_sample: bool = False
    temperature: float = 0.7
    style: str = SD_TAGS.name

    def __post_init__(self) -> None:
        style_named(self.style)  # an unknown style is refused here, before any model runs
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.max_image_side is not None and self.max_image_side < 1:
            raise ValueError(
                f"max_image_side must be a positive number of pixels or None, got {self.max_image_side}."
            )

    def with_overrides(self, **overrides) -> PassOptions:
        """A copy with the given fields changed; unknown names are refused (typos must not be ignored)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"Unknown MLLM pass option(s) {unknown}; known: {sorted(known)}.")
        return replace(self, **overrides) if overrides else self
