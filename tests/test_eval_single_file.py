"""An SD1.5 single-file checkpoint (LDM keys) loads offline through ``from_single_file(..., config=)``
with a local configs-only folder, and the harness edits with it; without the config it says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.evaluate.pipelines import DiffusionSettings, EditPipelines, PipelineLoadError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def small_checkpoint(fixture_cache):
    from devkit.fixtures.sd15 import tiny_sd15_checkpoint

    return tiny_sd15_checkpoint(fixture_cache, "small", seed=0)


def test_single_file_with_local_config_edits_offline(small_checkpoint, eval_cache):
    from devkit.fixtures.sd15_diffusers import build_single_file_config

    config = build_single_file_config(eval_cache)
    editor = EditPipelines(
        DiffusionSettings(model=str(small_checkpoint), single_file_config=str(config), steps=2, resolution=64)
    )
    assert tuple(editor.img2img.unet.config.block_out_channels) == (320,)  # read from the local config
    source = Image.new("RGB", (64, 64), (20, 120, 60))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = np.asarray(editor.edit(source, "a red square", mask=mask, seed=0))
    inside = np.asarray(mask) >= 128
    assert np.array_equal(result[~inside], np.asarray(source)[~inside])
    assert result[inside].std() > 0


def test_single_file_without_config_says_what_to_pass(small_checkpoint):
    with pytest.raises(PipelineLoadError, match="--single-file-config"):
        EditPipelines(DiffusionSettings(model=str(small_checkpoint)))
