"""Numerical parity with diffusers' IP-Adapter (the reference implementation), float32, to 1e-5.

On the same random adapter weights and inputs, for one cross-attention site:
- our image projection == diffusers' ``ImageProjection`` / ``IPAdapterPlusImageProjection`` loaded
  through diffusers' own key converter;
- our ComfyUI replacement (text attention + weight x image attention, cond/uncond rows, mask) ==
  diffusers' ``IPAdapterAttnProcessor2_0`` on a diffusers ``Attention`` module;
- our diffusers processor (used by training/evaluate) == the same reference.
"""

from __future__ import annotations

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher

from mindedit_core.ipadapter import apply_ipadapter
from mindedit_core.ipadapter.diffusers_processor import IPAdapterRunState, MindEditIPAttnProcessor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 1e-5
SITE_INDEX = 2  # input block 4: a 640-wide site in real SD1.5


def _diffusers_projection(adapter):
    from diffusers import UNet2DConditionModel

    state = {k: v.clone() for k, v in adapter.image_proj.state_dict().items()}
    convert = UNet2DConditionModel._convert_ip_adapter_image_proj_to_diffusers
    return convert(None, state, low_cpu_mem_usage=False).float().eval()


def _embeds(kind: str, batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, 1024) if kind == "plain" else (batch, 257, 1280)
    return torch.randn(shape, generator=gen)


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_projection_matches_diffusers(loaded_ipadapters, kind):
    adapter = loaded_ipadapters[kind]
    embeds = _embeds(kind, 2, seed=1)
    reference = _diffusers_projection(adapter)
    with torch.no_grad():
        expected = reference(embeds)
    ours = adapter.project(embeds)
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def _reference_site(adapter, site_index: int, weight: float, num_tokens: int):
    """A diffusers Attention with the real SD1.5 head layout (8 heads) and the reference processor."""
    from diffusers.models.attention_processor import Attention, IPAdapterAttnProcessor2_0

    site, proj = adapter.sites[site_index]
    width = proj.width
    torch.manual_seed(1234)
    attn = Attention(query_dim=width, cross_attention_dim=768, heads=8, dim_head=width // 8).eval()
    for p in attn.parameters():
        p.data.normal_(0, 0.05)
    processor = IPAdapterAttnProcessor2_0(
        hidden_size=width, cross_attention_dim=768, num_tokens=(num_tokens,), scale=weight
    )
    processor.to_k_ip[0].weight.data.copy_(proj.to_k_ip.weight)
    processor.to_v_ip[0].weight.data.copy_(proj.to_v_ip.weight)
    attn.set_processor(processor)
    return site, attn


CASES = [
    # kind, masked, latent (h, w), weight
    ("plain", False, (8, 8), 0.7),
    ("plain", True, (8, 8), 0.7),
    ("plus", False, (8, 8), -0.5),
    ("plus", True, (8, 16), 1.3),
]


@pytest.mark.parametrize(("kind", "masked", "latent_hw", "weight"), CASES)
def test_comfy_replacement_matches_diffusers_processor(loaded_ipadapters, kind, masked, latent_hw, weight):
    adapter = loaded_ipadapters[kind]
    site, attn = _reference_site(adapter, SITE_INDEX, weight, adapter.info.tokens)
    h, w = latent_hw
    gen = torch.Generator().manual_seed(7)
    hidden = torch.randn(
        2, h * w, attn.query_dim if hasattr(attn, "query_dim") else attn.inner_dim, generator=gen
    )
    text = torch.randn(2, 77, 768, generator=gen)
    pos, neg = _embeds(kind, 1, seed=3), _embeds(kind, 1, seed=4)
    mask = torch.rand(1, 2 * h, 2 * w, generator=gen) if masked else None

    # Reference: ComfyUI batches [uncond, cond]; diffusers gets the matching image tokens per row.
    ip_tokens = torch.cat([adapter.project(neg), adapter.project(pos)], dim=0)
    with torch.no_grad():
        if masked:
            expected = attn(
                hidden, encoder_hidden_states=(text, [ip_tokens[:, None]]), ip_adapter_masks=[mask[:, None]]
            )
        else:
            expected = attn(hidden, encoder_hidden_states=(text, [ip_tokens]))

    patched = apply_ipadapter(FakeModelPatcher(), adapter, pos, neg, weight=weight, attn_mask=mask)
    patch = patched.attn2_patches()[site.comfy_key]
    extra = {
        "n_heads": 8,
        "cond_or_uncond": [1, 0],
        "sigmas": torch.tensor([5.0, 5.0]),
        "original_shape": [2, 4, h, w],
    }
    with torch.no_grad():
        q, k, v = attn.to_q(hidden), attn.to_k(text), attn.to_v(text)
        ours = attn.to_out[0](patch(q, k, v, extra))
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)
    # and the image term is not negligible: without it the outputs differ clearly
    with torch.no_grad():
        plain_attn = attn.to_out[0](patch.attention_fn(q, k, v, 8, None))
    assert (plain_attn - expected).abs().max() > 100 * ATOL


