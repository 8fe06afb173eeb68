"""IP-Adapter in a real headless ComfyUI (0.3.75) with the 16-site tiny SD1.5 checkpoint, over HTTP.

Latents come back through ComfyUI's own ``SaveLatent`` node; a test-only pack
(``tests/assets/comfyui_packs/foreign_patch_pack``) supplies random ``EMBEDS`` and a counting attn2
patch that plays "another pack" (installed before ours) or a probe (installed after ours).
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

_unique = itertools.count()


@pytest.fixture(scope="module")
def ipa_names(
    comfyui_server, ipadapter_sites16_files, ipadapter_bigg_file, sdxl_ipadapter_tiny_files
) -> dict[str, str]:
    names = {
        kind: comfyui_server.add_model("ipadapter", path) for kind, path in ipadapter_sites16_files.items()
    }
    names["bigg"] = comfyui_server.add_model("ipadapter", ipadapter_bigg_file)
    names["sdxl"] = comfyui_server.add_model("ipadapter", sdxl_ipadapter_tiny_files["plain"])
    return names


def _graph(
    ckpt: str,
    *,
    adapter: str | None = None,
    kind: str = "plain",
    weight: float = 1.0,
    start_at: float = 0.0,
    end_at: float = 1.0,
    foreign_before: bool = False,
    probe_after: bool = False,
    embeds_kind: str | None = None,
    two_tuple: str | None = None,
) -> tuple[dict, str]:
    """``two_tuple``: "before" or "after" ours, a 2-tuple-key patch like ComfyUI_IPAdapter_plus's."""
    run = next(_unique)
    tag = f"run{run}"
    g: dict = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red boat", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["ckpt", 1]}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    model = ["ckpt", 0]
    if foreign_before:
        g["foreign"] = {
            "class_type": "MindEditTest_CountingAttn2Patch",
            "inputs": {"model": model, "tag": f"{tag}-foreign"},
        }
        model = ["foreign", 0]
    if two_tuple == "before":
        model = _add_two_tuple(g, model, tag)
    if adapter is not None:
        g["ipa"] = {"class_type": "MindEditIPAdapterLoader", "inputs": {"ipadapter_file": adapter}}
        g["emb"] = {
            "class_type": "MindEditTest_RandomEmbeds",
            "inputs": {"kind": embeds_kind or kind, "batch": 1, "seed": 3, "scale": 1.0},
        }
        g["apply"] = {
            "class_type": "MindEditApplyIPAdapter",
            "inputs": {
                "model": model,
                "ipadapter": ["ipa", 0],
                "pos_embed": ["emb", 0],
                "weight": weight,
                "start_at": start_at,
                "end_at": end_at,
                "batch_mapping": "all",
            },
        }
        model = ["apply", 0]
    if two_tuple == "after":
        model = _add_two_tuple(g, model, tag)
    if probe_after:
        g["probe"] = {
            "class_type": "MindEditTest_CountingAttn2Patch",
            "inputs": {"model": model, "tag": f"{tag}-probe"},
        }
        model = ["probe", 0]
    g["sample"] = {
        "class_type": "KSampler",
        "inputs": {
            "model": model,
            "seed": 42,
            "steps": 2,
            "cfg": 5.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "positive": ["pos", 0],
            "negative": ["neg", 0],
            "latent_image": ["latent", 0],
            "denoise": 1.0,
        },
    }
    g["save"] = {
        "class_type": "SaveLatent",
        "inputs": {"samples": ["sample", 0], "filename_prefix": f"ipa/{tag}"},
    }
    g["report"] = {
        "class_type": "MindEditTest_ReportCounts",
        "inputs": {"samples": ["sample", 0], "tag": _report_tag(tag, probe_after, two_tuple)},
    }
    return g, tag


def _add_two_tuple(g: dict, model: list, tag: str) -> list:
    g["two_tuple"] = {
        "class_type": "MindEditTest_TwoTupleAttn2Patch",
        "inputs": {"model": model, "tag": f"{tag}-two-tuple", "offset": 0.05},
    }
    return ["two_tuple", 0]


def _report_tag(tag: str, probe_after: bool, two_tuple: str | None) -> str:
    if probe_after:
        return f"{tag}-probe"
    return f"{tag}-two-tuple" if two_tuple else f"{tag}-foreign"


def _run(server, graph: dict) -> dict:
    result = server.client.run(graph, timeout=300)
    result.raise_for_error()
    from safetensors.torch import load_file

    info = result.outputs["save"]["latents"][0]
    latent = load_file(str(server.output_dir / info["subfolder"] / info["filename"]))["latent_tensor"]
    return {"latent": latent, "result": result}


def _counts(run: dict) -> dict:
    """Counts of the counting patch of this run (probe if present, else foreign), from its UI output."""
    return json.loads(run["result"].outputs["report"]["counts"][0])


EXPECTED_KEYS_2 = (
    {f"input/{b}" for b in (1, 2, 4, 5, 7, 8)} | {f"output/{b}" for b in range(3, 12)} | {"middle/0"}
)
EXPECTED_KEYS = (
    {f"input/{b}/0" for b in (1, 2, 4, 5, 7, 8)} | {f"output/{b}/0" for b in range(3, 12)} | {"middle/0/0"}
)


@pytest.fixture(scope="module")
def baseline(comfyui_server, tiny_sd15_sites16) -> torch.Tensor:
    graph, _ = _graph(tiny_sd15_sites16.name)
    latent = _run(comfyui_server, graph)["latent"]
    assert torch.isfinite(latent).all()
    return latent


def test_weight_zero_equals_unpatched(comfyui_server, tiny_sd15_sites16, ipa_names, baseline):
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=0.0)
    latent = _run(comfyui_server, graph)["latent"]
    assert torch.equal(latent, baseline)


