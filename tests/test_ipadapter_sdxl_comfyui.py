"""SDXL IP-Adapters in a real headless ComfyUI (0.3.75 vendored, or $COMFYUI_PATH such as 0.33.0),
over HTTP, with the tiny SDXL checkpoint (`devkit.fixtures.sdxl`, which ComfyUI must detect as SDXL
to load at all) and tiny ViT-H SDXL adapter files of each kind."""

from __future__ import annotations

import pytest
import torch
from test_ipadapter_comfyui import _counts, _graph, _run

from mindedit_core.ipadapter import SDXL_SITES

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

SDXL_KEYS = {"/".join(map(str, site.comfy_key)) for site in SDXL_SITES}


@pytest.fixture(scope="module")
def sdxl_names(comfyui_server, tiny_sdxl_sites70, sdxl_ipadapter_tiny_files, ipadapter_sites16_files) -> dict:
    names = {
        kind: comfyui_server.add_model("ipadapter", path) for kind, path in sdxl_ipadapter_tiny_files.items()
    }
    names["sd15"] = comfyui_server.add_model("ipadapter", ipadapter_sites16_files["plain"])
    names["ckpt"] = comfyui_server.add_model("checkpoints", tiny_sdxl_sites70)
    return names


def _sdxl_graph(names: dict, **kwargs) -> dict:
    graph, _ = _graph(names["ckpt"], **kwargs)
    for node in ("probe", "foreign"):
        if node in graph:
            graph[node]["inputs"]["keys"] = "from_model"
    return graph


@pytest.fixture(scope="module")
def sdxl_baseline(comfyui_server, sdxl_names) -> torch.Tensor:
    latent = _run(comfyui_server, _sdxl_graph(sdxl_names))["latent"]
    assert latent.shape == (1, 4, 8, 8) and torch.isfinite(latent).all()
    return latent


@pytest.fixture(scope="module")
def sdxl_weight_one(comfyui_server, sdxl_names) -> dict:
    return _run(comfyui_server, _sdxl_graph(sdxl_names, adapter=sdxl_names["plain"], probe_after=True))


def test_tiny_checkpoint_loads_as_sdxl(comfyui_server, sdxl_baseline):
    """ComfyUI names the model class it built from the detected config when it loads it."""
    log = comfyui_server.log_text()
    assert "Requested to load SDXL" in log, log[-3000:]


def test_all_70_sites_patched_and_weight_changes_the_result(sdxl_weight_one, sdxl_baseline):
    latent = sdxl_weight_one["latent"]
    assert torch.isfinite(latent).all() and (latent - sdxl_baseline).abs().max() > 1e-3
    counts = _counts(sdxl_weight_one)
    assert set(counts) == SDXL_KEYS
    for key, entry in counts.items():
        assert entry["wrapped"] == "MindEditAttn2Patch", key
        assert entry["calls"] == 2, key  # 2 steps, cond+uncond batched


def test_weight_zero_is_exact(comfyui_server, sdxl_names, sdxl_baseline):
    graph = _sdxl_graph(sdxl_names, adapter=sdxl_names["plain"], weight=0.0)
    assert torch.equal(_run(comfyui_server, graph)["latent"], sdxl_baseline)


@pytest.mark.parametrize("kind", ["plus", "plus-face"])
def test_plus_kinds_change_the_result(comfyui_server, sdxl_names, sdxl_baseline, kind):
    graph = _sdxl_graph(sdxl_names, adapter=sdxl_names[kind], kind="plus")
    latent = _run(comfyui_server, graph)["latent"]
    assert torch.isfinite(latent).all() and (latent - sdxl_baseline).abs().max() > 1e-3


def test_foreign_patch_before_ours_keeps_running(comfyui_server, sdxl_names, sdxl_baseline, sdxl_weight_one):
    run = _run(comfyui_server, _sdxl_graph(sdxl_names, adapter=sdxl_names["plain"], foreign_before=True))
    assert set(_counts(run)) == SDXL_KEYS and all(e["calls"] == 2 for e in _counts(run).values())
    assert torch.equal(run["latent"], sdxl_weight_one["latent"])


def test_ipadapter_plus_style_join_after_ours_adds_both_terms(comfyui_server, sdxl_names, sdxl_weight_one):
    graph = _sdxl_graph(sdxl_names, adapter=sdxl_names["plain"])
    graph["join"] = {
        "class_type": "MindEditTest_JoiningAttn2Patch",
        "inputs": {"model": ["apply", 0], "tag": "sdxl-join", "offset": 0.05},
    }
    graph["sample"]["inputs"]["model"] = ["join", 0]
    graph["report"]["inputs"]["tag"] = "sdxl-join"
    run = _run(comfyui_server, graph)
    counts = _counts(run)
    assert set(counts) == SDXL_KEYS and all(e["calls"] == 2 for e in counts.values())
    assert (run["latent"] - sdxl_weight_one["latent"]).abs().max() > 1e-3


def test_sd15_adapter_on_sdxl_is_refused_naming_both(comfyui_server, sdxl_names):
    result = comfyui_server.client.run(_sdxl_graph(sdxl_names, adapter=sdxl_names["sd15"]), timeout=300)
    assert not result.ok and result.error.node_type == "MindEditApplyIPAdapter"
    message = result.error.exception_message
    assert "SD1.5 adapter" in message and "SDXL-family checkpoint" in message and "SDXL" in message
