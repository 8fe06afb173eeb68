"""Checks of the source image where the pack first sees it: its size, a flat (blank) image, transparency.

A ComfyUI ``IMAGE`` is float ``[B,H,W,C]`` in 0..1. What can go wrong before any node fails on its own:

- Size. Below `MIN_SOURCE_SIDE` px a side leaves nothing to feather, encode or show the MLLM (a 1x1
  source fails deep inside core's ImageBlur with a padding error); above `MAX_SOURCE_PIXELS` VAE
  Encode alone asks for tens of GiB (8192x8192: a 32 GiB allocation). `check_source_size` refuses
  both with the fix, before any large allocation.
- One flat value. ComfyUI's Load Image turns a 16-bit greyscale PNG all white (it clips the 16-bit
  values to 8 bits); a fully transparent or failed export is one colour too. Editing it "works" and
  returns nonsense: `flat_source_warning` says so and names the likely cause.
- Transparency. Load Image drops the alpha channel (the pixels under it keep whatever colour was
  stored there, often black) and hands the alpha out as its MASK, ``1 - alpha``. In a graph that
  does not use that MASK the transparent area is edited like the rest: `transparency_warning` says
  so and how the image was flattened.
"""

from __future__ import annotations

import math

import torch

MIN_SOURCE_SIDE = 32
MAX_SOURCE_PIXELS = 4096 * 4096
# Fits SD1.5 (trained at 512 px) and keeps VAE Encode and sampling in a few GiB.
SUGGESTED_SIDE = 1024
# A source whose values all lie within two 8-bit levels is one flat colour to the eye (and to the edit).
FLAT_RANGE = 2.5 / 255.0
# Load Image's MASK is 1 - alpha: a pixel above this is (partly) transparent.
TRANSPARENT_LEVEL = 1.0 / 255.0


class SourceImageError(ValueError):
    """The source image cannot be edited as it is (the message says why and what to do)."""


def _size(image: torch.Tensor) -> tuple[int, int]:
    if image.ndim == 4:
        return int(image.shape[1]), int(image.shape[2])
    if image.ndim == 3:
        return int(image.shape[0]), int(image.shape[1])
    raise SourceImageError(
        f"Expected a ComfyUI IMAGE shaped [B,H,W,C], got shape {list(image.shape)}: connect an image "
        "(e.g. Load Image's IMAGE output)."
    )


def source_size_problem(height: int, width: int) -> str | None:
    """Why a ``width x height`` source cannot be edited (None when it can)."""
    if min(height, width) < MIN_SOURCE_SIDE:
        return (
            f"the source image is {width}x{height} px; MIND-Edit needs at least {MIN_SOURCE_SIDE} px on each "
            f"side (the edit is encoded in 8 px blocks and the mask edge is feathered). Use a larger image, "
            f"or upscale it first (e.g. 'Upscale Image' to {SUGGESTED_SIDE} px)"
        )
    if height * width > MAX_SOURCE_PIXELS:
        scale = math.sqrt(MAX_SOURCE_PIXELS / (height * width))
        fits = f"{max(1, int(width * scale))}x{max(1, int(height * scale))}"
        gib = height * width * 512 / 2**30  # VAE Encode's first activations, float32
        return (
            f"the source image is {width}x{height} px ({height * width / 1e6:.1f} megapixels), above the "
            f"{MAX_SOURCE_PIXELS / 1e6:.1f} megapixels MIND-Edit accepts (VAE Encode alone would need about "
            f"{gib:.0f} GiB). Downscale it first, to at most {fits} px (SD1.5 edits best near "
            f"{SUGGESTED_SIDE} px: e.g. 'Upscale Image' / 'ImageScaleToTotalPixels' at 1 megapixel)"
        )
    return None


def check_source_size(image: torch.Tensor, *, where: str = "MIND-Edit") -> None:
    """Raise `SourceImageError` when the source is too small or too large to edit."""
    problem = source_size_problem(*_size(image))
    if problem:
        raise SourceImageError(f"{where}: {problem}.")


def flat_source_warning(image: torch.Tensor) -> str | None:
    """A warning when the (first) source image is one flat value, with the likely cause."""
    first = image[0] if image.ndim == 4 else image
    if first.numel() == 0:
        return None
    values = first.float()
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        return "WARNING: the source image holds NaN or infinite values: re-create or re-load it"
    if high - low > FLAT_RANGE:
        return None
    level = round(255 * (low + high) / 2)
    likely = (
        "If it is a 16-bit PNG (ComfyUI's Load Image turns 16-bit greyscale PNGs all white), save it as "
        "8-bit and load it again"
        if level >= 250
        else "Check the file (a failed export or a fully transparent image loads as one colour)"
    )
    return (
        f"WARNING: the source image is blank: every pixel has the same value (about {level} of 255), so "
        f"there is nothing to edit. {likely}"
    )


def transparency_warning(image: torch.Tensor, source_mask: torch.Tensor | None) -> str | None:
    """A warning when Load Image's MASK (``1 - alpha``) shows transparent pixels in the source."""
    if source_mask is None:
        return None
    mask = source_mask.float()
    if mask.ndim == 3:
        mask = mask[0]
    if mask.ndim != 2 or mask.numel() == 0:
        return None
    transparent = mask > TRANSPARENT_LEVEL
    share = float(transparent.float().mean())
    if share == 0.0:
        return None
    shown = ""
    first = image[0] if image.ndim == 4 else image
    if tuple(mask.shape) == tuple(first.shape[:2]):
        under = first[transparent].float().mean(dim=0)
        rgb = ", ".join(str(round(255 * float(v))) for v in under[:3])
        shown = f" (there: on average RGB {rgb})"
    return (
        f"WARNING: the source has transparency ({share:.1%} of it is transparent, or was painted in the "
        f"MaskEditor): Load Image dropped the alpha channel, so those pixels show the colour stored under "
        f"them{shown} and were edited like the rest. To edit only the visible part use the masked "
        "workflow ('MIND-Edit Edit Region'); to edit on a background, flatten the image onto it first"
    )
