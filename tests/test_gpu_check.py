"""`bench/gpu_check.py` in its CPU mode on the tiny fixtures, so the GPU script cannot rot unnoticed.

One subprocess runs every check (as on a GPU machine: ComfyUI in its own process state) and writes
the JSON the GPU run writes; the tests read it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from fixtures_paths import REPO_ROOT

SCRIPT = REPO_ROOT / "bench" / "gpu_check.py"


def load_gpu_check():
    """The script as a module (registered first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location("gpu_check_inprocess", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from devkit.comfyui_runtime import comfyui_root

    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    # The script never fetches ComfyUI (it skips that row without one): hand it the tree the ComfyUI
    # tests use, extracted here if no earlier test did, so this module does not depend on test order.
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", COMFYUI_PATH=str(comfyui_root()))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--repeats", "1", "--steps", "1", "--json", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    data = json.loads(out.read_text()) if out.is_file() else None
    return proc, data


def _rows(data) -> dict[str, dict]:
    return {row["name"]: row for row in data["rows"]}


def test_cpu_mode_runs_every_check_and_none_fails(tiny_run):
    proc, data = tiny_run
    assert data is not None, proc.stderr[-3000:]
    rows = _rows(data)
    assert list(rows) == list(load_gpu_check().CHECKS)
    failed = {
        name: row["note"] + row["metrics"].get("traceback", "")
        for name, row in rows.items()
        if row["status"] == "failed"
    }
    assert not failed, failed
    assert proc.returncode == 0
    assert "| check | status |" in proc.stdout and "tiny CPU mode" in data["header"]


def test_cpu_mode_measures_what_the_gpu_table_reports(tiny_run):
    _, data = tiny_run
    rows = _rows(data)
    one_pass = rows["one_pass_0.5b"]["metrics"]
    assert one_pass["ratio_plain"] > 0 and one_pass["ratio_plus"] > 0
    assert one_pass["prompt_tokens"] > 36  # the tiny tile's 36 image tokens + the request
    assert rows["prefill_7b"]["metrics"]["tokens_per_s"] > 0
    for name in ("train_0.5b_lora", "train_0.5b_full", "train_7b_lora"):
        metrics = rows[name]["metrics"]
        assert metrics["tokens_per_s"] > 0 and metrics["hours_5_epochs_5244"] > 0, name
    assert (
        rows["train_0.5b_lora"]["metrics"]["trainable_m"] < rows["train_0.5b_full"]["metrics"]["trainable_m"]
    )
    comfy = rows["sd15_comfyui"]["metrics"]
    assert comfy["variant"] == "sites16" and comfy["ratio_plain"] > 0 and comfy["ratio_plus"] > 0


def test_cpu_mode_offload_check_sees_comfyui_unload_the_mllm(tiny_run):
    _, data = tiny_run
    metrics = _rows(data)["offload"]["metrics"]
    assert metrics["mllm_loaded_before"] and not metrics["mllm_loaded_after_sd15"]
    assert metrics["same_output_after_reload"]


def test_a_missing_package_is_a_skipped_row_not_a_failure(tiny_run):
    _, data = tiny_run
    row = _rows(data)["sd15_diffusers"]
    if importlib.util.find_spec("diffusers") is None:
        assert row["status"] == "skipped" and "diffusers is not installed" in row["note"]
    else:
        assert row["status"] == "ok" and row["metrics"]["ours_plain/diffusers_plain"] > 0


@pytest.fixture
def gpu_check_module():
    return load_gpu_check()


def _tiny_env(module):
    import torch

    return module.Env(
        torch.device("cpu"), torch.float32, True, steps=1, repeats=1, train_batch=1, new_tokens=1
    )


def test_missing_diffusers_is_reported_as_skipped(gpu_check_module, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "diffusers" else real_find_spec(name, *a),
    )
    (row,) = gpu_check_module.run_checks(_tiny_env(gpu_check_module), ["sd15_diffusers"])
    assert (row.status, row.note) == ("skipped", "diffusers is not installed here (install nothing: skipped)")


def test_no_comfyui_tree_is_reported_as_skipped_and_names_the_fix(gpu_check_module, monkeypatch, tmp_path):
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path))
    rows = gpu_check_module.run_checks(_tiny_env(gpu_check_module), ["sd15_comfyui", "offload"])
    assert [r.status for r in rows] == ["skipped", "skipped"]
    assert all("set COMFYUI_PATH" in r.note for r in rows)
