"""The learning benchmark's command line and report (no training: made-up checks)."""

from __future__ import annotations

import argparse
import json

import pytest

from bench.bench_learning import parse_variant, table


def test_a_variant_carries_its_own_training_options():
    assert parse_variant("joint") == ("joint", "joint", {})
    label, variant, own = parse_variant("joint:head_warmup_steps=100,lr=1e-4")
    assert (label, variant, own) == (
        "joint:head_warmup_steps=100,lr=1e-4",
        "joint",
        {"head_warmup_steps": 100, "lr": 1e-4},
    )


@pytest.mark.parametrize("text", ["text_only", "joint:lr", "jont:lr=1"])
def test_a_bad_variant_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_variant(text)


def _check(cos: float, ce: float | None = None) -> dict:
    return {"cos": cos, "spread": 0.9, "cos_to_mean_target": 0.05, "collapsed": False, "ce": ce}


def test_every_variant_is_paired_with_head_only_by_seed():
    results = {
        "families": {
            "qwen2_5_vl": {
                "baselines": {"mean training target": -0.01},
                "probes": {"user_turn": {"strength": 100.0, "cos": 0.37}},
                "end2end": {
                    "joint/user_turn": [_check(0.2, 5.3), _check(0.4, 5.2)],
                    "head_only/user_turn": [_check(0.44), _check(0.45)],
                    "joint:head_warmup_steps=100/user_turn": [_check(0.45, 5.8), _check(0.43, 5.9)],
                },
            }
        }
    }
    rows = table(results).splitlines()
    joint = next(r for r in rows if "training.train joint, pool" in r)
    assert "+0.300 ± 0.100" in joint and "| 5.250 ± 0.050 |" in joint
    paired = {r.split(" | ")[1]: r.split(" | ")[2] for r in rows if "paired by seed" in r}
    assert paired == {
        "joint − head_only, paired by seed, pool=user_turn": "-0.145 ± 0.095",
        "joint:head_warmup_steps=100 − head_only, paired by seed, pool=user_turn": "-0.005 ± 0.015",
    }
    head_only = next(r for r in rows if "training.train head_only" in r)
    assert head_only.endswith("| 0/2 |  |")  # no answer CE for head_only


def _results(tmp_path, name: str, seed: int, cos: float, train: dict) -> object:
    from bench.bench_learning import TRAIN_DEFAULTS

    results = {
        "seeds": [seed],
        "command": f"python -m bench.bench_learning --seeds {seed}",
        "train": {**TRAIN_DEFAULTS, **train},
        "families": {
            "qwen2_5_vl": {
                "baselines": {"mean training target": -0.01},
                "probes": {"user_turn": {"strength": 100.0, "cos": 0.37}},
                "end2end": {"joint/user_turn": [_check(cos, 5.0)]},  # an older file: no seed in the check
            }
        },
    }
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))
    return path


def test_results_run_in_parallel_merge_into_one_report(tmp_path):
    from bench.bench_learning import merge_results

    paths = [
        _results(tmp_path, "s1", 1, 0.3, {}),
        _results(tmp_path, "s0", 0, 0.1, {}),
        _results(tmp_path, "warm-s0", 0, 0.4, {"head_warmup_steps": 100}),
    ]
    merged = merge_results(paths)
    end2end = merged["families"]["qwen2_5_vl"]["end2end"]
    assert [(r["seed"], r["cos"]) for r in end2end["joint/user_turn"]] == [(0, 0.1), (1, 0.3)]
    # A run whose --set changed a training option is its own row, named by the change.
    assert [r["cos"] for r in end2end["joint:head_warmup_steps=100/user_turn"]] == [0.4]
    assert merged["seeds"] == [0, 1] and len(merged["merged_from"]) == 3
    assert "training.train joint, pool=user_turn, 2 seeds | +0.200 ± 0.100" in table(merged)
