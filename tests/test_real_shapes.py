"""The real-shape fixture tier (`devkit.fixtures.real_shapes`).

Default run: shape checks that build nothing heavy (key layouts, the meta device, the processor).
Opt-in (``-m real_shapes`` or ``MINDEDIT_REAL_SHAPES=1``; also marked slow): build the ~2 GiB SD1.5
file and the ~1.7 GiB 0.5B folder, load the SD1.5 in the real ComfyUI (in-process, --cpu), patch
all 16 sites at their real widths and sample; run the 0.5B one pass.
"""

from __future__ import annotations

import os

import pytest
import torch

from devkit.fixtures import real_shapes as rs
from mindedit_core.ipadapter import SD15_SITES, SDXL_SITES, apply_ipadapter, load_ipadapter
from mindedit_core.vision_head import default_layer


def _opted_in(config) -> bool:
    expression = config.getoption("markexpr") or ""
    chosen = "real_shapes" in expression and "not real_shapes" not in expression
    return chosen or os.environ.get("MINDEDIT_REAL_SHAPES") == "1"


@pytest.fixture
def real_shapes_opt_in(request):
    """Skip unless real shapes were asked for: they build ~4 GiB of files and need ~6 GiB of RAM."""
    if not _opted_in(request.config):
        pytest.skip("real-shape tier is opt-in: run with -m real_shapes (or MINDEDIT_REAL_SHAPES=1)")


# -- default run: shapes only ------------------------------------------------------------------------


def test_real_sd15_layout_has_sd15s_exact_unet_and_site_widths():
    assert rs.real_sd15_unet_params() == rs.REAL_SD15_UNET_PARAMS
    by_key = {(s.block, s.index, s.transformer_index): s.width for s in rs.real_sd15_sites()}
    assert by_key == {site.comfy_key: site.width for site in SD15_SITES}
    assert sorted(set(by_key.values())) == [320, 640, 1280]


def test_real_ipadapter_sections_have_real_widths(fixture_cache):
    from devkit.fixtures.ipadapter_files import ipadapter_sections

    sections = ipadapter_sections("plain")
    widths = [sections["ip_adapter"][site.k_name].shape[0] for site in SD15_SITES]
    assert widths == [site.width for site in SD15_SITES]


@pytest.mark.parametrize(
    ("size", "params_b", "hidden", "layers", "layer_m"),
    [("0.5b", 0.894, 896, 24, 18), ("7b", 8.031, 3584, 28, 21)],
)
def test_llava_onevision_real_shapes_on_meta(size, params_b, hidden, layers, layer_m):
    model, tokenizer = rs.real_llava_onevision_model(size, device="meta", with_processor=False)
    assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    assert rs.image_token_count(model.config) == 1485  # what the processor inserts for 384 px
    text, vision = model.config.text_config, model.config.vision_config
    assert (text.hidden_size, text.num_hidden_layers) == (hidden, layers)
    assert (vision.hidden_size, vision.num_hidden_layers, vision.image_size, vision.patch_size) == (
        1152,
        26,
        384,
        14,
    )
    assert text.vocab_size >= 151_646  # the rows exist at full size even with the tiny tokenizer
    assert rs.parameter_count(model) / 1e9 == pytest.approx(params_b, abs=0.002)
    assert default_layer(layers) == layer_m
    assert next(model.parameters()).device.type == "meta"


def test_real_processor_gives_the_real_image_token_count():
    from PIL import Image

    config, processor = rs.real_llava_onevision_config_and_processor("0.5b")
    ids = processor(images=Image.new("RGB", (384, 384)), text="<image>\nx", return_tensors="pt")["input_ids"]
    assert int((ids == processor.tokenizer.convert_tokens_to_ids("<image>")).sum()) == 1485
    assert rs.image_token_count(config) == 1485  # the GPU check's processor-free count agrees


def test_only_the_half_billion_shape_is_saved(fixture_cache):
    with pytest.raises(ValueError, match="only the 0.5B shape"):
        rs.real_llava_onevision(fixture_cache, "7b")
    with pytest.raises(ValueError, match="unknown LLaVA-OneVision size"):
        rs.real_llava_onevision_model("13b", device="meta")


# -- opt-in: the real files in the real ComfyUI and transformers -------------------------------------
# (the 0.5B test runs first and frees its model before the SD1.5 module fixture loads: peak ~6 GiB)


