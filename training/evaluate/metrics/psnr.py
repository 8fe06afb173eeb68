"""PSNR on RGB images in [0, 1] with data range 1 (the convention written into the report).

The mean squared error is taken over all pixels and channels of one image pair; identical images
give +inf (kept as inf, never clipped, so the report shows it). An optional boolean mask restricts
the error to the selected pixels (the "masked variant").
"""

from __future__ import annotations

import math

import torch

from .images import as_batch, check_pair

DATA_RANGE = 1.0


def psnr(result: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> list[float]:
    """Per-image PSNR in dB for `[B,3,H,W]` (or `[3,H,W]`) tensors in [0, 1].

    `mask`: optional `[H, W]` or `[B, H, W]` bool; only the True pixels enter the error.
    """
    check_pair(result, target)
    result_b, target_b = as_batch(result).double(), as_batch(target).double()
    squared = (result_b - target_b) ** 2
    if mask is None:
        mse = squared.flatten(1).mean(dim=1)
    else:
        weights = _mask_weights(mask, squared)
        count = weights.flatten(1).sum(dim=1)
        if bool((count == 0).any()):
            raise ValueError("The PSNR mask selects no pixel for at least one image.")
        mse = (squared * weights).flatten(1).sum(dim=1) / count
    return [math.inf if float(m) == 0.0 else 10.0 * math.log10(DATA_RANGE**2 / float(m)) for m in mse]


def _mask_weights(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a `[H,W]` / `[B,H,W]` mask to `like`'s `[B,C,H,W]` as 0/1 doubles."""
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(
            f"Mask size {list(mask.shape[-2:])} differs from the image size {list(like.shape[-2:])}."
        )
    return mask.to(like.dtype).unsqueeze(1).expand_as(like)
