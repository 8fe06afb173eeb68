"""``accelerate launch`` with 2 processes: each edits a disjoint half of the items into its own manifest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.evaluate.run_files import read_jsonl, read_manifest

pytestmark = pytest.mark.slow


def test_two_processes_split_the_items(tmp_path, repo_root, sd15_diffusers_dir, eval_humanedit_dir) -> None:
    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.exists() and shutil.which("accelerate") is None:
        pytest.skip("accelerate is not installed")
    out = tmp_path / "run"
    command = [
        str(launcher if launcher.exists() else shutil.which("accelerate")), "launch", "--multi_gpu",
        "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", "29533",
        "-m", "training.evaluate", "generate", "--method", "sd15", "--data", str(eval_humanedit_dir),
        "--limit", "4", "--sd-model", str(sd15_diffusers_dir), "--steps", "1", "--resolution", "64",
        "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(repo_root))
    result = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    per_rank = [{row["id"] for row in read_jsonl(out / f"manifest.rank{k}.jsonl")} for k in range(2)]
    assert len(per_rank[0]) == 2 and len(per_rank[1]) == 2
    assert per_rank[0].isdisjoint(per_rank[1])
    assert len(read_manifest(out)) == 4
