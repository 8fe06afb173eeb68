"""The plus adapter's negative (#11 item 8): the encoder's blank-image output is recorded by
build_targets, stored in plus checkpoints, loaded with them and output as ``neg_embeds``; plain heads
and old plus checkpoints use zeros, the latter said on the status line."""

from __future__ import annotations

import json

import pytest
import torch
from fixtures_training import tiny_config

from mindedit_core.checkpoint import (
    NEGATIVE_NAME,
    BaseModelInfo,
    load_negative_embeds,
    read_checkpoint,
    save_mindedit_checkpoint,
)
from mindedit_core.mllm.pass_cache import PassOutcome
from mindedit_core.vision_head import VisionHead, VisionHeadConfig
from training.build_targets import build_targets, load_clip_vision
from training.target_store import TargetStore

BASE = BaseModelInfo(model_type="llava_onevision", hidden_size=64, num_layers=4, name="tiny")


def _plus_head() -> VisionHead:
    return VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=64, layer=3))


def test_build_targets_records_the_encoders_blank_image_output_for_plus(
    tiny_clip_vision_dir, humanedit_records, tmp_path
):
    store = build_targets(
        list(humanedit_records[:2]), tiny_clip_vision_dir, tmp_path / "t", progress=False, kinds=("plus",)
    )
    model, _ = load_clip_vision(tiny_clip_vision_dir)
    with torch.no_grad():
        blank = model(pixel_values=torch.zeros(1, 3, 224, 224), output_hidden_states=True).hidden_states[-2]
    stored = store.unconditional("plus")
    assert stored is not None and tuple(stored.shape) == (1, 257, 1280)
    torch.testing.assert_close(stored, blank.float())
    assert not torch.equal(stored, torch.zeros_like(stored))  # not the zeros it replaces
    plain_only = build_targets(
        list(humanedit_records[:2]), tiny_clip_vision_dir, tmp_path / "p", progress=False, kinds=("plain",)
    )
    assert plain_only.unconditional("plain") is None  # plain adapters were trained with zeros
    assert TargetStore(tmp_path / "p").unconditional("plus") is None


def test_plus_checkpoint_round_trips_its_negative_and_old_ones_have_none(tmp_path):
    negative = torch.randn(1, 257, 1280)
    ckpt_dir = save_mindedit_checkpoint(
        tmp_path / "new", base=BASE, head=_plus_head(), negative_embeds=negative
    )
    ckpt = read_checkpoint(ckpt_dir)
    assert ckpt.manifest["parts"]["negative_embeds"] is True
    torch.testing.assert_close(load_negative_embeds(ckpt), negative)

    old_dir = save_mindedit_checkpoint(tmp_path / "old", base=BASE, head=_plus_head())
    assert load_negative_embeds(read_checkpoint(old_dir)) is None


def test_a_negative_of_the_wrong_shape_or_a_missing_file_is_named(tmp_path):
    ckpt_dir = save_mindedit_checkpoint(
        tmp_path / "c", base=BASE, head=_plus_head(), negative_embeds=torch.randn(1, 16, 1280)
    )
    with pytest.raises(ValueError, match=r"\[1, 16, 1280\].*plus head outputs \[1, 257, 1280\]"):
        load_negative_embeds(read_checkpoint(ckpt_dir))
    (ckpt_dir / NEGATIVE_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=NEGATIVE_NAME):
        load_negative_embeds(read_checkpoint(ckpt_dir))


class _Refined:
    positive, negative, raw, warning, parsed = "p", "n", "r", None, True


class _Result:
    def __init__(self, v_insight):
        self.refined, self.v_insight, self.text = _Refined(), v_insight, "r"


def test_pass_outcome_pairs_v_insight_with_the_stored_negative_or_says_zeros():
    v_plus = torch.randn(1, 257, 1280)
    stored = torch.randn(1, 257, 1280)
    with_negative = PassOutcome.from_result(_Result(v_plus), "m", stored_negative=stored)
    torch.testing.assert_close(with_negative.neg_embeds, stored)
    assert "negative" not in with_negative.status

    old_plus = PassOutcome.from_result(_Result(v_plus), "m")
    assert torch.equal(old_plus.neg_embeds, torch.zeros_like(v_plus))
    assert "WARNING" in old_plus.status and "stores no blank-image negative" in old_plus.status

    plain = PassOutcome.from_result(_Result(torch.randn(1, 1024)), "m")
    assert torch.equal(plain.neg_embeds, torch.zeros(1, 1024))
    assert "WARNING" not in plain.status  # zeros are right for plain heads


@pytest.mark.slow
def test_plus_training_stores_the_targets_negative_and_load_mllm_reads_it(training_inputs, tmp_path):
    from accelerate.state import AcceleratorState

    from mindedit_core.mllm import load_mllm
    from training.train import train

    cfg = tiny_config(training_inputs, tmp_path / "run", "joint", limit=2, max_steps=1, head_kind="plus")
    try:
        result = train(cfg)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    manifest = json.loads((result.checkpoint_dir / "mindedit.json").read_text())
    assert manifest["parts"]["negative_embeds"] is True
    expected = TargetStore(training_inputs["targets"]).unconditional("plus")
    mllm = load_mllm(training_inputs["model"], checkpoint_dir=result.checkpoint_dir, device="cpu")
    torch.testing.assert_close(mllm.negative_embeds, expected)
