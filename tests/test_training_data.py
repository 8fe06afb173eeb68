"""Dataset readers, mask polarity and the HumanEdit split manifest."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from training.data import (
    EditRecord,
    load_complex_multistep,
    load_jsonl,
    load_records,
    make_split,
    normalise_mask,
)
from training.data.split import SplitManifest, ensure_manifest, ids_digest
from training.data.split import main as split_main


def test_humanedit_reader_reads_every_row_with_canonical_mask(humanedit_dir, humanedit_records):
    boxes = json.loads((humanedit_dir / "boxes.json").read_text())
    assert len(humanedit_records) == len(boxes) == 12
    assert sorted(r.id for r in humanedit_records) == sorted(boxes)
    for record in humanedit_records[:4]:
        assert record.instruction.startswith("Add a ")
        assert record.edit_type in {"Add", "Remove", "Replace", "Action", "Counting", "Relation"}
        mask = np.asarray(record.load_mask())
        x0, y0, x1, y1 = boxes[record.id]
        inside = mask[y0 : y1 + 1, x0 : x1 + 1]
        # HumanEdit masks are black inside the edit; the canonical mask is white there, black outside.
        assert (inside == 255).all()
        assert mask.sum() == inside.sum()
        assert record.load_target().size == record.load_source().size
        assert record.load_target().tobytes() != record.load_source().tobytes()


def test_humanedit_polarity_option_inverts(humanedit_dir, tmp_path):
    white = load_records("humanedit", humanedit_dir, mask_polarity="white_is_edit", cache_dir=tmp_path)
    black = load_records("humanedit", humanedit_dir, cache_dir=tmp_path)
    a, b = np.asarray(white[0].load_mask()), np.asarray(black[0].load_mask())
    assert ((a == 255) == (b == 0)).all()


def test_auto_polarity_picks_the_smaller_region():
    mostly_white = Image.new("L", (10, 10), 255)
    mostly_white.paste(0, (0, 0, 3, 3))
    out = np.asarray(normalise_mask(mostly_white, "auto"))
    assert (out == 255).sum() == 9


def test_humanedit_missing_columns_error_names_them(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"IMAGE_ID": ["1"], "foo": ["x"]}).to_parquet(str(tmp_path / "x.parquet"))
    with pytest.raises(ValueError, match="EDITING_INSTRUCTION") as info:
        load_records("humanedit", tmp_path / "x.parquet", cache_dir=tmp_path / "c")
    assert "foo" in str(info.value)


def test_missing_dataset_path_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="hf download"):
        load_records("humanedit", tmp_path / "nope")


def test_complex_multistep_column_map_and_schema_check(tmp_path, humanedit_records):
    import datasets

    src = humanedit_records[0]
    ds = datasets.Dataset.from_dict(
        {
            "input_image": [{"bytes": src.source, "path": None}] * 2,
            "prompt": ["make it red", "make it blue"],
            "output_image": [{"bytes": src.target, "path": None}] * 2,
        },
        features=datasets.Features(
            {
                "input_image": datasets.Image(),
                "prompt": datasets.Value("string"),
                "output_image": datasets.Image(),
            }
        ),
    )
    ds.to_parquet(str(tmp_path / "reasoning.parquet"))
    with pytest.raises(ValueError, match="column map"):
        load_complex_multistep(tmp_path / "reasoning.parquet", cache_dir=tmp_path / "c")
    table = load_complex_multistep(
        tmp_path / "reasoning.parquet",
        column_map={"source": "input_image", "instruction": "prompt", "target": "output_image"},
        cache_dir=tmp_path / "c",
    )
    assert [r.id for r in table] == ["0", "1"]
    assert table[1].instruction == "make it blue" and table[1].mask is None
    assert table[1].load_target().size == src.load_target().size


def test_jsonl_reader_resolves_relative_paths_and_reports_bad_lines(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "b.png")
    lines = [
        {
            "id": "x",
            "source": "a.png",
            "target": "b.png",
            "instruction": " make it blue ",
            "positive": "blue",
        },
        {"id": "y", "source": "a.png", "instruction": "no target"},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    records = load_jsonl(tmp_path)
    assert [r.id for r in records] == ["x", "y"]
    assert records[0].instruction == "make it blue" and records[0].refined_positive == "blue"
    assert records[0].load_target().getpixel((0, 0)) == (0, 0, 255)
    assert records[1].target is None
    with pytest.raises(ValueError, match="no target image"):
        records[1].load_target()
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "source": "a.png"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing required keys \['instruction'\]"):
        load_jsonl(tmp_path / "bad.jsonl")


def test_split_is_deterministic_disjoint_and_sized():
    ids = [str(1000 + 3 * i) for i in range(700)]
    a = make_split(ids, seed=3, test_size=50, train_size=600)
    shuffled = list(ids)
    random.Random(9).shuffle(shuffled)
    b = make_split(shuffled, seed=3, test_size=50, train_size=600)
    assert (a.train, a.test, a.unused) == (b.train, b.test, b.unused)
    assert len(a.test) == 50 and len(a.train) == 600 and len(a.unused) == 50
    assert not set(a.train) & set(a.test) and set(a.train) | set(a.test) | set(a.unused) == set(ids)
    assert make_split(ids, seed=4, test_size=50).test != a.test
    assert a.ids_sha256 == ids_digest(reversed(ids))


def test_split_paper_sizes_on_humanedit_row_count():
    ids = [f"{i:06d}" for i in range(5751)]
    manifest = make_split(ids)
    assert (len(manifest.train), len(manifest.test), len(manifest.unused)) == (5244, 500, 7)


def test_ensure_manifest_writes_once_then_reuses(tmp_path):
    path = tmp_path / "split.json"
    first = ensure_manifest([str(i) for i in range(40)], path, seed=1, test_size=5, train_size=None)
    assert path.is_file() and len(first.train) == 35
    again = ensure_manifest([str(i) for i in range(40)], path, seed=99, test_size=5)
    assert again.test == first.test  # the existing manifest wins over new arguments
    assert SplitManifest.load(path).seed == 1


def test_split_cli_writes_manifest_from_local_copy(humanedit_dir, tmp_path, monkeypatch):
    out = tmp_path / "humanedit.json"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    assert (
        split_main(
            ["--data", str(humanedit_dir), "--out", str(out), "--test-size", "3", "--train-size", "-1"]
        )
        == 0
    )
    manifest = SplitManifest.load(out)
    assert len(manifest.test) == 3 and len(manifest.train) == 9 and manifest.num_ids == 12
    assert split_main(["--data", str(humanedit_dir), "--out", str(out)]) == 1  # refuses to overwrite


def test_record_with_refined_keeps_everything_else():
    record = EditRecord(id="1", instruction="x", source=b"")
    filled = record.with_refined("pos", "neg")
    assert filled.has_refined and not record.has_refined
    assert (filled.refined_positive, filled.refined_negative, filled.id) == ("pos", "neg", "1")


def test_jsonl_inline_refined_prompts_are_training_targets(tmp_path):
    # The JSONL format documents `positive`/`negative` as optional refined prompts: a text variant
    # trains on them without a refine_data cache (rows without them are left out).
    from training.config import build_config
    from training.train_data import select_training_records

    rows = [
        {"id": "a", "source": "a.png", "instruction": "x", "positive": "p1", "negative": "n1"},
        {"id": "b", "source": "b.png", "instruction": "y"},
    ]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = build_config(
        "text_only", ["split=all"], model="m", data=str(tmp_path), data_format="jsonl"
    ).validate()
    selected = select_training_records(cfg, targets=None)
    assert selected.ids() == ["a"]
    assert (selected[0].refined_positive, selected[0].refined_negative) == ("p1", "n1")
