"""Input dependence of v_insight (issue 23): the spread statistic, the collapse rule, its warning, and
the evaluation report's section beside CLIP-I."""

from __future__ import annotations

import json

import pytest
import torch

from training.input_dependence import collapse_warning, input_dependence, pairwise_spread, spread_check


def test_pairwise_spread_is_mean_one_minus_cos_over_distinct_pairs():
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # pairs: (0,1) cos 0, (0,2) cos -1, (1,2) cos 0 -> 1 - cos: 1, 2, 1
    assert pairwise_spread(values) == pytest.approx(4 / 3)
    assert pairwise_spread(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-6)


def test_one_vector_for_every_input_is_collapsed_and_says_so():
    targets = torch.randn(16, 32)
    mean = targets.mean(dim=0)
    constant = mean.expand(16, -1) + 1e-4 * torch.randn(16, 32)
    stats = input_dependence(constant, targets, mean)
    assert stats["collapsed"] and stats["cos_to_mean_target"] > 0.99
    warning = collapse_warning(stats, where="held-out records")
    assert warning.startswith("VISION HEAD COLLAPSED") and "16 held-out records" in warning
    good = input_dependence(targets + 0.1 * torch.randn(16, 32), targets, mean)
    assert not good["collapsed"] and collapse_warning(good) is None


def test_spread_check_without_targets_uses_an_absolute_floor():
    assert spread_check(torch.ones(4, 8) + 1e-6 * torch.randn(4, 8))["collapsed"]
    assert not spread_check(torch.randn(4, 8))["collapsed"]


def _scored_run(folder, label: str, vectors: list[list[float]]):
    from training.evaluate.run_files import image_path

    folder.mkdir(parents=True)
    rows = [{"id": f"i{k}", "edit_type": "Add", "clip_i": 0.93} for k in range(len(vectors))]
    summary = {
        "method": {"name": label, "prompt": "refined", "image_embed": "insight"},
        "dataset": {"format": "humanedit"},
        "selected": len(rows),
        "scored": len(rows),
        "missing": [],
        "metrics": ["clip_i"],
        "conventions": {},
        "overall": {"clip_i": 0.93, "count": len(rows)},
        "by_type": {"Add": {"clip_i": 0.93, "count": len(rows)}},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = []
    for row, vector in zip(rows, vectors):
        image_path(folder, row["id"]).parent.mkdir(exist_ok=True)
        image_path(folder, row["id"]).write_bytes(b"")
        items.append({"id": row["id"], "image_embed": "insight", "insight_vector": vector})
    (folder / "manifest.rank0.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return folder


def test_report_flags_a_collapsed_head_beside_clip_i(tmp_path):
    from training.evaluate.report import build_report

    torch.manual_seed(0)
    base = torch.randn(64)
    collapsed = [(base + 1e-5 * torch.randn(64)).tolist() for _ in range(4)]
    healthy = [torch.randn(64).tolist() for _ in range(4)]
    runs = [
        _scored_run(tmp_path / "a", "collapsed_head", collapsed),
        _scored_run(tmp_path / "b", "good_head", healthy),
    ]
    text = build_report(runs, tmp_path / "report").read_text()
    assert "> **WARNING: VISION HEAD COLLAPSED" in text and "items of `collapsed_head`" in text
    assert "items of `good_head`" not in text
    section = text.split("## v_insight input dependence")[1].split("##")[0]
    row = next(line for line in section.splitlines() if line.startswith("| collapsed_head"))
    assert "0.9300" in row and "YES" in row
    assert "| no |" in next(line for line in section.splitlines() if line.startswith("| good_head"))


def test_generated_items_keep_a_compact_v_insight():
    from training.evaluate.generate import insight_vector

    plus = torch.randn(1, 257, 1280)
    vector = insight_vector(plus)
    assert len(vector) == 1280 and vector[0] == pytest.approx(plus[0, :, 0].mean().item(), abs=1e-4)
    assert len(insight_vector(torch.randn(1, 1024))) == 1024