@pytest.mark.usefixtures("real_shapes_opt_in", "one_torch_thread")
@pytest.mark.slow
@pytest.mark.real_shapes
def test_real_half_billion_one_pass_gives_v_insight(fixture_cache):
    import numpy as np

    from mindedit_core.mllm import MindEditMLLM, load_mllm
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig

    base = load_mllm(rs.real_llava_onevision(fixture_cache), device="cpu", dtype="fp32")
    assert base.num_layers == 24
    head = VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=896, layer=default_layer(24))).eval()
    mllm = MindEditMLLM(base.model, base.processor, head)
    image = np.random.default_rng(0).random((384, 384, 3)).astype(np.float32)
    result = mllm.refine_and_embed(image, "make the sky a sunset", max_new_tokens=2)
    assert tuple(result.v_insight.shape) == (1, 257, 1280)
    assert torch.isfinite(result.v_insight).all()
    assert result.new_tokens == 2 and result.prompt_tokens > 1485


@pytest.fixture(scope="module")
def comfy_real_model(request, fixture_cache):
    """The real-shape SD1.5 loaded by ComfyUI's own checkpoint loader (UNet only, fp32 on the CPU)."""
    if not _opted_in(request.config):
        pytest.skip("real-shape tier is opt-in: run with -m real_shapes (or MINDEDIT_REAL_SHAPES=1)")
    from helpers_nodes import import_comfy

    import_comfy()
    import comfy.sd

    path = rs.real_sd15_checkpoint(fixture_cache)
    return comfy.sd.load_checkpoint_guess_config(str(path), output_vae=False, output_clip=False)[0]


def _attn2(diffusion_model, key):
    kind, block, index = key
    container = (
        diffusion_model.middle_block
        if kind == "middle"
        else getattr(diffusion_model, f"{kind}_blocks")[block]
    )
    return next(c for c in container if hasattr(c, "transformer_blocks")).transformer_blocks[index].attn2


@pytest.mark.parametrize("kind", ["plain", "plus"])
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.slow
@pytest.mark.real_shapes
def test_real_sd15_in_comfyui_patches_all_16_sites_at_their_widths(comfy_real_model, fixture_cache, kind):
    import comfy.sample

    model = comfy_real_model
    assert type(model.model.model_config).__name__ == "SD15"
    unet = model.model.diffusion_model
    assert sum(p.numel() for p in unet.parameters()) == rs.REAL_SD15_UNET_PARAMS
    adapter = load_ipadapter(rs.real_ipadapter_file(fixture_cache, kind))
    embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
    patched = apply_ipadapter(model, adapter, embeds, weight=1.0)
    patches = patched.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert set(patches) == {site.comfy_key for site in SD15_SITES}
    widths = {}
    for key, patch in patches.items():
        attn2 = _attn2(unet, key)
        width = attn2.to_q.weight.shape[0]
        widths[key] = width
        assert patch.site.comfy_key == key
        k_pos = patch.prepared.site_kv[patch.site.adapter_number][0]
        assert k_pos.shape[-1] == width == patch.site.width
        q = torch.randn(2, 16, width)
        kv = torch.randn(2, 77, width)
        extra = {"n_heads": 8, "cond_or_uncond": [1, 0], "sigmas": torch.tensor([5.0, 5.0])}
        out = patch(q, kv, kv, extra)
        assert out.shape == q.shape and torch.isfinite(out).all()
    assert sorted(widths.values()) == sorted(site.width for site in SD15_SITES)

    gen = torch.Generator().manual_seed(1)
    cond = [[torch.randn(1, 77, 768, generator=gen), {}]]
    uncond = [[torch.randn(1, 77, 768, generator=gen), {}]]
    noise = torch.randn(1, 4, 8, 8, generator=gen)

    def sample(m):
        return comfy.sample.sample(
            m,
            noise,
            1,
            5.0,
            "euler",
            "normal",
            cond,
            uncond,
            torch.zeros_like(noise),
            disable_pbar=True,
            seed=0,
        )

    plain_out, patched_out = sample(model), sample(patched)
    assert torch.isfinite(patched_out).all()
    assert not torch.allclose(plain_out, patched_out)  # the image attention changed the result


def test_real_sdxl_layout_is_sdxl_base_with_its_70_sites():
    from devkit.fixtures.sdxl import REAL_SDXL_UNET_PARAMS, unet_layout, unet_params

    assert unet_params("real") == REAL_SDXL_UNET_PARAMS
    sites = {}
    for key, shape in unet_layout("real"):
        if key.endswith(".attn2.to_k.weight"):
            parts = key.split(".")
            kind = parts[0].split("_")[0]
            block = 0 if kind == "middle" else int(parts[1])
            sites[(kind, block, int(parts[parts.index("transformer_blocks") + 1]))] = shape
    assert sites == {site.comfy_key: (site.width, 2048) for site in SDXL_SITES}


