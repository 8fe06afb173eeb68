"""The edit region and the image size, as the shipped workflows use them (pure core, no ComfyUI):
which mask is used, what the status says about it, and that the artist gets their size back."""

from __future__ import annotations

import pytest
import torch

from mindedit_core.canvas import pad_to_multiple, paste_edit
from mindedit_core.masks import ALPHA, PAINTED, RED, choose_edit_mask, coverage, red_channel

H, W = 40, 60


def _box(h=H, w=W, top=10, left=10, size=20) -> torch.Tensor:
    mask = torch.zeros((1, h, w))
    mask[:, top : top + size, left : left + size] = 1.0
    return mask


def _choose(painted=None, alpha=None, red=None):
    return choose_edit_mask(H, W, [(PAINTED, painted), (ALPHA, alpha), (RED, red)])


def test_an_all_zero_mask_is_a_mask_free_edit_of_the_whole_image_and_says_so():
    chosen = _choose(
        painted=torch.zeros((1, 64, 64)), alpha=torch.zeros((1, 64, 64)), red=torch.zeros((1, H, W))
    )
    assert chosen.mask_free and chosen.source is None
    assert torch.count_nonzero(chosen.mask) == 0, "the MLLM must see no mask"
    assert torch.all(chosen.region == 1.0), "the sampler may change the whole image"
    assert chosen.mask.shape == chosen.region.shape == (1, H, W)
    assert "mask-free" in chosen.status


def test_a_mask_only_in_the_alpha_channel_is_found():
    """A PNG whose RGB is black and whose alpha holds the mask: the red channel is empty."""
    chosen = _choose(alpha=_box(), red=torch.zeros((1, H, W)))
    assert chosen.source == ALPHA and torch.equal(chosen.mask, _box())
    assert ALPHA in chosen.status and "16.7%" in chosen.status


def test_a_black_and_white_mask_is_read_from_the_red_channel():
    image = torch.zeros((1, H, W, 3))
    image[:, 10:30, 10:30, :] = 1.0
    chosen = _choose(alpha=torch.zeros((1, 64, 64)), red=red_channel(image))
    assert chosen.source == RED and torch.equal(chosen.region, _box())


def test_painted_comes_first_then_alpha_then_red():
    assert _choose(painted=_box(top=0), alpha=_box(top=5), red=_box(top=10)).source == PAINTED
    assert _choose(alpha=_box(top=5), red=_box(top=10)).source == ALPHA
    # A uniformly white red channel (RGBA with white RGB) carries no mask: the alpha one wins.
    assert _choose(alpha=_box(), red=torch.ones((1, H, W))).source == ALPHA


def test_an_inverted_mask_shows_its_coverage_and_a_hint():
    inverted = 1.0 - _box(size=12)
    chosen = _choose(red=inverted)
    assert chosen.coverage == pytest.approx(1 - 144 / (H * W))
    assert "94.0%" in chosen.status and "invert the mask" in chosen.status
    full = _choose(red=torch.ones((1, H, W)))
    assert full.source == RED and full.coverage == 1.0 and "100.0%" in full.status


def test_a_mask_of_another_size_is_resized_and_both_sizes_are_named():
    chosen = _choose(alpha=_box(h=20, w=30, top=5, left=5, size=10))
    assert chosen.mask.shape == (1, H, W)
    assert "30x20" in chosen.status and f"{W}x{H}" in chosen.status and "resized" in chosen.status
    assert "stretched" not in chosen.status
    stretched = _choose(alpha=_box(h=64, w=64, top=8, left=8, size=30))
    assert "64x64" in stretched.status and "stretched" in stretched.status
    assert coverage(stretched.mask) == pytest.approx(30 * 30 / 64 / 64, abs=0.02)


def test_pad_then_paste_gives_back_the_size_the_artist_gave():
    source = torch.rand((1, 389, 517, 3), generator=torch.Generator().manual_seed(0))
    padded = pad_to_multiple(source)
    assert padded.shape == (1, 392, 520, 3)
    assert torch.equal(padded[:, :389, :517], source)
    assert torch.equal(padded[:, 389:, :517], source[:, -1:].expand(-1, 3, -1, -1))
    edited = torch.rand_like(padded)
    pasted = paste_edit(source, edited)
    assert pasted.image.shape == source.shape and torch.equal(pasted.image, edited[:, :389, :517])
    assert "517x389" in pasted.status and "cropped back" in pasted.status
    assert pad_to_multiple(padded) is padded


def test_paste_keeps_every_pixel_outside_the_mask_exactly():
    source = torch.rand((1, H, W, 3), generator=torch.Generator().manual_seed(1))
    edited = torch.rand((1, H, W, 3), generator=torch.Generator().manual_seed(2))
    mask = _box()
    out = paste_edit(source, edited, mask).image
    outside = mask[0] == 0
    assert torch.equal(out[0][outside], source[0][outside])
    assert torch.equal(out[0][~outside], edited[0][~outside])


def test_an_edit_cropped_by_vae_encode_is_resized_back_with_a_warning():
    source = torch.rand((1, 389, 517, 3))
    pasted = paste_edit(source, torch.rand((1, 384, 512, 3)))
    assert pasted.image.shape == source.shape
    assert (
        pasted.status.count("WARNING") == 1 and "512x384" in pasted.status and "Pad for VAE" in pasted.status
    )


def test_a_batch_of_edits_is_pasted_onto_the_one_source():
    source = torch.rand((1, H, W, 3))
    edited = torch.rand((3, H, W, 3))
    out = paste_edit(source, edited, _box()).image
    assert out.shape == (3, H, W, 3)
    assert torch.equal(out[2][_box()[0] == 0], source[0][_box()[0] == 0])
