"""SDXL IP-Adapters for the ViT-H encoder: detection from keys and shapes, the 70 sites, and the
checks at apply time (no ComfyUI process; the real ComfyUI runs are in test_ipadapter_sdxl_comfyui)."""

from __future__ import annotations

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher

from mindedit_core.ipadapter import (
    SDXL_SITES,
    IPAdapterFileError,
    IPAdapterModelMismatch,
    apply_ipadapter,
    load_ipadapter,
)
from mindedit_core.ipadapter.weights import build_ipadapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sdxl_site_table_is_sdxl_base():
    """70 attn2 layers: input 4, 5 (x2, 640) and 7, 8 (x10, 1280); output 0-2 (x10, 1280) and 3-5
    (x2, 640); middle x10 (1280); numbered 1, 3, ..., 139 in diffusers' order (down, up, middle)."""
    assert len(SDXL_SITES) == 70
    assert [s.adapter_number for s in SDXL_SITES] == list(range(1, 140, 2))
    per_block: dict = {}
    for site in SDXL_SITES:
        per_block.setdefault(site.comfy_key[:2], []).append((site.comfy_key[2], site.width))
    assert list(per_block) == [
        ("input", 4), ("input", 5), ("input", 7), ("input", 8),
        ("output", 0), ("output", 1), ("output", 2), ("output", 3), ("output", 4), ("output", 5),
        ("middle", 0),
    ]  # fmt: skip
    for (kind, block), layers in per_block.items():
        depth, width = (
            (2, 640)
            if (kind, block) in {("input", 4), ("input", 5)} or kind == "output" and block >= 3
            else (10, 1280)
        )
        assert layers == [(i, width) for i in range(depth)], (kind, block)


@pytest.mark.parametrize(
    ("kind", "tokens", "spec_shape"),
    [("plain", 4, (1024,)), ("plus", 16, (257, 1280)), ("plus-face", 16, (257, 1280))],
)
def test_sdxl_vit_h_kinds_are_detected(sdxl_ipadapter_tiny_files, kind, tokens, spec_shape):
    adapter = load_ipadapter(sdxl_ipadapter_tiny_files[kind])
    assert (adapter.family, adapter.kind, adapter.info.context_dim) == ("sdxl", kind[:5].rstrip("-"), 2048)
    assert adapter.info.tokens == tokens and adapter.embed_spec.sample_shape == spec_shape
    assert [site.adapter_number for site, _ in adapter.sites] == list(range(1, 140, 2))
    embeds = torch.randn(2, *spec_shape, generator=torch.Generator().manual_seed(0))
    out = adapter.project(embeds)
    assert out.shape == (2, tokens, 2048) and torch.isfinite(out).all()
    if kind != "plain":  # the SDXL resampler: 1280 wide, 20 heads of 64, 4 layers
        assert adapter.image_proj.latents.shape == (1, 16, 1280)
        assert len(adapter.image_proj.layers) == 4 and adapter.image_proj.layers[0][0].heads == 20


def test_sdxl_bin_and_safetensors_load_identically(fixture_cache):
    from devkit.fixtures.ipadapter_files import sdxl_ipadapter_file

    narrow = (64,) * 70
    ref = load_ipadapter(sdxl_ipadapter_file(fixture_cache, "plus", "safetensors", site_widths=narrow))
    for layout in ("bin", "legacy"):
        other = load_ipadapter(
            sdxl_ipadapter_file(fixture_cache, "plus", layout, site_widths=narrow)
        ).state_dict()
        assert other.keys() == ref.state_dict().keys()
        assert all(torch.equal(other[k], v) for k, v in ref.state_dict().items()), layout


def test_sdxl_plus_with_bigg_hidden_states_is_refused():
    from devkit.fixtures.ipadapter_files import sdxl_ipadapter_sections

    sections = sdxl_ipadapter_sections("plus", site_widths=(64,) * 70, depth=1)
    proj_in = sections["image_proj"]["proj_in.weight"]
    sections["image_proj"]["proj_in.weight"] = torch.zeros(proj_in.shape[0], 1664, dtype=proj_in.dtype)
    with pytest.raises(
        IPAdapterFileError, match=r"ViT-bigG/14.*1664-wide hidden states.*ip-adapter-plus_sdxl_vit-h"
    ):
        build_ipadapter(sections, source="my-plus_sdxl.safetensors")


def test_sdxl_apply_on_the_family_layout_patches_70_keys(sdxl_ipadapter_tiny_files):
    adapter = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    patched = apply_ipadapter(FakeModelPatcher(), adapter, torch.randn(1, 1024))
    assert set(patched.attn2_patches()) == {site.comfy_key for site in SDXL_SITES}


def test_sd15_adapter_on_an_sdxl_unet_is_refused_naming_both(ipadapter_sites16_files):
    from test_ipadapter_patch import _fake_unet

    adapter = load_ipadapter(ipadapter_sites16_files["plain"])
    with pytest.raises(IPAdapterModelMismatch) as err:
        apply_ipadapter(
            FakeModelPatcher(_fake_unet(320, context=2048, family="sdxl")), adapter, torch.zeros(1, 1024)
        )
    message = str(err.value)
    assert ipadapter_sites16_files["plain"].name in message
    assert "SD1.5 adapter (768-wide image tokens)" in message and "SDXL-family checkpoint" in message
    assert "ip-adapter_sdxl_vit-h" in message


