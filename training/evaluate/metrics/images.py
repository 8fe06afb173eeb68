"""Image conversion shared by every metric: PIL -> RGB float tensor in [0, 1] at a recorded size.

Metrics are only comparable between runs (and with published numbers) when every image goes
through the same conversion, so there is exactly one: RGB, values in [0, 1], resized with PIL's
bicubic filter to `resolution` x `resolution` (the resolution is written into the report). No
torchvision: researchers scoring results may not have it installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

DEFAULT_RESOLUTION = 512
RESAMPLE_NAME = "bicubic"


def open_rgb(image: Image.Image | str | Path) -> Image.Image:
    """An RGB PIL image from a PIL image or a file path (alpha dropped, palette expanded)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"Image file not found: {path}")
        with Image.open(path) as opened:
            opened.load()
            return opened.convert("RGB")
    return image.convert("RGB")


def resize_square(image: Image.Image, resolution: int | None) -> Image.Image:
    """Resize to `resolution` x `resolution` (bicubic); `None` keeps the size unchanged."""
    if resolution is None or image.size == (resolution, resolution):
        return image
    return image.resize((resolution, resolution), Image.Resampling.BICUBIC)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """`[3, H, W]` float32 in [0, 1] from an RGB PIL image."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def load_metric_image(image: Image.Image | str | Path, resolution: int | None) -> torch.Tensor:
    """The one conversion every metric uses: RGB, resized, `[3, H, W]` in [0, 1]."""
    return pil_to_tensor(resize_square(open_rgb(image), resolution))


def load_metric_mask(mask: Image.Image | str | Path, resolution: int | None) -> torch.Tensor:
    """A `[H, W]` bool mask (True = the edit region) from a grayscale/RGB mask image.

    Resized with nearest-neighbour so the region stays binary; pixels > 127 count as inside.
    """
    if isinstance(mask, (str, Path)):
        with Image.open(mask) as opened:
            opened.load()
            mask_image = opened.convert("L")
    else:
        mask_image = mask.convert("L")
    if resolution is not None and mask_image.size != (resolution, resolution):
        mask_image = mask_image.resize((resolution, resolution), Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(mask_image) > 127)


def as_batch(images: torch.Tensor) -> torch.Tensor:
    """Accept `[3, H, W]` or `[B, 3, H, W]`; return `[B, 3, H, W]`."""
    if images.dim() == 3:
        return images.unsqueeze(0)
    if images.dim() == 4:
        return images
    raise ValueError(f"Expected an image tensor [3,H,W] or [B,3,H,W], got shape {list(images.shape)}.")


def check_pair(result: torch.Tensor, target: torch.Tensor) -> None:
    """Both images must have the same shape: metrics never resize silently."""
    if result.shape != target.shape:
        raise ValueError(
            f"Result and target have different shapes {list(result.shape)} vs {list(target.shape)}: "
            "load both with load_metric_image(..., resolution) so they share one size."
        )
