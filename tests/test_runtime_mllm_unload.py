"""ComfyUI's unload releases the MLLM's memory on a device with nowhere to offload to (the CPU).

On a CPU-only ComfyUI the offload device is the load device: unloading moved nothing, and the
loader node's cached output kept the weights alive, so "Unload models" freed no RAM. Now the
handle drops its weights when ComfyUI detaches it there and reloads them on the next use.
In-process with ComfyUI's real memory manager; the last test runs the real headless server.
"""

from __future__ import annotations

import gc
import time
import weakref

import pytest
import torch
from helpers_nodes import import_pack, pack_module

from mindedit_core.mllm import PassOptions, PassRequest, PassResult, require_vision_head
from mindedit_core.prompting import parse_refinement


@pytest.fixture(scope="module")
def pack():
    return import_pack()


class FakeMLLM:
    """A `MindEditMLLMLike` whose weights are one 256 KiB layer: what the patcher moves and releases;
    its pass echoes the instruction (no head)."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.model = torch.nn.Linear(256, 256)
        self.has_head = False
        self.negative_embeds = None
        self.default_options = PassOptions()

    def torch_modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def run(self, request: PassRequest) -> PassResult:
        if request.wants_embeds:
            require_vision_head(self)
        text = f'optimized_prompt: "{request.instruction}"'
        return PassResult(parse_refinement(text, request.instruction), None, text)


def _wrapped(reload_calls: list | None):
    patcher_mod = pack_module("nodes.comfy_mllm_patcher")
    mllm = FakeMLLM()

    def reload():
        reload_calls.append(1)
        return FakeMLLM()

    handle = patcher_mod.wrap_mllm(
        mllm,
        mllm.torch_modules(),
        description="fake + none",
        quantization=None,
        reload=reload if reload_calls is not None else None,
    )
    return patcher_mod, handle, weakref.ref(mllm.model.weight)


def test_unload_on_the_cpu_releases_the_weights_and_the_next_use_reloads_them(pack):
    import comfy.model_management as mm

    calls: list = []
    patcher_mod, handle, weight = _wrapped(calls)
    patcher_mod.load_for_use(handle)
    assert patcher_mod.is_loaded(handle) and weight() is not None
    mm.unload_all_models()
    gc.collect()
    assert handle.released and not patcher_mod.is_loaded(handle)
    assert weight() is None, "the unloaded MLLM's weights are still referenced"
    assert handle.mllm.has_head is False  # still answered before a run (nodes check it)
    with pytest.raises(RuntimeError, match="load_for_use"):
        _ = handle.mllm.model
    assert calls == []
    patcher_mod.load_for_use(handle)
    assert calls == [1] and not handle.released and patcher_mod.is_loaded(handle)
    assert isinstance(handle.mllm, FakeMLLM)
    assert handle.patcher.model.parts["model"] is handle.mllm.model
    mm.unload_all_models()


def test_without_a_reload_recipe_the_weights_stay(pack):
    import comfy.model_management as mm

    patcher_mod, handle, weight = _wrapped(None)
    patcher_mod.load_for_use(handle)
    mm.unload_all_models()
    gc.collect()
    assert not handle.released and weight() is not None


def test_where_an_offload_device_exists_unloading_only_moves_the_weights(pack):
    import comfy.model_management as mm

    calls: list = []
    patcher_mod, handle, weight = _wrapped(calls)
    # A distinct offload device (on a GPU machine: the CPU); cpu:0 stands in for it here.
    handle.patcher.offload_device = torch.device("cpu", 0)
    patcher_mod.load_for_use(handle)
    mm.unload_all_models()
    gc.collect()
    assert not handle.released and weight() is not None and calls == []


def test_the_loader_node_reloads_the_same_model_after_an_unload(pack, fixture_cache, tmp_path, monkeypatch):
    import comfy.model_management as mm
    import folder_paths

    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint

    for name, path in (
        ("LLM", tiny_llava_onevision(fixture_cache)),
        ("mindedit", tiny_mindedit_checkpoint(fixture_cache, kind="plain")),
    ):
        root = tmp_path / name
        root.mkdir()
        (root / "tiny").symlink_to(path, target_is_directory=True)
        exts = folder_paths.folder_names_and_paths[name][1]
        monkeypatch.setitem(folder_paths.folder_names_and_paths, name, ([str(root)], exts))
    loader = pack_module("nodes.mllm_loader")
    refine = pack_module("nodes.refine")
    mllm_pass = pack_module("nodes.mllm_pass")
    (handle,) = loader.MindEditMLLMLoader().load("tiny", "tiny", "auto", "none", "sdpa")
    image = torch.rand((1, 48, 48, 3), generator=torch.Generator().manual_seed(3))
    before = refine.MindEditRefineAndEmbed().run(handle, image, "make it blue", 0, 12, 384)
    mm.unload_all_models()
    assert handle.released
    mllm_pass.PASS_CACHE.clear()  # make the pass run again on the reloaded weights
    after = refine.MindEditRefineAndEmbed().run(handle, image, "make it blue", 0, 12, 384)
    assert not handle.released
    assert before[0] == after[0] and before[4] == after[4]  # same prompts, same raw answer
    assert torch.equal(before[2], after[2])  # same v_insight: same weights, LoRA and head
    mm.unload_all_models()


@pytest.mark.comfyui
def test_unload_models_in_the_real_server_releases_and_the_next_run_reloads(comfyui_server, tiny_llava_dir):
    from devkit.comfyui_runtime import mllm_refine_graph

    client = comfyui_server.client
    folder = comfyui_server.add_model("LLM", tiny_llava_dir, name="unload-probe-llava")
    image = client.upload_image(torch_image_png(), name="unload_probe.png")

    client.run(mllm_refine_graph(image, folder, "add a red hat"), timeout=240).raise_for_error()
    released = f"released the MLLM's weights ({folder} + none)"
    assert released not in comfyui_server.log_text()
    # The "Unload models" button. Re-sent until seen: ComfyUI's prompt worker can miss a /free that
    # lands between its flag check and its wait, right after a prompt, until the next prompt comes.
    deadline = time.monotonic() + 60
    while released not in comfyui_server.log_text() and time.monotonic() < deadline:
        client.free(unload_models=True, free_memory=False)
        time.sleep(1.0)
    assert released in comfyui_server.log_text(), comfyui_server.log_text()[-6000:]
    result = client.run(mllm_refine_graph(image, folder, "add a blue scarf"), timeout=240).raise_for_error()
    assert result.outputs["4"]["text"][0]
    assert f"reloading the released MLLM ({folder} + none)" in comfyui_server.log_text()


def torch_image_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (120, 60, 30)).save(buf, format="PNG")
    return buf.getvalue()
