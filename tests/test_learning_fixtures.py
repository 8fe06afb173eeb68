"""The learning benchmark's inputs: a deterministic synthetic edit dataset whose targets depend on the
image and on the instruction, and a stand-in target encoder that goes through `build_targets`."""

from __future__ import annotations

import json

import pytest
import torch

from devkit.fixtures.learning_dataset import EDIT_KINDS, make_examples, write_learning_dataset
from devkit.fixtures.pixel_encoder import PixelPoolEncoder


def test_examples_are_seeded_and_balanced_over_edit_kinds():
    first, again = make_examples(40, seed=3), make_examples(40, seed=3)
    assert first == again and first != make_examples(40, seed=4)
    kinds = [e["kind"] for e in first]
    assert all(kinds.count(k) == 10 for k in EDIT_KINDS)


def test_what_the_edit_shows_needs_the_image_and_the_instruction():
    examples = make_examples(200)
    for ex in examples:
        if ex["kind"] == "recolour":  # position from the image, colour from the instruction
            assert ex["target"][1] == ex["source"][1] and ex["target"][0] in ex["instruction"]
            assert ex["source"][0] not in ex["instruction"]
        if ex["kind"] == "move":  # colour from the image, position from the instruction
            assert ex["target"][0] == ex["source"][0] and ex["target"][1] in ex["instruction"]
        if ex["kind"] == "remove":
            assert ex["target"] is None and ex["label"] == "empty"


def test_stand_in_encoder_goes_through_build_targets(tmp_path):
    from training.build_targets import build_targets
    from training.data.loader import load_records

    data = write_learning_dataset(tmp_path / "data", num_records=8, size=42)
    lines = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]
    assert {"id", "source", "target", "instruction", "positive", "label"} <= set(lines[0])
    records = load_records("jsonl", data)
    encoder = PixelPoolEncoder(dim=32, grid=4)
    store = build_targets(
        records, None, tmp_path / "targets", kinds=["plain"], encoder=encoder, progress=False
    )
    assert store.sample_shape("plain") == (32,) and len(store.ids("plain")) == 8
    manifest = json.loads((tmp_path / "targets" / "targets.json").read_text())
    assert manifest["clip_config"]["encoder"] == "pixel_pool"
    expected = encoder.encode([records[0].load_target()], ["plain"])["plain"][0]
    torch.testing.assert_close(
        store.get(records[0].id, "plain"), expected, atol=2e-3, rtol=2e-3
    )  # fp16 store
    with pytest.raises(ValueError, match="another encoder"):
        build_targets(
            records, None, tmp_path / "targets", kinds=["plain"], encoder=PixelPoolEncoder(dim=32, grid=2)
        )
    with pytest.raises(ValueError, match="'plain' targets only"):
        encoder.encode([records[0].load_target()], ["plus"])
