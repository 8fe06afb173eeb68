"""The vision head F_v: output shapes for both kinds, masking, scale, files, and real-size configs."""

from __future__ import annotations

import json

import pytest
import torch

from mindedit_core.embeds import SD15_PLAIN, SD15_PLUS, check_embeds
from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer, read_head_config


def _head(kind: str, hidden: int = 64, **kwargs) -> VisionHead:
    torch.manual_seed(0)
    return VisionHead(VisionHeadConfig.for_kind(kind, hidden_size=hidden, layer=3, **kwargs)).eval()


@pytest.mark.parametrize(("kind", "spec"), [("plain", SD15_PLAIN), ("plus", SD15_PLUS)])
def test_output_shape_matches_the_ipadapter_contract(kind, spec):
    head = _head(kind)
    out = head(torch.randn(3, 20, 64), torch.ones(3, 20, dtype=torch.long))
    check_embeds(out, spec)
    assert out.shape == (3, *spec.sample_shape)


def test_padding_positions_are_ignored():
    head = _head("plain")
    hidden = torch.randn(1, 12, 64)
    mask = torch.ones(1, 12, dtype=torch.long)
    padded = torch.cat([hidden, 100 * torch.randn(1, 5, 64)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(head(hidden, mask), head(padded, padded_mask), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(head(hidden, mask), head(padded, torch.ones_like(padded_mask)), atol=1e-3)


def test_pooling_reads_every_position():
    head = _head("plain")
    hidden = torch.randn(1, 12, 64)
    changed = hidden.clone()
    changed[0, 0] = torch.randn(64)  # the first (image) position must influence the output
    assert not torch.allclose(head(hidden), head(changed), atol=1e-4)


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_output_has_the_stored_target_norm(kind):
    head = _head(kind)
    targets = torch.randn(16, *head.config.spec.sample_shape) * 3.0
    head.set_target_norm(targets)
    out = head(torch.randn(2, 9, 64))
    expected = targets.norm(dim=-1).mean(dim=0)
    torch.testing.assert_close(out.norm(dim=-1), expected.expand_as(out.norm(dim=-1)), atol=1e-4, rtol=1e-4)
    direction = head.direction(torch.randn(2, 9, 64))
    torch.testing.assert_close(direction.norm(dim=-1), torch.ones(direction.shape[:-1]), atol=1e-5, rtol=1e-5)


def test_set_target_norm_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected \[N,1024\]"):
        _head("plain").set_target_norm(torch.randn(4, 257, 1280))


def test_gradients_flow_for_cosine_training():
    head = _head("plus").train()
    hidden = torch.randn(2, 7, 64, requires_grad=True)
    target = torch.randn(2, 257, 1280)
    loss = 1 - torch.nn.functional.cosine_similarity(head(hidden), target, dim=-1).mean()
    loss.backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    assert head.queries.grad is not None and head.queries.grad.abs().sum() > 0


def test_wrong_hidden_width_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[B,T,64\].*layer 3"):
        _head("plain")(torch.randn(1, 4, 32))


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_save_load_round_trip(tmp_path, kind):
    head = _head(kind, base_model="tiny", prompt_version="v-test")
    head.set_target_norm(torch.rand(4, *head.config.spec.sample_shape) + 1)
    path = head.save(tmp_path / "head.safetensors")
    loaded = VisionHead.load(path).eval()
    hidden = torch.randn(2, 6, 64)
    torch.testing.assert_close(loaded(hidden), head(hidden), atol=0, rtol=0)
    config = read_head_config(path)
    assert (config.kind, config.layer, config.base_model, config.prompt_version) == (
        kind,
        3,
        "tiny",
        "v-test",
    )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert json.loads(meta["out_shape"]) == list(head.config.spec.sample_shape)
    assert float(meta["scale_mean"]) == pytest.approx(float(head.target_norm.mean()), rel=1e-5)


def test_loading_a_foreign_safetensors_names_the_problem(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a MIND-Edit vision head"):
        VisionHead.load(path)


def test_default_layer_follows_the_method():
    assert default_layer(28) == 21  # the method's choice on LLaVA-OneVision-7B
    assert default_layer(24) == 18
    assert default_layer(4) == 3


@pytest.mark.parametrize(
    ("hidden", "kind", "max_millions"), [(3584, "plain", 30), (3584, "plus", 20), (896, "plus", 10)]
)
def test_parameter_count_is_sane_for_real_models(hidden, kind, max_millions):
    with torch.device("meta"):
        head = VisionHead(VisionHeadConfig.for_kind(kind, hidden_size=hidden, layer=21))
    assert 1e6 < head.num_parameters() < max_millions * 1e6
