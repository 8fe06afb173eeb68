"""The ComfyUI patch logic on a stand-in ModelPatcher (no ComfyUI process): composition with other
patches, the schedule window, weight 0, cond/uncond and batch mapping, masks, and model checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher

from mindedit_core.embeds import EmbedShapeError, unconditional_embeds
from mindedit_core.ipadapter import (
    SD15_SITES,
    SITES_BY_FAMILY,
    IPAdapterModelMismatch,
    MindEditAttn2Patch,
    apply_ipadapter,
    load_ipadapter,
)
from mindedit_core.ipadapter.attention import attention_grid, mask_for_tokens, rows_for_batch, sdpa_attention

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SITE = SD15_SITES[0]  # input 1, 320 wide


@pytest.fixture(scope="module")
def plain(ipadapter_sites16_files):
    return load_ipadapter(ipadapter_sites16_files["plain"])


def _qkv(batch: int, tokens: int = 64, width: int = 320, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, tokens, width, generator=gen),
        torch.randn(batch, 77, width, generator=gen),
        torch.randn(batch, 77, width, generator=gen),
    )


def _extra(batch_labels=(1, 0), sigma=5.0, hw=(8, 8), batch=2):
    return {
        "n_heads": 8,
        "cond_or_uncond": list(batch_labels),
        "sigmas": torch.full((batch,), sigma),
        "original_shape": [batch, 4, *hw],
    }


def _embeds(batch=1, seed=0):
    return torch.randn(batch, 1024, generator=torch.Generator().manual_seed(seed))


def test_installs_all_16_keys_on_a_clone(plain):
    base = FakeModelPatcher()
    patched = apply_ipadapter(base, plain, _embeds())
    assert set(patched.attn2_patches()) == {site.comfy_key for site in SD15_SITES}
    assert base.attn2_patches() == {}  # the input MODEL is untouched
    assert all(isinstance(p, MindEditAttn2Patch) for p in patched.attn2_patches().values())


def test_weight_zero_is_bit_exact_text_attention(plain):
    patched = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=0.0)
    patch = patched.attn2_patches()[SITE.comfy_key]
    q, k, v = _qkv(2)
    assert torch.equal(patch(q, k, v, _extra()), patch.attention_fn(q, k, v, 8, None))


def test_nonzero_weight_changes_output_and_negative_weight_mirrors(plain):
    q, k, v = _qkv(2)
    text = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=0.0).attn2_patches()[SITE.comfy_key](
        q, k, v, _extra()
    )
    plus_one = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=1.0).attn2_patches()[
        SITE.comfy_key
    ]
    minus_one = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=-1.0).attn2_patches()[
        SITE.comfy_key
    ]
    up, down = plus_one(q, k, v, _extra()), minus_one(q, k, v, _extra())
    assert (up - text).abs().max() > 1e-3
    torch.testing.assert_close(up - text, text - down, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("start_at", "end_at", "sigma", "active"),
    [
        (0.0, 1.0, 14.6, True),
        (0.0, 1.0, 0.03, True),
        (0.5, 1.0, 14.0, False),  # early step, window starts half way
        (0.5, 1.0, 0.1, True),
        (0.0, 0.3, 0.1, False),  # late step, window ended
        (0.0, 0.3, 14.0, True),
    ],
)
def test_schedule_window_in_sigmas(plain, start_at, end_at, sigma, active):
    q, k, v = _qkv(2)
    patch = apply_ipadapter(
        FakeModelPatcher(), plain, _embeds(), start_at=start_at, end_at=end_at
    ).attn2_patches()[SITE.comfy_key]
    out = patch(q, k, v, _extra(sigma=sigma))
    text = patch.attention_fn(q, k, v, 8, None)
    assert (not torch.equal(out, text)) is active


def test_start_after_end_is_refused(plain):
    with pytest.raises(ValueError, match="start_at"):
        apply_ipadapter(FakeModelPatcher(), plain, _embeds(), start_at=0.8, end_at=0.2)


def test_foreign_patch_is_chained_not_clobbered(plain):
    calls = []

    def foreign(q, k, v, extra_options):
        calls.append(extra_options["n_heads"])
        return torch.zeros_like(q) + 0.25

    base = FakeModelPatcher()
    base.set_model_attn2_replace(foreign, "input", 1, 0)
    base.set_model_attn2_replace(foreign, "output", 3)  # a 2-tuple key (ComfyUI's fallback lookup)
    patched = apply_ipadapter(base, plain, _embeds(), weight=0.0)
    q, k, v = _qkv(2)
    out = patched.attn2_patches()[("input", 1, 0)](q, k, v, _extra())
    assert calls and torch.equal(out, torch.full_like(q, 0.25))
    patched.attn2_patches()[("output", 3, 0)](q, k, v, _extra())
    assert len(calls) == 2


def test_two_applies_stack(plain):
    q, k, v = _qkv(2)
    extra = _extra()
    one = apply_ipadapter(FakeModelPatcher(), plain, _embeds(seed=1), weight=0.6)
    two = apply_ipadapter(one, plain, _embeds(seed=2), weight=0.4)
    only_second = apply_ipadapter(FakeModelPatcher(), plain, _embeds(seed=2), weight=0.4)
    text = one.attn2_patches()[SITE.comfy_key].attention_fn(q, k, v, 8, None)
    first_term = one.attn2_patches()[SITE.comfy_key](q, k, v, extra) - text
    second_term = only_second.attn2_patches()[SITE.comfy_key](q, k, v, extra) - text
    stacked = two.attn2_patches()[SITE.comfy_key](q, k, v, extra)
    torch.testing.assert_close(stacked, text + first_term + second_term, atol=1e-5, rtol=0)
    assert len(one.attn2_patches()) == 16  # the first clone kept its own patches


def test_cond_rows_get_positive_and_uncond_rows_negative(plain):
    pos, neg = _embeds(seed=1), _embeds(seed=2)
    q, k, v = _qkv(1)
    q2, k2, v2 = (torch.cat([t, t]) for t in (q, k, v))
    patch = apply_ipadapter(FakeModelPatcher(), plain, pos, neg).attn2_patches()[SITE.comfy_key]
    batched = patch(q2, k2, v2, _extra(batch_labels=(1, 0)))
    cond_only = patch(q, k, v, _extra(batch_labels=(0,), batch=1))
    uncond_only = patch(q, k, v, _extra(batch_labels=(1,), batch=1))
    torch.testing.assert_close(batched[1:], cond_only, atol=1e-6, rtol=0)
    torch.testing.assert_close(batched[:1], uncond_only, atol=1e-6, rtol=0)
    assert (cond_only - uncond_only).abs().max() > 1e-4


def test_default_negative_is_zeros(plain):
    pos = _embeds(seed=1)
    q, k, v = _qkv(1)
    implicit = apply_ipadapter(FakeModelPatcher(), plain, pos).attn2_patches()[SITE.comfy_key]
    explicit = apply_ipadapter(FakeModelPatcher(), plain, pos, torch.zeros(1, 1024)).attn2_patches()[
        SITE.comfy_key
    ]
    extra = _extra(batch_labels=(1,), batch=1)
    assert torch.equal(implicit(q, k, v, extra), explicit(q, k, v, extra))


def test_batch_mapping_per_latent_vs_all(plain):
    embeds = torch.cat([_embeds(seed=1), _embeds(seed=2)])
    q, k, v = _qkv(1)
    q2, k2, v2 = (torch.cat([t, t]) for t in (q, k, v))
    extra = _extra(batch_labels=(0,), batch=2)
    per_latent = apply_ipadapter(FakeModelPatcher(), plain, embeds, batch_mapping="per_latent")
    out = per_latent.attn2_patches()[SITE.comfy_key](q2, k2, v2, extra)
    single = apply_ipadapter(FakeModelPatcher(), plain, embeds[1:]).attn2_patches()[SITE.comfy_key]
    torch.testing.assert_close(
        out[1:], single(q, k, v, _extra(batch_labels=(0,), batch=1)), atol=1e-6, rtol=0
    )
    assert (out[0] - out[1]).abs().max() > 1e-4
    shared = apply_ipadapter(FakeModelPatcher(), plain, embeds, batch_mapping="all")
    out_all = shared.attn2_patches()[SITE.comfy_key](q2, k2, v2, extra)
    torch.testing.assert_close(out_all[0], out_all[1], atol=1e-6, rtol=0)
    assert rows_for_batch(2, 4, "per_latent") == [0, 1, 1, 1]


def test_mask_of_another_size_is_resized_and_zero_mask_disables(plain):
    q, k, v = _qkv(2, tokens=8 * 12)
    extra = _extra(hw=(8, 12))
    text = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=0.0).attn2_patches()[SITE.comfy_key](
        q, k, v, extra
    )
    zero = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), attn_mask=torch.zeros(37, 53))
    assert torch.equal(zero.attn2_patches()[SITE.comfy_key](q, k, v, extra), text)
    half = torch.zeros(1, 100, 150)
    half[:, :, :75] = 1.0  # left half of a differently sized mask
    out = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), attn_mask=half).attn2_patches()[
        SITE.comfy_key
    ](q, k, v, extra)
    delta = (out - text).abs().reshape(2, 8, 12, -1).amax(dim=(0, 3))
    assert delta[:, :4].min() > 1e-4 and delta[:, 8:].max() < 1e-6


def test_attention_grid_follows_the_latent():
    assert attention_grid(64 * 96, 64, 96) == (64, 96)
    assert attention_grid(32 * 48, 64, 96) == (32, 48)
    assert attention_grid(4 * 6, 27, 41) == (4, 6)  # ceil at every stride-2 level
    assert mask_for_tokens(torch.ones(3, 5, 7), 4 * 6, (27, 41)).shape == (3, 24, 1)


def test_wrong_embeds_are_refused_before_patching(plain):
    with pytest.raises(EmbedShapeError, match=r"\[1,257,1280\]"):
        apply_ipadapter(FakeModelPatcher(), plain, torch.zeros(1, 257, 1280))


def test_sdxl_adapter_on_an_sd15_unet_is_refused_naming_both(sdxl_ipadapter_tiny_files):
    sdxl = load_ipadapter(sdxl_ipadapter_tiny_files["plain"])
    with pytest.raises(IPAdapterModelMismatch) as err:
        apply_ipadapter(FakeModelPatcher(_fake_unet(320)), sdxl, torch.zeros(1, 1024))
    message = str(err.value)
    assert sdxl_ipadapter_tiny_files["plain"].name in message
    assert "SDXL adapter (2048-wide image tokens)" in message and "SD1.5-family checkpoint" in message
    assert "ip-adapter_sd15" in message


def _fake_unet(width: int, context: int = 768, family: str = "sd15", drop: tuple = ()):
    """A duck-typed LDM UNet with attn2 layers where the family's UNet has them (minus ``drop``)."""
    layers: dict[tuple[str, int], int] = {}
    for site in SITES_BY_FAMILY[family]:
        if site.comfy_key not in drop:
            layers[site.comfy_key[:2]] = layers.get(site.comfy_key[:2], 0) + 1

    def block(kind, number):
        n = layers.get((kind, number), 0)
        attn2s = [SimpleNamespace(to_k=torch.nn.Linear(context, width, bias=False)) for _ in range(n)]
        blocks = [SimpleNamespace(attn2=attn2) for attn2 in attn2s]
        return [SimpleNamespace()] + ([SimpleNamespace(transformer_blocks=blocks)] if n else [])

    return SimpleNamespace(
        diffusion_model=SimpleNamespace(
            input_blocks=[block("input", i) for i in range(12)],
            output_blocks=[block("output", i) for i in range(12)],
            middle_block=block("middle", 0),
        )
    )