@pytest.fixture(scope="module")
def weight_one(comfyui_server, tiny_sd15_sites16, ipa_names) -> dict:
    """Plain adapter at weight 1, with the counting probe installed after ours (it only delegates)."""
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0, probe_after=True)
    return _run(comfyui_server, graph)


def test_all_16_sites_hit_and_weight_changes_result(weight_one, baseline):
    latent = weight_one["latent"]
    assert torch.isfinite(latent).all()
    assert (latent - baseline).abs().max() > 1e-3
    counts = _counts(weight_one)
    assert set(counts) == EXPECTED_KEYS
    for key, entry in counts.items():
        assert entry["wrapped"] == "MindEditAttn2Patch", key
        assert entry["calls"] == 2, key  # 2 steps, cond+uncond batched in one call each


def test_plus_adapter_changes_result(comfyui_server, tiny_sd15_sites16, ipa_names, baseline):
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plus"], kind="plus", weight=1.0)
    latent = _run(comfyui_server, graph)["latent"]
    assert torch.isfinite(latent).all() and (latent - baseline).abs().max() > 1e-3


def test_schedule_window_outside_the_run_leaves_it_unchanged(
    comfyui_server, tiny_sd15_sites16, ipa_names, baseline
):
    # 2 "normal" steps evaluate sigma_max (t=999) and sigma_min (t=0); [0.3, 0.7] covers neither.
    graph, _ = _graph(
        tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0, start_at=0.3, end_at=0.7
    )
    assert torch.equal(_run(comfyui_server, graph)["latent"], baseline)
    # the first step alone ([0, 0.1] covers t >= ~900) does change it
    graph, _ = _graph(
        tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0, start_at=0.0, end_at=0.1
    )
    assert (_run(comfyui_server, graph)["latent"] - baseline).abs().max() > 1e-3


def test_foreign_patch_installed_before_ours_still_runs(
    comfyui_server, tiny_sd15_sites16, ipa_names, baseline, weight_one
):
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=0.0, foreign_before=True)
    run = _run(comfyui_server, graph)
    assert torch.equal(run["latent"], baseline)
    counts = _counts(run)
    assert set(counts) == EXPECTED_KEYS and all(e["calls"] == 2 for e in counts.values())

    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0, foreign_before=True)
    run = _run(comfyui_server, graph)
    # The foreign patch computes plain attention, so ours on top of it must add exactly the same term
    # as ours alone (the weight_one run: its probe only delegates).
    assert torch.equal(run["latent"], weight_one["latent"])
    assert set(_counts(run)) == EXPECTED_KEYS


def test_2tuple_patch_composes_with_ours_in_either_order(
    comfyui_server, tiny_sd15_sites16, ipa_names, baseline, weight_one
):
    """ComfyUI_IPAdapter_plus's keys (block, number): installed after our 3-tuple keys, ComfyUI never
    looks them up; our replacement runs them, so both orders give the same, doubly patched result."""
    foreign_alone = _run(comfyui_server, _graph(tiny_sd15_sites16.name, two_tuple="after")[0])
    assert (foreign_alone["latent"] - baseline).abs().max() > 1e-3
    runs = {}
    for order in ("before", "after"):
        graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0, two_tuple=order)
        runs[order] = _run(comfyui_server, graph)
        counts = _counts(runs[order])
        assert set(counts) == EXPECTED_KEYS_2, order
        assert all(entry["calls"] == 2 for entry in counts.values()), (order, counts)
    ours_first, theirs_first = runs["after"]["latent"], runs["before"]["latent"]
    assert torch.equal(ours_first, theirs_first)
    for alone in (weight_one["latent"], foreign_alone["latent"]):
        assert (ours_first - alone).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("adapter", "embeds_kind", "node", "needles"),
    [
        (
            "sdxl",
            "plain",
            "MindEditApplyIPAdapter",
            ["SDXL adapter", "SD1.5-family checkpoint", "ip-adapter_sd15"],
        ),
        (
            "bigg",
            "plain",
            "MindEditIPAdapterLoader",
            ["ip-adapter_sdxl-tiny", "ViT-bigG", "ip-adapter_sdxl_vit-h"],
        ),
        ("plain", "plus", "MindEditApplyIPAdapter", ["[1,257,1280]", "expects plain [B,1024]"]),
    ],
)
def test_mismatch_errors_reach_the_user(
    comfyui_server, tiny_sd15_sites16, ipa_names, adapter, embeds_kind, node, needles
):
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names[adapter], embeds_kind=embeds_kind)
    result = comfyui_server.client.run(graph, timeout=120)
    assert not result.ok and result.error is not None
    assert result.error.node_type == node
    for needle in needles:
        assert needle in result.error.exception_message


@pytest.mark.parametrize(("value", "expect"), [(0.0, "baseline"), (1.0, "weight_one")])
def test_mask_of_another_size_is_resized(
    comfyui_server, tiny_sd15_sites16, ipa_names, baseline, weight_one, value, expect
):
    """A 40x24 MASK on a 64x64 image: resized per attention level, never an error. All-zero -> no
    effect (bit-exact); all-one -> the unmasked result."""
    graph, _ = _graph(tiny_sd15_sites16.name, adapter=ipa_names["plain"], weight=1.0)
    graph["mask"] = {"class_type": "SolidMask", "inputs": {"value": value, "width": 40, "height": 24}}
    graph["apply"]["inputs"]["attn_mask"] = ["mask", 0]
    latent = _run(comfyui_server, graph)["latent"]
    if expect == "baseline":
        assert torch.equal(latent, baseline)
    else:
        torch.testing.assert_close(latent, weight_one["latent"], atol=1e-3, rtol=1e-4)
        assert (latent - baseline).abs().max() > 1e-3
