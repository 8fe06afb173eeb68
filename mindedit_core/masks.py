"""The edit region: which mask an edit uses, at the image's size, and what the artist is told about it.

A mask reaches a workflow three ways: painted on the source in ComfyUI's MaskEditor (the source
Load Image's MASK, i.e. 1 - alpha), or as a mask file whose edit region is in its alpha channel
(transparent = edit, ComfyUI's convention; again Load Image's MASK) or in its red channel (white =
edit, a black/white PNG). `choose_edit_mask` takes them in that order and uses the first that
*carries* a mask (some pixels in, some out); a mask that covers everything is used only when no
other carries one, and no mask at all (or only empty ones) means a mask-free edit of the whole
image: the documented choice for an empty mask, said on the status line, never a silent
"nothing changed".

Every choice is reported: where the mask came from, the share of the image it covers (an inverted
mask shows as "covers 91 %"), and a resize when its size differs from the image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .images import MASK_THRESHOLD

# A pixel is in the edit region at this level or above (the MLLM's outline uses the same cut).
EDIT_LEVEL = MASK_THRESHOLD / 255.0
# Above this coverage the status suggests the mask may be inverted.
MOSTLY_EVERYTHING = 0.85

PAINTED = "painted on the source (MaskEditor)"
ALPHA = "the mask image's alpha (transparent = edit)"
RED = "the mask image's red channel (white = edit)"


@dataclass(frozen=True)
class EditMask:
    """The chosen region. ``mask``: ``[B,H,W]`` float 0..1 at the image's size, all zeros when none
    was given; ``region``: what the sampler may change (``mask``, or all ones for a mask-free edit)."""

    mask: torch.Tensor
    region: torch.Tensor
    source: str | None
    coverage: float
    notes: tuple[str, ...] = ()

    @property
    def mask_free(self) -> bool:
        return self.source is None

    @property
    def status(self) -> str:
        if self.mask_free:
            head = "mask: none painted or loaded (or empty): mask-free edit, the whole image may change"
        else:
            head = f"mask: {self.source}; the edit region covers {self.coverage:.1%} of the image"
            if self.coverage >= MOSTLY_EVERYTHING:
                head += " (most of it: if you meant the opposite, invert the mask)"
        return "; ".join((head, *self.notes))


def coverage(mask: torch.Tensor) -> float:
    """The share of pixels in the edit region (0..1)."""
    if mask.numel() == 0:
        return 0.0
    return float((mask >= EDIT_LEVEL).float().mean())


def as_mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """A ComfyUI MASK (``[H,W]`` or ``[B,H,W]``) as float ``[B,H,W]``."""
    mask = mask.float()
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(
            f"Expected a mask shaped [H,W] or [B,H,W] (ComfyUI MASK), got shape {list(mask.shape)}."
        )
    return mask


def red_channel(image: torch.Tensor) -> torch.Tensor:
    """The red channel of a ComfyUI IMAGE ``[B,H,W,C]`` as a mask ``[B,H,W]`` (white = edit)."""
    if image.ndim != 4:
        raise ValueError(f"Expected an IMAGE shaped [B,H,W,C], got shape {list(image.shape)}.")
    return image[..., 0].float()


def fit_to(mask: torch.Tensor, height: int, width: int, what: str) -> tuple[torch.Tensor, str | None]:
    """``mask`` at ``height x width``; a resize is returned with a note naming both sizes."""
    mask = as_mask_batch(mask)
    h, w = mask.shape[-2:]
    if (h, w) == (height, width):
        return mask, None
    resized = torch.nn.functional.interpolate(mask.unsqueeze(1), size=(height, width), mode="bilinear")
    note = f"{what} is {w}x{h}, the image {width}x{height}: the mask was resized to the image"
    if abs(w / h - width / height) > 0.01 * (width / height):
        note += " and stretched (other aspect ratio: check it is the mask for this image)"
    return resized.squeeze(1).clamp(0, 1), note


def choose_edit_mask(height: int, width: int, candidates: list[tuple[str, torch.Tensor | None]]) -> EditMask:
    """The edit region for an image of ``height x width`` from ``(source label, mask or None)``
    candidates, in priority order (see the module docstring)."""
    full: tuple[str, torch.Tensor, str | None] | None = None
    for label, mask in candidates:
        if mask is None:
            continue
        share = coverage(mask)
        if share == 0.0:
            continue
        fitted, note = fit_to(mask, height, width, "the mask")
        if share < 1.0:
            return _chosen(label, fitted, note)
        full = full or (label, fitted, note)
    if full is not None:
        return _chosen(*full)
    empty = torch.zeros((1, height, width))
    return EditMask(mask=empty, region=torch.ones_like(empty), source=None, coverage=0.0)


def _chosen(label: str, mask: torch.Tensor, note: str | None) -> EditMask:
    return EditMask(
        mask=mask, region=mask, source=label, coverage=coverage(mask), notes=(note,) if note else ()
    )