def test_site_width_mismatch_names_site_and_widths(loaded_ipadapters):
    real = loaded_ipadapters["plain"]  # 320/640/1280 sites
    with pytest.raises(IPAdapterModelMismatch, match=r"site 5 .*width 640.*320 wide"):
        apply_ipadapter(FakeModelPatcher(_fake_unet(320)), real, _embeds())


def test_context_mismatch_is_explained(plain):
    with pytest.raises(IPAdapterModelMismatch, match="1024-wide cross-attention context"):
        apply_ipadapter(FakeModelPatcher(_fake_unet(320, context=1024)), plain, _embeds())


def test_matching_model_passes_check(plain):
    patched = apply_ipadapter(FakeModelPatcher(_fake_unet(320)), plain, _embeds())
    assert len(patched.attn2_patches()) == 16


def test_unet_with_some_family_sites_is_patched_where_they_are(plain, caplog):
    dropped = (("input", 1, 0), ("output", 11, 0))
    patched = apply_ipadapter(FakeModelPatcher(_fake_unet(320, drop=dropped)), plain, _embeds())
    patches = patched.attn2_patches()
    assert set(patches) == {s.comfy_key for s in SD15_SITES} - set(dropped)
    assert {p.site.adapter_number for p in patches.values()} == set(range(3, 32, 2)) - {29}
    assert "2 of 16 SD1.5 sites" in caplog.text


