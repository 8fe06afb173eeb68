"""Mask polarity: which pixel value marks the region to edit.

Datasets disagree. HumanEdit's own tools treat pixels equal to 0 (black, after a grayscale
conversion) as the edit region; inpainting pipelines (diffusers, ComfyUI) expect white = edit. Every
reader therefore records the polarity of its masks and `normalise_mask` converts to the canonical
form used everywhere else in this package: an ``L`` image, 255 inside the edit region, 0 outside.

``auto`` picks the polarity that makes the edit region the smaller part of the image (edits are
local); it warns, because a large edit (e.g. "replace the background") defeats the heuristic.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from PIL import Image

MaskPolarity = Literal["white_is_edit", "black_is_edit", "auto"]
MASK_POLARITIES: tuple[str, ...] = ("white_is_edit", "black_is_edit", "auto")

log = logging.getLogger(__name__)


def check_polarity(polarity: str) -> MaskPolarity:
    if polarity not in MASK_POLARITIES:
        raise ValueError(f"Unknown mask polarity {polarity!r}: expected one of {MASK_POLARITIES}.")
    return polarity  # type: ignore[return-value]


def normalise_mask(mask: Image.Image, polarity: MaskPolarity) -> Image.Image:
    """Binarise ``mask`` (threshold 128) and return it with 255 = edit region."""
    check_polarity(polarity)
    values = np.asarray(mask.convert("L"))
    white = values >= 128
    if polarity == "white_is_edit":
        edit = white
    elif polarity == "black_is_edit":
        edit = ~white
    else:
        edit = white if white.mean() <= 0.5 else ~white
        log.warning(
            "mask_polarity='auto': took the %s pixels as the edit region (the smaller part). Set the "
            "polarity explicitly if your edits cover more than half the image.",
            "white" if white.mean() <= 0.5 else "black",
        )
    return Image.fromarray(np.where(edit, 255, 0).astype(np.uint8), mode="L")
