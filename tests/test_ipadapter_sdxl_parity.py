"""Parity of the SDXL apply with diffusers' own SDXL IP-Adapter, float32, to 1e-5.

One tiny UNet with SDXL's exact site topology (70 attn2 layers: transformer depth 2 and 10 in the
down levels, 10 in the middle, 10 and 2 in the up levels; context 2048) and tiny widths, built with
diffusers' ``UNet2DConditionModel``. On the same weights and inputs, plain and plus:

- diffusers' reference: the adapter loaded by diffusers' own loader (``_load_ip_adapter_weights``:
  its key converter, ``ImageProjection`` / ``IPAdapterPlusImageProjection``, its site numbering and
  ``IPAdapterAttnProcessor2_0``), the UNet run with ``image_embeds``;
- ours for training/evaluate: `install_ipadapter_processors` on the diffusers UNet;
- ours in ComfyUI (slow: imports ComfyUI in-process): ComfyUI's own ``UNetModel`` holding the same
  weights (converted with ComfyUI's ``unet_to_diffusers`` key map), patched by `apply_ipadapter`
  (sites read off that UNet), run with ComfyUI's cond/uncond batch layout.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher

from mindedit_core.ipadapter import SDXL_SITES, apply_ipadapter, build_ipadapter
from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors, restore_processors

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 1e-5
WIDTHS = (32, 64, 128)
HEAD_DIM = 16
DEPTHS = (0, 2, 10)  # per down level; the middle has 10, up levels mirror (10, 2, 0)
CONTEXT = 2048


def _unet(seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=WIDTHS,
        layers_per_block=2,
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=tuple(w // HEAD_DIM for w in WIDTHS),  # diffusers' name for the head count
        cross_attention_dim=CONTEXT,
        use_linear_projection=True,
        norm_num_groups=32,
    ).eval()
    for p in unet.parameters():  # out-projections start at zero in diffusers: make every term count
        p.data.normal_(0, 0.05)
    return unet


def _site_widths(unet) -> list[int]:
    names = [n for n in unet.attn_processors if n.endswith("attn2.processor")]
    modules = dict(unet.named_modules())
    return [modules[n[: -len(".processor")]].to_q.out_features for n in names]


@pytest.fixture(scope="module")
def tiny_sdxl():
    unet = _unet()
    assert len(_site_widths(unet)) == 70
    return unet


@pytest.fixture(scope="module")
def adapters(tiny_sdxl):
    from devkit.fixtures.ipadapter_files import sdxl_ipadapter_sections

    widths = _site_widths(tiny_sdxl)
    out = {}
    for kind in ("plain", "plus"):
        sections = sdxl_ipadapter_sections(kind, site_widths=widths, seed=3)  # diffusers reads depth 4
        sections = {n: {k: v.float() for k, v in s.items()} for n, s in sections.items()}
        out[kind] = (sections, build_ipadapter(sections, source=f"ip-adapter-{kind}_sdxl_vit-h.safetensors"))
    return out


def _embeds(kind: str, batch: int, seed: int) -> torch.Tensor:
    shape = (batch, 1024) if kind == "plain" else (batch, 257, 1280)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _inputs(batch: int = 2):
    gen = torch.Generator().manual_seed(5)
    return torch.randn(batch, 4, 8, 8, generator=gen), torch.randn(batch, 7, CONTEXT, generator=gen)


def _diffusers_reference(unet, sections, embeds, latents, text, t):
    reference = copy.deepcopy(unet)
    reference._load_ip_adapter_weights([copy.deepcopy(sections)], low_cpu_mem_usage=False)
    with torch.no_grad():
        return reference(
            latents, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [embeds[:, None]]}
        ).sample


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_diffusers_processor_matches_diffusers_sdxl_ipadapter(tiny_sdxl, adapters, kind):
    sections, adapter = adapters[kind]
    latents, text = _inputs()
    embeds = _embeds(kind, 2, seed=9)
    t = torch.tensor([500.0, 500.0])
    expected = _diffusers_reference(tiny_sdxl, sections, embeds, latents, text, t)
    state = install_ipadapter_processors(tiny_sdxl, adapter)
    try:
        state.set_embeds(adapter, embeds, cfg=False)
        with torch.no_grad():
            ours = tiny_sdxl(latents, t, encoder_hidden_states=text).sample
            state.tokens = None
            without = tiny_sdxl(latents, t, encoder_hidden_states=text).sample
    finally:
        restore_processors(tiny_sdxl, state.original_processors)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)
    assert (without - expected).abs().max() > 100 * ATOL  # the 70 image terms are not negligible


def _comfy_unet(diffusers_unet):
    """ComfyUI's own LDM UNet with SDXL's topology at the tiny widths, holding the diffusers weights."""
    from helpers_nodes import import_comfy

    import_comfy()
    import comfy.ops
    import comfy.utils
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    config = dict(
        image_size=8,
        in_channels=4,
        model_channels=WIDTHS[0],
        out_channels=4,
        num_res_blocks=[2, 2, 2],
        channel_mult=[w // WIDTHS[0] for w in WIDTHS],
        num_head_channels=HEAD_DIM,
        use_spatial_transformer=True,
        use_linear_in_transformer=True,
        transformer_depth=[d for d in DEPTHS for _ in range(2)],
        transformer_depth_middle=10,
        transformer_depth_output=[d for d in DEPTHS for _ in range(3)],  # popped from the end
        context_dim=CONTEXT,
        legacy=False,
    )
    unet = UNetModel(**config, operations=comfy.ops.disable_weight_init).eval()
    key_map = comfy.utils.unet_to_diffusers(config)
    source = diffusers_unet.state_dict()
    state = {ldm: source[diff] for diff, ldm in key_map.items() if diff in source}
    missing, unexpected = unet.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing[:5], unexpected[:5])
    return unet


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_comfy_apply_on_comfys_unet_matches_diffusers_sdxl_ipadapter(tiny_sdxl, adapters, kind):
    """All 70 sites, read off ComfyUI's UNet, against diffusers' own numbering and processor. The
    batch is ComfyUI's [cond, uncond] (cond_or_uncond [0, 1]): the uncond row gets the negative."""
    sections, adapter = adapters[kind]
    comfy_unet = _comfy_unet(tiny_sdxl)
    latents, text = _inputs()
    pos, neg = _embeds(kind, 1, seed=11), _embeds(kind, 1, seed=12)
    t = torch.tensor([500.0, 500.0])
    expected = _diffusers_reference(tiny_sdxl, sections, torch.cat([pos, neg]), latents, text, t)

    patcher = FakeModelPatcher(SimpleNamespace(diffusion_model=comfy_unet))
    patched = apply_ipadapter(patcher, adapter, pos, neg, weight=1.0)
    patches = patched.attn2_patches()
    assert set(patches) == {site.comfy_key for site in SDXL_SITES}
    options = copy.copy(patched.model_options["transformer_options"])
    options.update({"cond_or_uncond": [0, 1], "sigmas": torch.tensor([5.0, 5.0])})
    with torch.no_grad():
        ours = comfy_unet(latents, t, context=text, transformer_options=options)
        unpatched = comfy_unet(latents, t, context=text, transformer_options={})
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)
    assert (unpatched - expected).abs().max() > 100 * ATOL