def test_unknown_unet_layout_is_named(plain):
    unet = _fake_unet(320)
    unet.diffusion_model.input_blocks[3] = unet.diffusion_model.input_blocks[1]  # an extra site
    with pytest.raises(IPAdapterModelMismatch) as err:
        apply_ipadapter(FakeModelPatcher(unet), plain, _embeds())
    message = str(err.value)
    assert "unknown layout" in message and "input 3 x1" in message and "has 17" in message


# -- composition with a replacement installed later on the site's 2-tuple key (IPAdapter_plus's keys) --


def _foreign_adding(offset: float, calls: list):
    def foreign(q, k, v, extra_options):
        calls.append(offset)
        return sdpa_attention(q, k, v, extra_options["n_heads"]) + offset

    return foreign


def _install_later(patcher, replacement, kind="input", block=1):
    later = patcher.clone()
    later.set_model_attn2_replace(replacement, kind, block)  # no transformer_index: a 2-tuple key
    return later


def test_replacement_installed_later_on_the_2tuple_key_also_runs(plain):
    q, k, v = _qkv(2)
    ours = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=1.0)
    ours_alone = ours.call_attn2(SITE.comfy_key, q, k, v, _extra())
    calls: list = []
    both = _install_later(ours, _foreign_adding(0.25, calls))
    out = both.call_attn2(SITE.comfy_key, q, k, v, _extra())
    assert calls == [0.25]
    torch.testing.assert_close(out, ours_alone + 0.25, atol=1e-5, rtol=0)


