"""Splits of every format: the split CLI on a 24-record JSONL dataset, sizes as counts or fractions,
and training on a dataset with a known split reads only its train part (every record needs split=all)."""

from __future__ import annotations

import pytest
from fixtures_training import write_jsonl_dataset

from training.config import build_config
from training.data.split import SplitManifest, default_manifest_path, resolve_sizes
from training.data.split import main as split_main
from training.train_data import select_training_records


def test_split_cli_on_a_24_record_jsonl_writes_the_manifest_beside_the_data(tmp_path, capsys):
    data = write_jsonl_dataset(tmp_path / "edits")
    assert split_main(["--format", "jsonl", "--data", str(data)]) == 0
    manifest = SplitManifest.load(data / "split.json")  # where training looks for it
    assert (len(manifest.test), len(manifest.train), manifest.num_ids) == (2, 22, 24)  # 10 %, the rest
    assert not set(manifest.test) & set(manifest.train) and manifest.dataset == "JSONL"
    assert "22 train, 2 test" in capsys.readouterr().out
    assert split_main(["--format", "jsonl", "--data", str(data)]) == 1  # never rewritten silently
    assert split_main(["--format", "jsonl", "--data", str(data), "--test-size", "0.25", "--force"]) == 0
    assert len(SplitManifest.load(data / "split.json").test) == 6
    out = tmp_path / "fixed.json"
    assert split_main(["--format", "jsonl", "--data", str(data / "metadata.jsonl"), "--out", str(out),
                       "--test-size", "4", "--train-size", "10"]) == 0  # fmt: skip
    fixed = SplitManifest.load(out)
    assert (len(fixed.test), len(fixed.train), len(fixed.unused)) == (4, 10, 10)
    capsys.readouterr()
    assert split_main(["--format", "jsonl", "--data", str(data), "--out", str(out), "--force",
                       "--test-size", "24"]) == 2  # fmt: skip
    assert "leaves nothing to train on" in capsys.readouterr().err


def test_sizes_fit_small_data_and_keep_the_paper_split_on_full_humanedit():
    assert resolve_sizes(5751, "humanedit") == (500, 5244)
    assert resolve_sizes(12, "humanedit") == (1, None)  # a partial copy: 10 %, the rest train
    assert resolve_sizes(120, "complex_multistep", "0.5") == (60, None)
    assert resolve_sizes(24, "jsonl", "3", "rest") == (3, None)
    with pytest.raises(ValueError, match="a count .* a fraction"):
        resolve_sizes(24, "jsonl", "2.5")


def test_default_manifest_paths_per_format(tmp_path):
    (tmp_path / "folder").mkdir()
    assert default_manifest_path("jsonl", tmp_path / "folder") == tmp_path / "folder" / "split.json"
    assert default_manifest_path("jsonl", tmp_path / "mine.jsonl") == tmp_path / "mine.split.json"
    assert default_manifest_path("humanedit", "x").name == "humanedit.json"
    assert default_manifest_path("complex_multistep", "x").name == "complex_multistep.json"


def test_jsonl_training_with_a_split_leaves_the_test_records_out(tmp_path):
    data = write_jsonl_dataset(tmp_path / "edits")
    cfg = build_config("text_only", [], model="m", data=str(data), data_format="jsonl").validate()
    with pytest.raises(ValueError, match=r"No split is known .*python -m training.data.split .*split=all"):
        select_training_records(cfg, targets=None)
    assert split_main(["--format", "jsonl", "--data", str(data), "--test-size", "6"]) == 0
    manifest = SplitManifest.load(data / "split.json")
    selected = select_training_records(cfg, targets=None)  # finds the manifest beside the data
    assert sorted(selected.ids()) == sorted(manifest.train) and len(selected) == 18
    assert not set(selected.ids()) & set(manifest.test)
    everything = build_config("text_only", ["split=all"], model="m", data=str(data), data_format="jsonl")
    assert len(select_training_records(everything, targets=None)) == 24  # only when asked for