@pytest.mark.parametrize(("kind", "masked"), [("plain", False), ("plus", True)])
def test_diffusers_processor_matches_reference(loaded_ipadapters, kind, masked):
    adapter = loaded_ipadapters[kind]
    weight = 0.9
    site, attn = _reference_site(adapter, SITE_INDEX, weight, adapter.info.tokens)
    gen = torch.Generator().manual_seed(11)
    width = adapter.sites[SITE_INDEX][1].width
    hidden = torch.randn(2, 64, width, generator=gen)
    text = torch.randn(2, 77, 768, generator=gen)
    pos, neg = _embeds(kind, 1, seed=5), _embeds(kind, 1, seed=6)
    mask = torch.rand(1, 16, 16, generator=gen) if masked else None
    ip_tokens = torch.cat([adapter.project(neg), adapter.project(pos)], dim=0)
    with torch.no_grad():
        if masked:
            expected = attn(
                hidden, encoder_hidden_states=(text, [ip_tokens[:, None]]), ip_adapter_masks=[mask[:, None]]
            )
        else:
            expected = attn(hidden, encoder_hidden_states=(text, [ip_tokens]))

    state = IPAdapterRunState(weight=weight, mask=mask)
    state.set_embeds(adapter, pos, neg, cfg=True)
    attn.set_processor(MindEditIPAttnProcessor(adapter.sites[SITE_INDEX][1], state))
    with torch.no_grad():
        ours = attn(hidden, encoder_hidden_states=text)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def test_diffusers_processor_masks_each_latent_with_its_own_mask(loaded_ipadapters):
    """Two latents with CFG (UNet batch [uncond0, uncond1, cond0, cond1]): latent 1's mask is all
    zeros, so its rows get the text attention alone, in both halves; latent 0's rows do not."""
    adapter = loaded_ipadapters["plain"]
    _, attn = _reference_site(adapter, SITE_INDEX, 1.0, adapter.info.tokens)
    gen = torch.Generator().manual_seed(3)
    width = adapter.sites[SITE_INDEX][1].width
    hidden = torch.randn(4, 64, width, generator=gen)
    text = torch.randn(4, 77, 768, generator=gen)
    state = IPAdapterRunState(mask=torch.stack([torch.ones(8, 8), torch.zeros(8, 8)]))
    attn.set_processor(MindEditIPAttnProcessor(adapter.sites[SITE_INDEX][1], state))
    with torch.no_grad():
        text_only = attn(hidden, encoder_hidden_states=text)  # no tokens: no image term
        state.set_embeds(adapter, _embeds("plain", 2, seed=7), cfg=True)
        ours = attn(hidden, encoder_hidden_states=text)
    torch.testing.assert_close(ours[[1, 3]], text_only[[1, 3]], atol=ATOL, rtol=0)
    assert (ours[[0, 2]] - text_only[[0, 2]]).abs().max() > 1e-3