def test_later_replacement_runs_once_under_two_applies_and_weight_zero_is_exact(plain):
    q, k, v = _qkv(2)
    two = apply_ipadapter(
        apply_ipadapter(FakeModelPatcher(), plain, _embeds(seed=1), weight=0.0), plain, _embeds(), weight=0.0
    )
    assert len(two.get_wrappers("diffusion_model", "mindedit_ipadapter")) == 1
    calls: list = []
    out = _install_later(two, _foreign_adding(0.5, calls)).call_attn2(SITE.comfy_key, q, k, v, _extra())
    assert calls == [0.5]
    assert torch.equal(out, sdpa_attention(q, k, v, 8) + 0.5)


def test_earlier_3tuple_and_later_2tuple_replacements_both_add_their_terms(plain):
    q, k, v = _qkv(2)
    earlier: list = []
    base = FakeModelPatcher()
    base.set_model_attn2_replace(_foreign_adding(0.25, earlier), *SITE.comfy_key)
    ours = apply_ipadapter(base, plain, _embeds(), weight=1.0)
    with_earlier = ours.call_attn2(SITE.comfy_key, q, k, v, _extra())
    later: list = []
    out = _install_later(ours, _foreign_adding(0.5, later)).call_attn2(SITE.comfy_key, q, k, v, _extra())
    assert earlier == [0.25, 0.25] and later == [0.5]
    torch.testing.assert_close(out, with_earlier + 0.5, atol=1e-5, rtol=0)


def test_later_replacement_that_calls_back_into_ours_does_not_recurse(plain):
    q, k, v = _qkv(2)
    ours = apply_ipadapter(FakeModelPatcher(), plain, _embeds(), weight=1.0)
    calls: list = []

    def wrapping(q, k, v, extra):  # a 2-tuple replacement that wraps the 3-tuple one
        calls.append(1)
        return wrapped.attn2_patches()[SITE.comfy_key](q, k, v, extra) + 1.0

    wrapped = _install_later(ours, wrapping)
    out = wrapped.call_attn2(SITE.comfy_key, q, k, v, _extra())
    assert calls == [1] and torch.isfinite(out).all()


def test_unconditional_embeds_are_zeros_or_the_stored_negative():
    like = torch.randn(3, 257, 1280)
    assert torch.equal(unconditional_embeds(like), torch.zeros(3, 257, 1280))
    stored = torch.randn(1, 257, 1280)
    assert torch.equal(unconditional_embeds(like, stored), stored.expand(3, 257, 1280))
    with pytest.raises(EmbedShapeError, match=r"\[2,257,1280\].*\[3,257,1280\]"):
        unconditional_embeds(like, torch.zeros(2, 257, 1280))


def test_a_model_that_is_not_a_model_patcher_is_named():
    with pytest.raises(TypeError, match="needs a ComfyUI MODEL.*without .*add_wrapper_with_key"):
        apply_ipadapter(SimpleNamespace(model=None, model_options={}, clone=None), None, _embeds())
