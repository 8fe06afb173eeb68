"""The opt-in model downloader: argument parsing and the download plan, offline (nothing is fetched)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devkit import download_models as dm


def test_plan_puts_each_item_in_comfyuis_folders(tmp_path):
    items = dm.plan(["llava-0.5b", "ipadapter-plain", "ipadapter-plus", "vit-h", "llava-7b"], tmp_path)
    dest = {item.key: item.destinations() for item in items}
    assert dest["llava-0.5b"] == [tmp_path / "LLM" / "llava-onevision-qwen2-0.5b-ov-hf"]
    assert dest["llava-7b"] == [tmp_path / "LLM" / "llava-onevision-qwen2-7b-ov-hf"]
    assert dest["ipadapter-plain"] == [tmp_path / "ipadapter" / "ip-adapter_sd15.safetensors"]
    assert dest["ipadapter-plus"] == [tmp_path / "ipadapter" / "ip-adapter-plus_sd15.safetensors"]
    assert dest["vit-h"][0].parent == tmp_path / "clip_vision"
    repos = {item.key: item.repo_id for item in items}
    assert repos["llava-0.5b"] == "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
    assert {repos["ipadapter-plain"], repos["ipadapter-plus"], repos["vit-h"]} == {"h94/IP-Adapter"}


def test_plan_expands_all_and_drops_duplicates(tmp_path):
    keys = [item.key for item in dm.plan(["ipadapter-plain", "all", "ipadapter-plain"], tmp_path)]
    assert keys[0] == "ipadapter-plain" and sorted(keys) == sorted(dm.WHAT_CHOICES)
    with pytest.raises(ValueError, match="unknown item 'sdxl'"):
        dm.plan(["sdxl"], tmp_path)


def test_cli_rejects_unknown_items_and_requires_models_dir(capsys):
    with pytest.raises(SystemExit):
        dm.parse_args(["--what", "sdxl", "--models-dir", "x"])
    with pytest.raises(SystemExit):
        dm.parse_args(["--what", "llava-0.5b"])
    assert "--models-dir" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_downloads_nothing(tmp_path, capsys, monkeypatch):
    def no_network(*_a, **_k):
        raise AssertionError("a dry run must not download")

    monkeypatch.setattr(dm, "fetch", no_network)
    assert dm.main(["--what", "llava-0.5b", "vit-h", "--models-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "llava-hf/llava-onevision-qwen2-0.5b-ov-hf" in out and "1.8 GB" in out
    assert str(tmp_path / "LLM" / "llava-onevision-qwen2-0.5b-ov-hf") in out
    assert not any(tmp_path.iterdir()), "a dry run must not create folders"


def test_missing_models_dir_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert dm.main(["--what", "ipadapter-plain", "--models-dir", str(missing)]) == 2
    assert "models/ folder" in capsys.readouterr().err


def test_importing_the_downloader_does_not_import_the_hub_client():
    assert "devkit.download_models" in sys.modules
    source = Path(dm.__file__).read_text()
    top_level = source.split("def fetch")[0]
    assert "huggingface_hub" not in top_level.replace("``huggingface_hub``", "")