def test_sdxl_fine_tune_with_the_same_layout_is_read_off_the_model(sdxl_ipadapter_tiny_files):
    from test_ipadapter_patch import _fake_unet

    adapter = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    patched = apply_ipadapter(
        FakeModelPatcher(_fake_unet(320, context=2048, family="sdxl")), adapter, torch.randn(1, 1024)
    )
    patches = patched.attn2_patches()
    assert set(patches) == {site.comfy_key for site in SDXL_SITES}
    assert {key: p.site.adapter_number for key, p in patches.items()} == {
        s.comfy_key: s.adapter_number for s in SDXL_SITES
    }


def test_ssd1b_like_layout_is_an_unknown_layout_error(sdxl_ipadapter_tiny_files):
    """A distilled SDXL (SSD-1B keeps 4 of 10 layers in the deep blocks): a clear error, no guess."""
    from test_ipadapter_patch import _fake_unet

    adapter = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    unet = _fake_unet(320, context=2048, family="sdxl")
    for block in (7, 8):  # fewer layers than SDXL, and an extra site SDXL does not have
        unet.diffusion_model.input_blocks[block][1].transformer_blocks[4:] = []
    unet.diffusion_model.input_blocks[1] = unet.diffusion_model.input_blocks[4]
    with pytest.raises(
        IPAdapterModelMismatch,
        match=r"patches 70 cross-attention layers .*has 60 \(input 1 x2.*unknown layout",
    ):
        apply_ipadapter(FakeModelPatcher(unet), adapter, torch.randn(1, 1024))


def _ipadapter_plus_style_install(patcher, key, callback, **kwargs):
    """What ComfyUI_IPAdapter_plus does per SDXL site (3-tuple keys): a fresh replacement, or
    ``.add(callback, **kwargs)`` on the one it finds there."""
    later = patcher.clone()
    table = (
        later.model_options["transformer_options"].setdefault("patches_replace", {}).setdefault("attn2", {})
    )
    table[key].add(callback, **kwargs)
    return later


def test_ipadapter_plus_applied_after_us_on_sdxl_joins_our_site(sdxl_ipadapter_tiny_files):
    adapter = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    ours = apply_ipadapter(FakeModelPatcher(), adapter, torch.randn(1, 1024), weight=1.0)
    key = SDXL_SITES[30].comfy_key  # output 0, layer 6
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 16, 320, generator=gen) for _ in range(3))

    def extra(sigma):
        return {"n_heads": 5, "cond_or_uncond": [1, 0], "sigmas": torch.full((2,), sigma)}

    calls = []

    def their_term(out, q, k, v, extra_options, weight, sigma_start, sigma_end, **_):
        calls.append(weight)
        return torch.full_like(out, weight)

    both = _ipadapter_plus_style_install(ours, key, their_term, weight=0.5, sigma_start=10.0, sigma_end=1.0)
    alone = ours.call_attn2(key, q, k, v, extra(5.0))
    torch.testing.assert_close(both.call_attn2(key, q, k, v, extra(5.0)), alone + 0.5, atol=1e-5, rtol=0)
    assert calls == [0.5]
    assert torch.equal(both.call_attn2(key, q, k, v, extra(20.0)), ours.call_attn2(key, q, k, v, extra(20.0)))
    assert calls == [0.5]  # outside its window: not run


def test_sdxl_sites_keep_the_sd15_guarantees_window_weight_mask_and_batch_mapping(sdxl_ipadapter_tiny_files):
    """On SDXL's middle block (10 layers, 1280 wide in SDXL base; 320 here): outside [start_at, end_at]
    and at weight 0 the text attention is returned exactly; a zero mask removes the image term; with
    per_latent each latent gets its own embedding (cond chunk) and the negative (uncond chunk)."""
    from mindedit_core.ipadapter.attention import sdpa_attention

    adapter = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    key = ("middle", 0, 7)
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(4, 16, 320, generator=gen) for _ in range(3))
    extra = {
        "n_heads": 5,
        "cond_or_uncond": [0, 1],
        "sigmas": torch.full((4,), 5.0),
        "original_shape": [4, 4, 4, 4],
    }
    text = sdpa_attention(q, k, v, 5)
    embeds = torch.randn(2, 1024, generator=gen)

    def run(**kwargs):
        patched = apply_ipadapter(FakeModelPatcher(), adapter, embeds, **kwargs)
        return patched.call_attn2(key, q, k, v, dict(extra))

    assert torch.equal(run(weight=0.0), text)
    assert torch.equal(run(start_at=0.9, end_at=1.0), text)  # sigma 5 lies before 90 % of the schedule
    assert torch.equal(run(attn_mask=torch.zeros(1, 8, 8)), text)
    per_latent = run(batch_mapping="per_latent")
    assert (per_latent - text).abs().max() > 1e-4
    for row in (0, 1):  # latent i (cond chunk) sees embedding i alone, as if it were the only one
        alone = apply_ipadapter(FakeModelPatcher(), adapter, embeds[row : row + 1])
        out = alone.call_attn2(key, q, k, v, dict(extra))
        torch.testing.assert_close(per_latent[row], out[row], atol=1e-5, rtol=0)
        torch.testing.assert_close(per_latent[2:], out[2:], atol=1e-5, rtol=0)  # uncond: the zero negative
    assert (per_latent[0] - per_latent[1]).abs().max() > 0
