"""The artist gets back the size they gave: pad for the VAE, then crop and paste the edit.

SD1.5's VAE works on multiples of 8 px, and ComfyUI's VAE Encode silently crops anything else
(517x389 comes back 512x384, centred). `pad_to_multiple` extends the image at the right and bottom
edges (edge pixels repeated) so nothing is cut; `paste_edit` crops the decoded edit back to the
source's size and pastes it through the edit mask: outside the mask every pixel is the source's,
exactly. Images are ComfyUI ``IMAGE`` tensors ``[B,H,W,C]``, masks ``[B,H,W]``, floats in 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .masks import fit_to

VAE_MULTIPLE = 8


def size_str(image: torch.Tensor) -> str:
    return f"{image.shape[2]}x{image.shape[1]}"


def pad_to_multiple(image: torch.Tensor, multiple: int = VAE_MULTIPLE) -> torch.Tensor:
    """``image`` padded at the right and bottom (edge replicated) to multiples of ``multiple``."""
    _check_image(image, "image")
    height, width = image.shape[1:3]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    channels_first = image.movedim(-1, 1)
    padded = torch.nn.functional.pad(channels_first, (0, pad_w, 0, pad_h), mode="replicate")
    return padded.movedim(1, -1)


@dataclass(frozen=True)
class PastedEdit:
    image: torch.Tensor
    status: str


def paste_edit(source: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor | None = None) -> PastedEdit:
    """The edit at the source's size, pasted through ``mask`` (None: the whole edit is kept).

    A larger edit (padded for the VAE) is cropped from its top-left corner; a smaller one (cropped
    by VAE Encode) is resized back, which shifts it by a few pixels: the status says so and how to
    avoid it.
    """
    _check_image(source, "source")
    _check_image(edited, "edited image")
    height, width = source.shape[1:3]
    notes = []
    if edited.shape[1] >= height and edited.shape[2] >= width:
        if edited.shape[1:3] != source.shape[1:3]:
            notes.append(f"the edit ({size_str(edited)}, padded for the VAE) was cropped back")
        edited = edited[:, :height, :width, :]
    else:
        notes.append(
            f"WARNING: the edit came back {size_str(edited)} (VAE Encode crops to multiples of 8) and was "
            "resized to the source; put 'MIND-Edit Pad for VAE' before VAE Encode to keep pixels in place"
        )
        resized = torch.nn.functional.interpolate(
            edited.movedim(-1, 1), size=(height, width), mode="bicubic", align_corners=False
        )
        edited = resized.movedim(1, -1).clamp(0, 1)
    edited = edited.to(source.dtype)
    if source.shape[0] != edited.shape[0] and source.shape[0] == 1:
        source = source.expand(edited.shape[0], -1, -1, -1)
    if mask is None:
        out = edited
    else:
        weight, note = fit_to(mask, height, width, "the paste mask")
        if note:
            notes.append(note)
        weight = weight.to(source.dtype).unsqueeze(-1)
        if weight.shape[0] not in (1, source.shape[0]):
            weight = weight[:1]
        out = source * (1.0 - weight) + edited * weight
    status = "; ".join([f"size: {width}x{height}, as given", *notes])
    return PastedEdit(image=out, status=status)


def _check_image(image: torch.Tensor, what: str) -> None:
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{what}: expected a ComfyUI IMAGE shaped [B,H,W,C], got shape {list(image.shape)}.")
