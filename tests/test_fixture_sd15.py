"""The tiny SD1.5 checkpoints: key layout, the 16 attn2 sites, determinism, and ComfyUI's own
model detection (run inside the session server, so `comfy` never enters the test process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from devkit.fixtures import sd15

# SD1.5's cross-attention sites, as ComfyUI names them for attn2 patches.
SD15_SITES = (
    [("input", i) for i in (1, 2, 4, 5, 7, 8)] + [("middle", 0)] + [("output", i) for i in range(3, 12)]
)


def _header(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - safe_open is no dict


def test_sites16_layout_has_sd15s_sixteen_attn2_sites():
    sites = sd15.attn2_sites("sites16")
    assert [(s.block, s.index) for s in sites] == SD15_SITES
    assert all(s.width == 320 and s.transformer_index == 0 for s in sites)
    keys = dict(sd15.unet_layout("sites16")[0])
    for site in sites:
        assert keys[site.ldm_key + ".to_k.weight"] == (site.width, sd15.CONTEXT_DIM)
        assert keys[site.ldm_key + ".to_v.weight"] == (site.width, sd15.CONTEXT_DIM)
        assert keys[site.ldm_key + ".to_q.weight"] == (site.width, site.width)
    attn2_blocks = {k.rsplit(".attn2.", 1)[0] for k in keys if ".attn2." in k}
    assert len(attn2_blocks) == 16


def test_small_variant_is_one_level():
    sites = sd15.attn2_sites("small")
    assert [(s.block, s.index) for s in sites] == [("input", 1), ("middle", 0), ("output", 0), ("output", 1)]
    with pytest.raises(ValueError, match="unknown tiny SD1.5 variant"):
        sd15.attn2_sites("huge")


def test_generated_file_has_ldm_layout_fp16_and_the_detection_keys(tiny_sd15_sites16: Path):
    shapes = _header(tiny_sd15_sites16)
    assert dict(sd15.checkpoint_layout("sites16")) == shapes
    prefixes = {k.split(".", 1)[0] for k in shapes}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    # What ComfyUI's SD1.5 detection reads.
    unet = sd15.UNET_PREFIX
    assert shapes[unet + "input_blocks.0.0.weight"] == (320, 4, 3, 3)
    assert shapes[unet + "input_blocks.1.1.proj_in.weight"] == (320, 320, 1, 1)  # conv, not linear
    assert not any(k.startswith(unet + "label_emb") for k in shapes)
    clip_layers = {k.split(".")[5] for k in shapes if k.startswith(sd15.CLIP_PREFIX + "encoder.layers.")}
    assert len(clip_layers) == 12
    assert shapes[sd15.VAE_PREFIX + "decoder.conv_in.weight"] == (512, 4, 3, 3)
    with safe_open(str(tiny_sd15_sites16), "pt") as f:
        weight = f.get_tensor(unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
        assert f.metadata()["variant"] == "sites16"
    assert weight.dtype == torch.float16 and torch.isfinite(weight).all() and weight.std() > 0


def test_seeds_give_distinct_files_and_the_build_is_deterministic(
    tiny_sd15_sites16: Path, tiny_sd15_sites16_alt: Path
):
    assert tiny_sd15_sites16.name != tiny_sd15_sites16_alt.name
    key = sd15.UNET_PREFIX + "out.2.weight"
    with safe_open(str(tiny_sd15_sites16), "pt") as a, safe_open(str(tiny_sd15_sites16_alt), "pt") as b:
        assert not torch.equal(a.get_tensor(key), b.get_tensor(key))
        stored = a.get_tensor(sd15.CLIP_PREFIX + "final_layer_norm.weight")
    assert torch.equal(stored, torch.ones(768, dtype=torch.float16))
    # Same seed -> the same tensors: the cached file is what a rebuild would write.
    shapes = dict(sd15.checkpoint_layout("sites16"))
    with safe_open(str(tiny_sd15_sites16), "pt") as f:
        for name in (
            key,
            sd15.VAE_PREFIX + "encoder.conv_in.weight",
            sd15.CLIP_PREFIX + "encoder.layers.3.mlp.fc1.weight",
        ):
            rebuilt = sd15.init_tensor(name, shapes[name], seed=0)
            assert torch.equal(f.get_tensor(name), rebuilt)


@pytest.mark.comfyui
def test_comfyui_detects_both_variants_as_sd15(
    comfyui_server, tiny_sd15_small: Path, tiny_sd15_sites16: Path
):
    """ComfyUI's own `model_detection`, run inside the session server by the test-only probe pack."""
    detected = {}
    for path in (tiny_sd15_small, tiny_sd15_sites16):
        graph = {"1": {"class_type": "MindEditProbeDetect", "inputs": {"ckpt_name": path.name}}}
        result = comfyui_server.client.run(graph, timeout=120).raise_for_error()
        detected[path] = json.loads(result.outputs["1"]["text"][0])
    small, sites16 = detected[tiny_sd15_small], detected[tiny_sd15_sites16]
    assert small["class"] == sites16["class"] == "SD15"
    assert sites16["unet"]["channel_mult"] == [1, 1, 1, 1]
    assert sites16["unet"]["transformer_depth"] == [1, 1, 1, 1, 1, 1, 0, 0]
    # ComfyUI lists output depths from the deepest block (it pops them from the end).
    assert sites16["unet"]["transformer_depth_output"] == [1] * 9 + [0, 0, 0]
    assert sites16["unet"]["context_dim"] == 768 and sites16["unet"]["model_channels"] == 320
    assert small["unet"]["channel_mult"] == [1]
