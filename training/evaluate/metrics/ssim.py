"""SSIM (Wang et al. 2004) on RGB images in [0, 1]: 11x11 Gaussian window, sigma 1.5, data range 1.

Conventions (the ones scikit-image uses with ``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1``): K1 = 0.01, K2 = 0.03, population (not sample)
covariances, the SSIM map is computed per channel where the whole window fits inside the image
("valid" positions) and the mean over those positions and the three channels is the score.
Pure torch, float64, so it runs without scikit-image or torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .images import as_batch, check_pair

WINDOW_SIZE = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 1.0


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA) -> torch.Tensor:
    """A normalised 1-D Gaussian of `size` taps (float64)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    taps = torch.exp(-0.5 * (coords / sigma) ** 2)
    return taps / taps.sum()


def _blur_valid(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over `[N, C, H, W]`, keeping only positions where it fits."""
    channels = images.shape[1]
    horizontal = taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    blurred = F.conv2d(images, horizontal, groups=channels)
    return F.conv2d(blurred, vertical, groups=channels)


def ssim_map(result: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The per-pixel, per-channel SSIM map `[B, 3, H-10, W-10]` (valid positions only)."""
    check_pair(result, target)
    x, y = as_batch(result).double(), as_batch(target).double()
    if min(x.shape[-2:]) < WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {WINDOW_SIZE}x{WINDOW_SIZE} pixels; got {list(x.shape[-2:])}."
        )
    taps = gaussian_window()
    mu_x, mu_y = _blur_valid(x, taps), _blur_valid(y, taps)
    var_x = _blur_valid(x * x, taps) - mu_x**2
    var_y = _blur_valid(y * y, taps) - mu_y**2
    cov_xy = _blur_valid(x * y, taps) - mu_x * mu_y
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(result: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> list[float]:
    """Per-image mean SSIM for `[B,3,H,W]` (or `[3,H,W]`) tensors in [0, 1].

    `mask`: optional `[H, W]` / `[B, H, W]` bool; the map is averaged over the True pixels whose
    window fits inside the image (the mask is cropped by the window radius like the map).
    """
    values = ssim_map(result, target)
    if mask is None:
        return [float(v) for v in values.flatten(1).mean(dim=1)]
    if mask.shape[-2:] != result.shape[-2:]:
        raise ValueError(
            f"Mask size {list(mask.shape[-2:])} differs from the image size {list(result.shape[-2:])}."
        )
    if mask.dim() == 2:
        mask = mask.unsqueeze(0).expand(values.shape[0], -1, -1)
    radius = WINDOW_SIZE // 2
    cropped = mask[:, radius:-radius, radius:-radius].to(values.dtype).unsqueeze(1).expand_as(values)
    counts = cropped.flatten(1).sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("The SSIM mask selects no pixel (away from the image border) for an image.")
    return [float(v) for v in (values * cropped).flatten(1).sum(dim=1) / counts]
