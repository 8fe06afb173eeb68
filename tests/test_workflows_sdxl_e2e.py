"""The three SDXL workflows, end to end, in a real headless ComfyUI (0.3.75, or $COMFYUI_PATH such
as 0.33.0): the shipped UI files converted to API prompts against /object_info, run on the tiny
SDXL checkpoint (ComfyUI loads it as SDXL), the tiny LLaVA-OneVision + MIND-Edit head, and a tiny
ip-adapter_sdxl_vit-h file. The same head's v_insight drives SDXL's adapter here as SD1.5's in
test_workflows_e2e.py. The workflows sample at 1024 px on the longest side by default; here at the
tiny source's size, or (the masked one) at a size that exercises the scale, pad, crop and scale back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_workflows_e2e import MASK_REACH_PX, SIZE, STEPS, _output_pixels

from devkit import build_workflows as wf
from devkit.demo import DemoModels, painted_source, preview_texts, sample_inputs
from devkit.demo import prepare_prompt as demo_prompt

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]


@pytest.fixture(scope="module")
def sdxl_e2e(
    comfyui_server,
    fixture_cache,
    tiny_sd15_sites16,
    tiny_sdxl_sites70,
    sdxl_ipadapter_tiny_files,
    tmp_path_factory,
):
    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint

    models = DemoModels(
        checkpoint=tiny_sd15_sites16,  # the SD1.5 side (already in the session server)
        llm_dir=tiny_llava_onevision(fixture_cache),
        mindedit_dir=tiny_mindedit_checkpoint(fixture_cache, kind="plain"),
        ipadapter=None,
        tiny=True,
        sdxl_checkpoint=tiny_sdxl_sites70,
        sdxl_ipadapter=sdxl_ipadapter_tiny_files["plain"],
    )
    for folder, path in (
        ("checkpoints", models.sdxl_checkpoint),
        ("ipadapter", models.sdxl_ipadapter),
        ("LLM", models.llm_dir),
        ("mindedit", models.mindedit_dir),
    ):
        comfyui_server.add_model(folder, path)
    work = tmp_path_factory.mktemp("sdxl_e2e_images")
    source_path, mask_path = sample_inputs(work, SIZE)
    source, mask = Image.open(source_path), Image.open(mask_path)
    client = comfyui_server.client
    return {
        "client": client,
        "models": models,
        "source_name": client.upload_image(source_path),
        "mask_name": client.upload_image(mask_path),
        # the refine-only workflow has no mask file: the mask is painted into the source's alpha
        "painted_name": client.upload_image(painted_source(work, source_path, mask_path)),
        "source": np.asarray(source),
        "mask": np.asarray(mask) > 127,
        "object_info": client.object_info(),
    }


def _run(sdxl_e2e, name, **overrides):
    kwargs = dict(
        source_name=sdxl_e2e["painted_name" if name == wf.SDXL_REFINE_ONLY_WORKFLOW else "source_name"],
        mask_name=sdxl_e2e["mask_name"] if name == wf.SDXL_MASKED_WORKFLOW else None,
        steps=STEPS,
        max_new_tokens=24,
        filename_prefix=f"e2e/{name}",
        seed=5,
        working_size=SIZE,
    )
    kwargs.update(overrides)
    prompt = demo_prompt(name, sdxl_e2e["object_info"], sdxl_e2e["models"], **kwargs)
    return prompt, sdxl_e2e["client"].run(prompt, timeout=600).raise_for_error()


# 76 px: scaled up from 64, padded to 80 for the VAE, cropped back to 76, scaled down to 64.
WORKING_SIZES = {wf.SDXL_MASKED_WORKFLOW: 76, wf.SDXL_REFINE_ONLY_WORKFLOW: SIZE}


@pytest.mark.parametrize("name", sorted(WORKING_SIZES))
def test_sdxl_masked_workflows_keep_every_pixel_outside_the_mask(sdxl_e2e, name):
    from scipy.ndimage import binary_dilation

    prompt, result = _run(sdxl_e2e, name, working_size=WORKING_SIZES[name])
    out = _output_pixels(result)
    source, mask = sdxl_e2e["source"], sdxl_e2e["mask"]
    assert out.shape == source.shape
    outside = ~binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=MASK_REACH_PX)
    assert outside.sum() > 0.3 * outside.size
    assert np.array_equal(out[outside], source[outside]), "pixels outside the mask changed"
    assert (np.abs(out[mask].astype(int) - source[mask].astype(int)).max(axis=-1) > 0).mean() > 0.5
    status = preview_texts(result, prompt)[wf.STATUS_PREVIEW_TITLE]
    assert status.startswith(("ok", "WARNING")), status
    assert f"size: {SIZE}x{SIZE}, as given" in status and "resized" not in status, status


def test_sdxl_mask_free_workflow_edits_through_the_sdxl_ip_adapter(sdxl_e2e):
    from devkit.workflow_api import set_widget

    prompt, result = _run(sdxl_e2e, wf.SDXL_EDIT_WORKFLOW)
    out = _output_pixels(result)
    assert out.shape == sdxl_e2e["source"].shape and not np.array_equal(out, sdxl_e2e["source"])
    unguided = demo_prompt(
        wf.SDXL_EDIT_WORKFLOW,
        sdxl_e2e["object_info"],
        sdxl_e2e["models"],
        source_name=sdxl_e2e["source_name"],
        steps=STEPS,
        max_new_tokens=24,
        filename_prefix=f"e2e/{wf.SDXL_EDIT_WORKFLOW}",
        seed=5,
        working_size=SIZE,
    )
    set_widget(unguided, wf.IPADAPTER_APPLY, "weight", 0.0)
    without = _output_pixels(sdxl_e2e["client"].run(unguided, timeout=600).raise_for_error())
    assert np.abs(out.astype(int) - without.astype(int)).max() > 0, (
        "the SDXL IP-Adapter did not change the result"
    )
