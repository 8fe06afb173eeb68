"""The training output folder lock: a second run into a folder in use refuses clearly; a lock left by
a killed run (dead pid on this host) is taken over; a lock from another host is never guessed dead."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys

import pytest

from training.output_lock import LOCK_NAME, OutputFolderLocked, OutputLock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_lock_on_a_live_owner_refuses_and_names_it(tmp_path):
    first = OutputLock(tmp_path).acquire()
    with pytest.raises(OutputFolderLocked) as info:
        OutputLock(tmp_path).acquire()
    message = str(info.value)
    assert "in use by another training run" in message and f"pid {first.read_owner()['pid']}" in message
    assert str(tmp_path / LOCK_NAME) in message  # what to delete if the owner is known to be dead
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    OutputLock(tmp_path).acquire().release()  # free again


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "earlier", "command": "x"})
    )
    with caplog.at_level(logging.WARNING, logger="training.output_lock"):
        lock = OutputLock(tmp_path).acquire()
    assert lock.held and "no longer running" in caplog.text
    assert lock.read_owner()["pid"] != 0 and lock.read_owner()["host"] == socket.gethostname()
    lock.release()


def test_reused_pid_with_another_start_time_counts_as_dead(tmp_path):
    import os

    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "process_start": "-1"})
    )
    OutputLock(tmp_path).acquire().release()


def test_lock_from_another_host_is_not_guessed_dead(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": "gpu-node-7", "started": "t"}))
    with pytest.raises(OutputFolderLocked, match="host gpu-node-7"):
        OutputLock(tmp_path).acquire()


def test_train_refuses_a_locked_folder_before_writing_anything(tmp_path):
    from accelerate.state import AcceleratorState

    from training.config import build_config
    from training.train import train

    held = OutputLock(tmp_path).acquire()
    cfg = build_config(
        "lora", [], model="m", data="d", refined="r", targets="t", output_dir=str(tmp_path), precision="fp32"
    )
    try:
        with pytest.raises(OutputFolderLocked, match="in use by another training run"):
            train(cfg)
        assert not (tmp_path / "train_config.json").exists()
        assert held.read_owner()["pid"] == held._owner_record()["pid"]  # the owner's lock is untouched
    finally:
        held.release()
        AcceleratorState._reset_state(reset_partial_state=True)