@pytest.mark.parametrize("kind", ["plain", "plus"])
@pytest.mark.usefixtures("real_shapes_opt_in", "one_torch_thread")
@pytest.mark.slow
@pytest.mark.real_shapes
def test_real_sdxl_on_meta_in_comfyui_patches_all_70_sites_at_their_widths(fixture_cache, kind):
    """ComfyUI detects SDXL base's real layout, builds its UNet (meta device: 2.57 B params, no
    memory); real-width adapters patch 70/70 sites, each patch runs at its site's width."""
    from helpers_nodes import import_comfy

    import_comfy()
    model = rs.real_sdxl_model_on_meta()
    assert type(model.model.model_config).__name__ == "SDXL"
    unet = model.model.diffusion_model
    assert sum(p.numel() for p in unet.parameters()) == rs.REAL_SDXL_UNET_PARAMS
    adapter = load_ipadapter(rs.real_sdxl_ipadapter_file(fixture_cache, kind))
    embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
    patched = apply_ipadapter(model, adapter, embeds, weight=1.0)
    patches = patched.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert set(patches) == {site.comfy_key for site in SDXL_SITES}
    for key, patch in patches.items():
        width = _attn2(unet, key).to_q.weight.shape[0]
        assert patch.site.width == width and patch.site.comfy_key == key
        assert patch.prepared.site_kv[patch.site.adapter_number][0].shape[-1] == width
        q = torch.randn(2, 16, width)
        kv = torch.randn(2, 77, width)
        extra = {"n_heads": width // 64, "cond_or_uncond": [1, 0], "sigmas": torch.tensor([5.0, 5.0])}
        out = patch(q, kv, kv, extra)
        assert out.shape == q.shape and torch.isfinite(out).all()
    assert sorted(p.site.width for p in patches.values()) == sorted(s.width for s in SDXL_SITES)


@pytest.mark.parametrize(("width", "tokens", "image_tokens"), [(320, 256, 4), (640, 64, 16), (1280, 16, 16)])
@pytest.mark.parametrize("masked", [False, True])
def test_image_term_at_real_widths_takes_the_fused_path_and_matches_the_generic_one(
    width, tokens, image_tokens, masked
):
    from mindedit_core.ipadapter.attention import FUSED_IMAGE_TOKENS, decoupled_attention, sdpa_attention

    gen = torch.Generator().manual_seed(width)
    q, text = torch.randn(2, tokens, width, generator=gen), torch.randn(2, tokens, width, generator=gen)
    k, v = (
        torch.randn(1, image_tokens, width, generator=gen),
        torch.randn(1, image_tokens, width, generator=gen),
    )
    mask = torch.rand(2, tokens, 1, generator=gen) if masked else None
    calls = []

    def host_attention(q, k, v, heads, extra=None):  # stands in for ComfyUI's kernel
        calls.append(k.shape[1])
        return sdpa_attention(q, k, v, heads)

    fused = decoupled_attention(q, text, k, v, 8, weight=-0.7, mask=mask, attention_fn=host_attention)
    assert calls == [] and image_tokens <= FUSED_IMAGE_TOKENS
    image = sdpa_attention(q, k.expand(2, -1, -1), v.expand(2, -1, -1), 8)
    expected = text - 0.7 * (image * mask if masked else image)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    many = torch.randn(2, FUSED_IMAGE_TOKENS + 1, width, generator=gen)
    decoupled_attention(q, text, many, many, 8, weight=1.0, attention_fn=host_attention)
    assert calls == [FUSED_IMAGE_TOKENS + 1]  # large key sets keep the host's memory-efficient kernel


@pytest.mark.parametrize(
    ("name", "params_b", "hidden", "layers"),
    [("qwen2.5-vl-3b", 3.75, 2048, 36), ("qwen3-vl-2b", 2.13, 2048, 28)],
)
def test_qwen_vl_real_shapes_on_meta_give_the_head_its_layer_and_width(name, params_b, hidden, layers):
    from mindedit_core.mllm import find_decoder_layers
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig

    model = rs.real_qwen_vl_meta_model(name)
    assert len(find_decoder_layers(model)) == layers
    assert model.config.text_config.hidden_size == hidden
    assert rs.parameter_count(model) / 1e9 == pytest.approx(params_b, rel=0.03)
    with torch.device("meta"):
        head = VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=hidden, layer=default_layer(layers)))
    assert tuple(head(torch.empty(1, 5, hidden, device="meta"), torch.ones(1, 5, device="meta")).shape) == (
        1,
        257,
        1280,
    )
