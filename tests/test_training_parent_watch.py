"""A training worker ends when its launcher dies (``kill -9`` of the launcher or of its process group
does not reach workers started in their own session, as torchrun starts them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.parent_watch import EXIT_STATUS, launched_by_a_launcher

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX re-parenting")

# The "launcher": starts a worker in a new session (like torchrun), prints its pid, then waits.
LAUNCHER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(600)
"""
WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from training.parent_watch import exit_when_parent_dies
exit_when_parent_dies(interval=0.1)
open({ready!r}, "w").close()
time.sleep(600)  # "training"
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split()[2] == "Z")


def test_worker_exits_when_its_launcher_is_killed(tmp_path, repo_root):
    ready = tmp_path / "ready"
    worker_code = WORKER.format(root=str(repo_root), ready=str(ready))
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, worker_code],
        stdout=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    worker_pid = int(launcher.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)
        assert _alive(worker_pid)
        os.killpg(launcher.pid, signal.SIGKILL)  # kill -9 of the launcher's process group
        launcher.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker_pid), "the worker kept running after its launcher was killed"
    finally:
        if _alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)


def test_only_launcher_workers_are_watched():
    assert launched_by_a_launcher({"LOCAL_RANK": "0", "RANK": "0"})
    assert launched_by_a_launcher({"TORCHELASTIC_RUN_ID": "x"})
    assert not launched_by_a_launcher({"HOME": "/root"})
    assert EXIT_STATUS == 128 + signal.SIGTERM


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_kill_9_of_accelerate_launch_stops_the_training_workers(training_inputs, tmp_path, repo_root):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(repo_root), "OMP_NUM_THREADS": "1"}
    env["HF_DATASETS_CACHE"] = str(tmp_path / "hf")
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "training.train", "--config", "lora"]
    for flag in ("model", "data", "refined", "targets"):
        cmd += [f"--{flag}", str(training_inputs[flag])]
    cmd += ["--out", str(out), "--max-steps", "100000", "--set", "split=all", "limit=4", "batch_size=1"]
    cmd += ["grad_accum=1", "precision=fp32", "gradient_checkpointing=false", "progress=false"]
    cmd += ["tensorboard=false", "save_every=100000"]
    launcher = subprocess.Popen(
        cmd,
        env=env,
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        metrics = out / "metrics.jsonl"
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
            assert launcher.poll() is None, "the run ended before training"
            assert time.monotonic() < deadline, "no training step within 300 s"
            time.sleep(0.5)
        workers = _children(launcher.pid)
        assert len(workers) == 2
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "training workers outlived their launcher"
    finally:
        for pid in [launcher.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
