"""The refine-only workflow in a real headless ComfyUI that has only public-weight models: a VLM in
models/LLM and an SD1.5 checkpoint; nothing in models/mindedit, no IP-Adapter file.

A private server (the shared session one has MIND-Edit checkpoints and adapters linked in), one
per module. Each supported VLM family's tiny fixture (LLaVA-OneVision, Qwen2.5-VL, Qwen3-VL, Qwen3.5,
Gemma 4) runs
the workflow masked (a mask painted on
the source, as the MaskEditor saves it) and mask-free (no mask).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from devkit import build_workflows as wf
from devkit.demo import DemoModels, painted_source, preview_texts, sample_inputs
from devkit.demo import prepare_prompt as demo_prompt

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

SIZE = 64
MASK_REACH_PX = 6 + 4 + 2  # GrowMask + blur radius + bilinear resampling


VLMS = ("llava-onevision", "qwen2.5-vl", "qwen3-vl", "qwen3.5", "gemma4")


def _vlm_fixtures(cache):
    """name -> folder of the tiny fixture of every supported VLM family."""
    from devkit.fixtures.gemma4 import tiny_gemma4
    from devkit.fixtures.llava_onevision import tiny_llava_onevision
    from devkit.fixtures.qwen3_5 import tiny_qwen3_5
    from devkit.fixtures.qwen_vl import tiny_qwen2_5_vl, tiny_qwen3_vl

    return {
        "llava-onevision": tiny_llava_onevision(cache),
        "qwen2.5-vl": tiny_qwen2_5_vl(cache),
        "qwen3-vl": tiny_qwen3_vl(cache),
        "qwen3.5": tiny_qwen3_5(cache),
        "gemma4": tiny_gemma4(cache),
    }


@pytest.fixture(scope="module")
def public_only(fixture_cache, tiny_sd15_sites16, tmp_path_factory):
    from devkit.comfyui_runtime import ComfyUIServer

    vlms = _vlm_fixtures(fixture_cache)
    base = tmp_path_factory.mktemp("public_only_base")
    server = ComfyUIServer(
        base, models={"checkpoints": [tiny_sd15_sites16], "LLM": list(vlms.values())}, threads=1
    )
    server.start()
    try:
        work = tmp_path_factory.mktemp("public_only_images")
        source_path, mask_path = sample_inputs(work, SIZE)
        painted = painted_source(work, source_path, mask_path)
        client = server.client
        yield {
            "server": server,
            "client": client,
            "vlms": vlms,
            "checkpoint": tiny_sd15_sites16,
            "info": client.object_info(),
            "source_name": client.upload_image(source_path),
            "painted_name": client.upload_image(painted),
            "source": np.asarray(Image.open(source_path)),
            "mask": np.asarray(Image.open(mask_path)) > 127,
        }
    finally:
        server.stop()


def _run(env, vlm: str, source_name: str, seed: int):
    models = DemoModels(
        checkpoint=env["checkpoint"], llm_dir=env["vlms"][vlm], mindedit_dir=None, ipadapter=None, tiny=True
    )
    prompt = demo_prompt(
        wf.REFINE_ONLY_WORKFLOW,
        env["info"],
        models,
        source_name=source_name,
        steps=2,
        seed=seed,
        max_new_tokens=24,
        filename_prefix=f"refine_only/{vlm}",
    )
    result = env["client"].run(prompt, timeout=300).raise_for_error()
    saved = [img for img in result.images if img.type == "output"]
    assert len(saved) == 1
    out = np.asarray(Image.open(io.BytesIO(saved[0].data)).convert("RGB"))
    return out, preview_texts(result, prompt)


def test_the_server_has_no_mindedit_checkpoint_and_no_ip_adapter(public_only):
    info = public_only["info"]
    from devkit.workflow_api import combo_options

    loader = info[wf.MLLM_LOADER]["input"]["required"]
    assert combo_options(loader["mindedit_checkpoint"]) == [wf.NO_MINDEDIT_CHECKPOINT]
    assert combo_options(info[wf.IPADAPTER_LOADER]["input"]["required"][wf.IPADAPTER_FILE_INPUT]) == []


@pytest.mark.parametrize("vlm", VLMS)
def test_refine_only_with_a_painted_mask_edits_only_inside_it(public_only, vlm):
    from scipy.ndimage import binary_dilation

    out, texts = _run(public_only, vlm, public_only["painted_name"], seed=5)
    source, mask = public_only["source"], public_only["mask"]
    assert out.shape == source.shape
    reach = binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=MASK_REACH_PX)
    assert np.array_equal(out[~reach], source[~reach]), "pixels outside the painted mask changed"
    assert (np.abs(out[mask].astype(int) - source[mask].astype(int)).max(axis=-1) > 0).mean() > 0.5
    status = texts[wf.STATUS_PREVIEW_TITLE]
    assert "painted on the source" in status and f"covers {100 * mask.mean():.1f}%" in status, status
    assert texts[wf.POSITIVE_PREVIEW_TITLE].strip(), "the positive prompt is never empty"


@pytest.mark.parametrize("vlm", VLMS)
def test_refine_only_without_a_mask_is_a_mask_free_edit_and_says_so(public_only, vlm):
    out, texts = _run(public_only, vlm, public_only["source_name"], seed=6)
    source = public_only["source"]
    assert out.shape == source.shape
    assert (np.abs(out.astype(int) - source.astype(int)).max(axis=-1) > 0).mean() > 0.5
    status = texts[wf.STATUS_PREVIEW_TITLE]
    assert "mask-free" in status and f"size: {SIZE}x{SIZE}, as given" in status, status
