"""Image preparation for the MLLM: any input -> an RGB PIL image of bounded size, mask optionally shown.

Inputs come from three worlds: PIL images (training, scripts), ComfyUI ``IMAGE`` tensors (float
``[B,H,W,C]`` or ``[H,W,C]`` in 0..1) and numpy arrays (float 0..1 or uint8). Masks are ComfyUI
``MASK`` tensors (``[B,H,W]`` or ``[H,W]``, 1 = edit), arrays (float 0..1 or uint8 0..255), or PIL
images (white = edit). A soft mask is cut at one half: pixels above it are the edit region.

Why resize: the image's visual tokens dominate the MLLM's time and memory, and the longest side is
the one budget every family understands. LLaVA-OneVision's anyres tiling turns a 1024 px image into
7,371 visual tokens but a 384 px one into 1,485 (one tile plus the base view); Qwen2.5-VL / Qwen3-VL
read one token per 28 / 32 px square (1,369 / 1,024 at 1024 px, 196 / 144 at 384 px). The default
maximum side is 384 for every family (docs/MODELS.md has the table).

How the mask is shown (a documented choice): the edit region is **outlined in magenta on the source
image** rather than passed as a second image. A second image would double the visual tokens and
need a multi-image prompt the base model handles less reliably; an outline costs no tokens, keeps
the pixels inside the region visible (the model must see what it is replacing), and magenta is rare
in photographs. The prompt text (`mindedit_core.prompting.refinement_request_text`) says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

DEFAULT_MAX_SIDE = 384
MASK_OUTLINE_RGB = (255, 0, 255)
# A mask pixel is in the edit region at this level (of 255) or above.
MASK_THRESHOLD = 128


def to_pil_rgb(image: Any) -> Image.Image:
    """PIL / numpy / torch image -> RGB PIL. RGBA is composited on white, greyscale and palette
    images are converted, a batch must hold exactly one image."""
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    array = _to_numpy(image)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"Expected a single image, got a batch of {array.shape[0]} (shape {list(array.shape)}): "
                "pass one image at a time."
            )
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"Expected an image shaped [H,W,C] or [1,H,W,C] with C in (1,3,4) (ComfyUI IMAGE layout), "
            f"got shape {list(array.shape)}."
        )
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    return _pil_to_rgb(Image.fromarray(array[:, :, 0] if mode == "L" else array, mode=mode))


def to_mask_array(mask: Any, size: tuple[int, int]) -> np.ndarray:
    """Any mask -> a boolean ``[H,W]`` array at ``size`` (width, height) of the image it belongs to."""
    img = Image.fromarray(_mask_levels(mask), mode="L")
    if img.size != tuple(size):
        img = img.resize(size, Image.NEAREST)
    return np.asarray(img) >= MASK_THRESHOLD


def resize_max_side(image: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most ``max_side``; ``None``/0 keeps the size."""
    if not max_side or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new_size, Image.BICUBIC)


def outline_mask(image: Image.Image, mask: np.ndarray, color=MASK_OUTLINE_RGB) -> Image.Image:
    """Draw the border of the mask region on the image (width ~1/100 of the longer side, >= 2 px)."""
    width = max(2, round(max(image.size) / 100))
    region = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    size = 2 * width + 1
    grown = region.filter(ImageFilter.MaxFilter(size))
    shrunk = region.filter(ImageFilter.MinFilter(size))
    border = (np.asarray(grown) > 0) & ~(np.asarray(shrunk) > 0)
    out = np.asarray(image.convert("RGB")).copy()
    out[border] = color
    return Image.fromarray(out, mode="RGB")


def prepare_mllm_image(
    image: Any, *, mask: Any = None, max_side: int | None = DEFAULT_MAX_SIDE
) -> Image.Image:
    """The image the MLLM sees: RGB, at most ``max_side`` px, with the mask outlined when given.

    An empty mask (no pixel in the edit region, see `mask_is_empty`) is ignored: the edit is then
    treated as mask-free.
    """
    pil = resize_max_side(to_pil_rgb(image), max_side)
    if mask is not None:
        region = to_mask_array(mask, pil.size)
        if region.any():
            pil = outline_mask(pil, region)
    return pil


def mask_is_empty(mask: Any) -> bool:
    """True for ``None`` or a mask with no pixel in the edit region (callers then run a mask-free
    edit). Uses `to_mask_array`'s cut, so a faint mask that gets no outline does not make the prompt
    announce one."""
    return mask is None or not bool((_mask_levels(mask) >= MASK_THRESHOLD).any())


def _pil_to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().to("cpu")
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def _mask_levels(mask: Any) -> np.ndarray:
    """Any mask -> a uint8 ``[H,W]`` array of levels (255 = edit)."""
    if isinstance(mask, Image.Image):
        return np.asarray(mask.convert("L"))
    raw = _to_numpy(mask)
    values = raw.astype(np.float32)
    if raw.dtype == np.uint8:
        values = values / 255.0
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 2:
        raise ValueError(
            f"Expected a mask shaped [H,W] or [1,H,W] (ComfyUI MASK layout), got shape {list(values.shape)}."
        )
    return (np.clip(values, 0, 1) * 255).astype(np.uint8)
