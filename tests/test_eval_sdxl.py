"""Evaluation with an SDXL base: the diffusers SDXL pipelines, the same v_insight through the SDXL
ViT-H IP-Adapter, on a tiny SDXL folder in diffusers layout (`devkit.fixtures.sdxl_diffusers`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from training.evaluate import DiffusionSettings, EditPipelines

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # ~80 s with the first build


@pytest.fixture(scope="module")
def sdxl_dir(fixture_cache):
    from devkit.fixtures.sdxl_diffusers import build_sdxl_diffusers

    return build_sdxl_diffusers(fixture_cache)


@pytest.fixture(scope="module")
def sdxl_adapter(fixture_cache):
    from devkit.fixtures.sdxl_diffusers import build_sdxl_ipadapter

    return build_sdxl_ipadapter(fixture_cache, kind="plain")


def _settings(model, adapter, backend="mindedit") -> DiffusionSettings:
    return DiffusionSettings(
        model=str(model), ipadapter=str(adapter), ipadapter_backend=backend, steps=2, resolution=64
    )


def _source() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def embeds():
    return torch.randn(1, 1024, generator=torch.Generator().manual_seed(3)) * 2.0


@pytest.fixture(scope="module")
def ours(sdxl_dir, sdxl_adapter):
    return EditPipelines(_settings(sdxl_dir, sdxl_adapter))


def test_sdxl_base_gets_the_sdxl_pipelines(ours):
    described = ours.describe()
    assert described["family"] == "sdxl"
    assert described["mask_free"] == "StableDiffusionXLImg2ImgPipeline"
    assert described["masked"].startswith("StableDiffusionXLInpaintPipeline")
    assert described["ipadapter"]["kind"] == "plain"


def test_both_backends_give_the_same_sdxl_latents_and_the_image_term_counts(
    sdxl_dir, sdxl_adapter, ours, embeds
):
    theirs = EditPipelines(_settings(sdxl_dir, sdxl_adapter, backend="diffusers"))
    kwargs = dict(positive="a red boat", negative="blurry", seed=1)
    a = ours.edit_latents(_source(), image_embeds=embeds, **kwargs)
    b = theirs.edit_latents(_source(), image_embeds=embeds, **kwargs)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    without = ours.edit_latents(_source(), **kwargs)
    assert (a - without).abs().max() > 1e-3


def test_sdxl_masked_edit_keeps_every_pixel_outside_the_mask(ours, embeds):
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    out = np.asarray(
        ours.edit(_source(), "a red boat", mask=Image.fromarray(mask), image_embeds=embeds, seed=2)
    )
    source = np.asarray(_source())
    assert np.array_equal(out[mask == 0], source[mask == 0])
    assert not np.array_equal(out[mask > 0], source[mask > 0])


def test_sd15_adapter_on_an_sdxl_base_is_refused_naming_both(sdxl_dir, eval_ipadapter_file):
    from mindedit_core.ipadapter import IPAdapterModelMismatch

    with pytest.raises(IPAdapterModelMismatch, match=r"is an SD1.5 adapter, but the model .* is SDXL"):
        EditPipelines(_settings(sdxl_dir, eval_ipadapter_file))
