"""Image preparation for the MLLM: input forms, mode conversion, resizing, the mask outline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mindedit_core.images import (
    MASK_OUTLINE_RGB,
    mask_is_empty,
    prepare_mllm_image,
    resize_max_side,
    to_mask_array,
    to_pil_rgb,
)


def test_comfy_tensor_and_numpy_and_pil_agree():
    array = np.random.default_rng(1).random((1, 20, 30, 3)).astype(np.float32)
    from_tensor = np.asarray(to_pil_rgb(torch.from_numpy(array)))
    from_hwc = np.asarray(to_pil_rgb(array[0]))
    from_pil = np.asarray(to_pil_rgb(Image.fromarray(from_hwc)))
    assert from_tensor.shape == (20, 30, 3)
    assert np.array_equal(from_tensor, from_hwc) and np.array_equal(from_hwc, from_pil)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA", "CMYK", "I;16"])
def test_every_pil_mode_becomes_rgb(mode):
    image = Image.new("RGB", (8, 6), (10, 200, 30)).convert(mode)
    out = to_pil_rgb(image)
    assert out.mode == "RGB" and out.size == (8, 6)


def test_transparent_pixels_are_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert to_pil_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)


def test_batches_of_several_images_are_refused():
    with pytest.raises(ValueError, match="batch of 2"):
        to_pil_rgb(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"\[H,W,C\]"):
        to_pil_rgb(np.zeros((8, 8, 5)))


def test_resize_keeps_aspect_and_never_upscales():
    image = Image.new("RGB", (1024, 512))
    assert resize_max_side(image, 384).size == (384, 192)
    assert resize_max_side(Image.new("RGB", (100, 50)), 384).size == (100, 50)
    assert resize_max_side(image, None).size == (1024, 512)


def test_mask_forms_and_resizing():
    mask = np.zeros((1, 40, 60), dtype=np.float32)
    mask[0, 10:20, 30:50] = 1
    region = to_mask_array(torch.from_numpy(mask), (30, 20))
    assert region.shape == (20, 30) and region[7, 20] and not region[0, 0]
    assert np.array_equal(
        to_mask_array(mask[0], (60, 40)), to_mask_array((mask[0] * 255).astype(np.uint8), (60, 40))
    )
    with pytest.raises(ValueError, match="MASK layout"):
        to_mask_array(np.zeros((2, 3, 4, 5)), (4, 3))


def test_mask_is_outlined_on_the_source_and_the_inside_is_kept():
    image = np.full((1, 100, 100, 3), 0.5, dtype=np.float32)
    mask = np.zeros((100, 100), dtype=np.float32)
    mask[30:70, 30:70] = 1
    out = np.asarray(prepare_mllm_image(image, mask=mask, max_side=None))
    outlined = np.all(out == MASK_OUTLINE_RGB, axis=-1)
    assert outlined[30, 50] and outlined[50, 30]  # on the border
    assert not outlined[50, 50] and not outlined[5, 5]  # not inside, not far outside
    assert tuple(out[50, 50]) == (128, 128, 128)


def test_prepare_resizes_and_ignores_empty_masks():
    image = np.random.default_rng(0).random((300, 800, 3)).astype(np.float32)
    out = prepare_mllm_image(image, mask=np.zeros((300, 800)), max_side=384)
    assert out.size == (384, 144)
    assert np.array_equal(np.asarray(out), np.asarray(prepare_mllm_image(image, max_side=384)))
    assert mask_is_empty(None) and mask_is_empty(np.zeros((3, 3))) and not mask_is_empty(np.ones((3, 3)))


def test_a_mask_too_faint_to_outline_counts_as_empty():
    """The prompt announces an outline only when one is drawn: emptiness uses the outline's cut."""
    image = np.full((40, 40, 3), 0.5, dtype=np.float32)
    soft = np.full((40, 40), 0.3, dtype=np.float32)  # a feathered mask's fringe
    label = np.ones((40, 40), dtype=np.uint8)  # uint8 masks are 0..255
    for faint in (soft, label, Image.fromarray(label, mode="L")):
        out = np.asarray(prepare_mllm_image(image, mask=faint))
        assert not np.all(out == MASK_OUTLINE_RGB, axis=-1).any()
        assert mask_is_empty(faint)
    assert not mask_is_empty(label * 255) and not mask_is_empty(torch.full((1, 4, 4), 0.8))
