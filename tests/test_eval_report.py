"""Aggregation and the report on hand-made scores: means per type and overall computed independently,
both benchmarks in the Table 1 layout, reported rows labelled, convention differences flagged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training.evaluate.report import build_report
from training.evaluate.score import PSNR_CAP, aggregate

ROWS = [
    {"id": "a", "edit_type": "Add", "clip_i": 0.9, "lpips": 0.2, "psnr": 20.0, "ssim": 0.8},
    {"id": "b", "edit_type": "Add", "clip_i": 0.7, "lpips": 0.4, "psnr": math.inf, "ssim": 1.0},
    {"id": "c", "edit_type": "Remove", "clip_i": 0.5, "lpips": 0.1, "psnr": 30.0, "ssim": 0.6},
]


def test_aggregate_means_per_type_and_overall() -> None:
    result = aggregate(ROWS, ["clip_i", "lpips", "psnr", "ssim"])
    overall, by_type = result["overall"], result["by_type"]
    assert overall["count"] == 3 and overall["psnr_inf_count"] == 1
    assert overall["clip_i"] == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert overall["psnr"] == pytest.approx((20.0 + PSNR_CAP + 30.0) / 3)
    assert by_type["Add"]["count"] == 2 and by_type["Add"]["lpips"] == pytest.approx(0.3)
    assert by_type["Remove"]["ssim"] == pytest.approx(0.6)


def _scored_run(folder: Path, method: str, fmt: str, rows: list[dict], conventions: dict) -> Path:
    folder.mkdir(parents=True)
    metrics = ["clip_i", "lpips", "psnr", "ssim"]
    summary = {
        "method": {"name": method, "prompt": "refined", "image_embed": "insight"},
        "dataset": {"format": fmt},
        "selected": len(rows) + 1,
        "scored": len(rows),
        "missing": ["zz"],
        "metrics": metrics,
        "conventions": conventions,
        **aggregate(rows, metrics),
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_report_table1_has_both_benchmarks_and_reported_rows(tmp_path) -> None:
    conventions = {"resolution": "512x512", "ssim": "11x11 sigma 1.5"}
    ours_he = _scored_run(tmp_path / "he", "mind_edit", "humanedit", ROWS, conventions)
    ours_cm = _scored_run(tmp_path / "cm", "mind_edit", "complex_multistep", ROWS[:1], conventions)
    other = _scored_run(
        tmp_path / "sd", "sd15", "humanedit", ROWS[2:], dict(conventions, resolution="256x256")
    )
    text = build_report([ours_he, ours_cm, other], tmp_path / "report").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Method |"))
    assert "HumanEdit CLIP-I ↑" in header and "ComplexMultistepImageEditing SSIM ↑" in header
    row = next(line for line in text.splitlines() if line.startswith("| **mind_edit** (ours, measured)"))
    he_psnr = f"{(20.0 + PSNR_CAP + 30.0) / 3:.4f}"
    assert row.split(" | ")[3] == he_psnr and row.rstrip(" |").endswith("0.8000")  # CM SSIM = item a
    sd_row = next(line for line in text.splitlines() if line.startswith("| **sd15** (ours, measured)"))
    assert sd_row.count("—") == 4  # not run on the second benchmark
    assert "| MagicQuill (reported, paper Table 1) | 0.9381 | 0.1162 | 22.2380 | 0.8981 | 0.6996 |" in text
    assert "WARNING" in text and "256x256" in text
    assert "| 3 / 4 | 1 |" in text and "| 1 / 2 | 1 |" in text  # scored / selected, missing
    assert (tmp_path / "report" / "plots" / "humanedit_per_type.png").is_file()
    assert (tmp_path / "report" / "plots" / "complex_multistep_distributions.png").is_file()
