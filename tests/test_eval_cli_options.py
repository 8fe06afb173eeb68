"""Command-line options of the evaluation without models: the quick preset, the score resolution's
default (the generation's) and its warning, and the MLLM source resolution of checkpoints and
training output folders."""

from __future__ import annotations

import argparse
import json

import pytest

from training.evaluate.cli_generate import apply_speed_preset
from training.evaluate.cli_score import score_resolution
from training.evaluate.sources import resolve_source


def test_quick_preset_fills_only_what_was_not_set():
    quick = apply_speed_preset(
        argparse.Namespace(preset="quick", steps=None, resolution=96, max_new_tokens=None)
    )
    assert (quick.steps, quick.resolution, quick.max_new_tokens) == (4, 96, 48)
    full = apply_speed_preset(
        argparse.Namespace(preset=None, steps=None, resolution=None, max_new_tokens=None)
    )
    assert (full.steps, full.resolution, full.max_new_tokens) == (50, 512, None)


def test_score_resolution_defaults_to_the_generation_and_warns_otherwise(capsys):
    info = {"diffusion": {"resolution": 128}}
    assert score_resolution(info, None, "run") == 128 and capsys.readouterr().err == ""
    assert score_resolution(info, 512, "run") == 512
    err = capsys.readouterr().err
    assert "generated at 128 px" in err and "scoring it at 512 px" in err
    assert score_resolution({}, None, "old") == 512  # nothing recorded: the documented default


def test_sources_from_checkpoints_and_training_output_folders(tmp_path, monkeypatch):
    def manifest(folder, variant):
        folder.mkdir(parents=True)
        (folder / "mindedit.json").write_text(json.dumps({"variant": variant}))

    base = tmp_path / "base"
    manifest(tmp_path / "lora_run" / "checkpoint", "text-only")  # an old, hyphenated manifest
    (tmp_path / "full_run" / "model").mkdir(parents=True)
    (tmp_path / "full_run" / "model" / "config.json").write_text("{}")
    (tmp_path / "full_run" / "train_config.json").write_text(json.dumps({"variant": "text_only"}))

    import training.evaluate.sources as sources

    monkeypatch.setattr(  # the manifest's other fields are core's business (tested there)
        sources, "_variant_of_checkpoint", lambda f: json.loads((f / "mindedit.json").read_text())["variant"]
    )
    lora = resolve_source(tmp_path / "lora_run", base)
    assert lora.variant == "text-only" and lora.checkpoint.endswith("checkpoint") and lora.mllm == str(base)
    full = resolve_source(tmp_path / "full_run", base)  # full fine-tuning of text_only: no checkpoint
    assert full.mllm.endswith("model") and full.checkpoint is None and full.variant == "text_only"
    with pytest.raises(FileNotFoundError, match="neither a MIND-Edit checkpoint"):
        resolve_source(tmp_path, base)
    with pytest.raises(ValueError, match="--mllm"):
        resolve_source(tmp_path / "lora_run" / "checkpoint", None)
