"""The bundled sample (assets/) is what `devkit.fixtures.sample_image` draws, and its mask marks the ball."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from devkit.fixtures.sample_image import MASK_NAME, SOURCE_NAME, draw_sample, write_sample

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def test_committed_assets_match_the_generator():
    source, mask = draw_sample()
    committed_source = np.asarray(Image.open(ASSETS / SOURCE_NAME))
    committed_mask = np.asarray(Image.open(ASSETS / MASK_NAME))
    # Pixels, not bytes: PNG encoders differ between Pillow versions.
    assert np.array_equal(committed_source, np.asarray(source))
    assert np.array_equal(committed_mask, np.asarray(mask))


def test_mask_is_binary_and_covers_the_red_ball(tmp_path: Path):
    source_path, mask_path = write_sample(tmp_path, size=256)
    source = np.asarray(Image.open(source_path).convert("RGB"), dtype=np.int32)
    mask = np.asarray(Image.open(mask_path))
    assert source.shape == (256, 256, 3) and mask.shape == (256, 256)
    assert set(np.unique(mask)) == {0, 255}
    red = (source[..., 0] > 130) & (source[..., 0] - source[..., 1] > 90)  # the ball, not the wood
    assert red.sum() > 500  # the ball is there
    assert (mask[red] == 255).mean() > 0.99  # and inside the edit region
    assert 0.03 < (mask == 255).mean() < 0.2  # one object, not the whole picture
