"""The contract `mindedit_core.ipadapter.comfy_contract` writes down, checked on both sides: the test
fake (`FakeModelPatcher`) and ComfyUI's real ``comfy.model_patcher.ModelPatcher`` (from the
runtime's ComfyUI tree) go through the same asserts, and so do the fake's layer call
(`FakeModelPatcher.call_attn2`) and ComfyUI's real ``BasicTransformerBlock``."""

from __future__ import annotations

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher, FakeModelSampling
from helpers_nodes import import_comfy

from mindedit_core.ipadapter.comfy_contract import (
    DIFFUSION_MODEL_WRAPPER,
    LIVE_ATTN2_KEY,
    ComfyModelPatcher,
    ModelSampling,
    attn2_table,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # imports ComfyUI in-process

PERCENTS = (0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0)


@pytest.fixture(scope="module")
def comfy():
    import_comfy()
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    return comfy


def _real_sd15_sampling(comfy):
    config = comfy.supported_models.SD15(dict(comfy.supported_models.SD15.unet_config))
    return comfy.model_base.model_sampling(config, comfy.model_base.ModelType.EPS)


def _real_patcher(comfy):
    holder = torch.nn.Module()
    holder.model_sampling = _real_sd15_sampling(comfy)
    return comfy.model_patcher.ModelPatcher(holder, torch.device("cpu"), torch.device("cpu"))


@pytest.fixture(params=["fake", "real"])
def patcher(request, comfy):
    return FakeModelPatcher() if request.param == "fake" else _real_patcher(comfy)


def _patch(name):
    def replacement(q, k, v, extra_options):
        return q

    replacement.__name__ = name
    return replacement


def test_is_a_comfy_model_patcher(patcher):
    assert isinstance(patcher, ComfyModelPatcher)
    assert isinstance(patcher.get_model_object("model_sampling"), ModelSampling)


def test_attn2_replace_keys_and_clone_isolation(patcher):
    three, two = _patch("three"), _patch("two")
    clone = patcher.clone()
    assert isinstance(clone, type(patcher))
    clone.set_model_attn2_replace(three, "input", 1, 0)
    clone.set_model_attn2_replace(two, "output", 3)
    assert attn2_table(clone.model_options) == {("input", 1, 0): three, ("output", 3): two}
    assert attn2_table(patcher.model_options) == {}
    again = clone.clone()
    again.set_model_attn2_replace(two, "middle", 0, 0)
    assert ("middle", 0, 0) not in attn2_table(clone.model_options)
    assert set(attn2_table(again.model_options)) == {("input", 1, 0), ("output", 3), ("middle", 0, 0)}


def test_keyed_wrappers_are_kept_by_clones_and_isolated(patcher):
    def wrapper(executor, *args, **kwargs):
        return executor(*args, **kwargs)

    assert patcher.get_wrappers(DIFFUSION_MODEL_WRAPPER, "k") == []
    clone = patcher.clone()
    clone.add_wrapper_with_key(DIFFUSION_MODEL_WRAPPER, "k", wrapper)
    assert clone.get_wrappers(DIFFUSION_MODEL_WRAPPER, "k") == [wrapper]
    assert clone.clone().get_wrappers(DIFFUSION_MODEL_WRAPPER, "k") == [wrapper]
    assert patcher.get_wrappers(DIFFUSION_MODEL_WRAPPER, "k") == []


def test_percent_to_sigma_is_sd15s_schedule(patcher):
    sampling = patcher.get_model_object("model_sampling")
    sigmas = [float(sampling.percent_to_sigma(p)) for p in PERCENTS]
    assert sigmas[0] > 1e8 and sigmas[-1] == 0.0  # ComfyUI's "always" / "never" ends of the window
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    assert 14.0 < sigmas[1] < 15.0  # SD1.5's sigma_max ~14.61
    assert 0.029 < sigmas[-2] < 0.05  # and near its sigma_min ~0.0292 (t = 0.999)


def test_fake_schedule_equals_comfys(comfy):
    real = _real_sd15_sampling(comfy)
    fake = FakeModelSampling()
    for percent in PERCENTS:
        assert fake.percent_to_sigma(percent) == pytest.approx(
            float(real.percent_to_sigma(percent)), rel=1e-5
        )


# -- one cross-attention layer: ComfyUI's lookup order and what a replacement receives -------------


def _fake_layer(table: dict, extra: dict, q, context) -> None:
    fake = FakeModelPatcher()
    fake.model_options["transformer_options"]["patches_replace"] = {"attn2": table}
    fake.call_attn2(("input", 1, 0), q, context, context, extra)


def _real_layer(table: dict, extra: dict, q, context) -> None:
    from comfy.ldm.modules.attention import BasicTransformerBlock

    block = BasicTransformerBlock(
        dim=q.shape[-1], n_heads=2, d_head=q.shape[-1] // 2, context_dim=context.shape[-1]
    )
    for param in block.parameters():
        torch.nn.init.normal_(param, std=0.02)
    options = {"block": ("input", 1), "block_index": 0, "patches_replace": {"attn2": table}, **extra}
    block(q, context=context, transformer_options=options)


@pytest.mark.parametrize("layer", [_fake_layer, _real_layer], ids=["fake", "real"])
def test_layer_looks_up_3tuple_before_2tuple_and_passes_other_options_on(layer):
    q, context = torch.randn(1, 4, 16), torch.randn(1, 3, 768)
    seen: dict[str, dict] = {}

    def recording(name):
        def replacement(q, k, v, extra_options):
            seen[name] = extra_options
            return torch.zeros(q.shape[0], q.shape[1], k.shape[-1])

        return replacement

    layer(
        {("input", 1, 0): recording("three"), ("input", 1): recording("two")},
        {LIVE_ATTN2_KEY: "t"},
        q,
        context,
    )
    assert list(seen) == ["three"]  # the 3-tuple hides the 2-tuple: what our live table works around
    extra = seen["three"]
    assert extra[LIVE_ATTN2_KEY] == "t" and "patches_replace" not in extra and "patches" not in extra
    seen.clear()
    layer({("input", 1): recording("two")}, {}, q, context)
    assert list(seen) == ["two"]
