"""TrainConfig explains itself: every field carries its help text as metadata, and
``python -m training.train --help`` lists every ``--set`` key with its meaning and default."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import MISSING, fields

from training.config import TrainConfig, build_config, options_help
from training.train import build_parser


def _default(f) -> object:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def test_every_option_has_help_and_a_group():
    for f in fields(TrainConfig):
        assert len(f.metadata.get("help", "")) >= 10, f"{f.name} has no help text"
        assert f.metadata.get("group") in ("data", "objective", "adaptation", "optimisation", "output")


def test_help_lists_every_set_key_with_meaning_and_default():
    text = build_parser().format_help()
    for f in fields(TrainConfig):
        line = f"    {f.name} (default {json.dumps(_default(f))})"
        assert line in text, f"--help lacks {line!r}"
        assert f.metadata["help"] in text
    assert text.index("  data:") < text.index("  objective:") < text.index("  output:")
    assert options_help() in text


def test_the_listed_defaults_are_the_ones_a_run_gets():
    """The listed default of each key, passed back with --set, changes nothing."""
    base = build_config(overrides=["model=m", "data=d", "refined=r", "targets=t"])
    listed = [
        f"{f.name}={json.dumps(_default(f))}" for f in fields(TrainConfig) if f.name not in ("model", "data")
    ]
    again = build_config(overrides=["model=m", "data=d", *listed, "refined=r", "targets=t"])
    assert again == base


def test_the_command_line_prints_it():
    out = subprocess.run(
        [sys.executable, "-m", "training.train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "lambda_embed (default 2.0)" in out and "weight of the embedding loss" in out
    assert "--set [KEY=VALUE ...]" in out
