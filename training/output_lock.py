"""One training run per output folder: ``<out>/train.lock`` names the run that owns the folder.

Two runs writing states, metrics and the checkpoint into one folder would corrupt each other, so a
second run into a locked folder refuses with a message naming the owner (pid, host, start time,
command). A lock left by a killed run must not block forever: when the owner ran on this host and
its process is gone (or the pid now belongs to a process started later), the lock is stale, it is
taken over with a warning, and the run resumes as usual. A lock from another host cannot be checked
from here: the message says to delete the file if that run is known to be dead.

The lock file is created complete (written to a temporary file, then hard-linked into place, which
fails if the lock exists), so a kill can never leave a half-written lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "train.lock"


class OutputFolderLocked(RuntimeError):
    """Another live training run owns the output folder."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux ``/proc``), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), counted after "(comm)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def owner_is_dead(owner: dict) -> bool:
    """True when the lock's owner ran on this host and its process no longer exists."""
    if owner.get("host") != socket.gethostname():
        return False
    pid = int(owner.get("pid", -1))
    if pid <= 0 or not _alive(pid):
        return True
    started = owner.get("process_start")
    return started is not None and _process_start(pid) not in (None, started)


class OutputLock:
    """``acquire()`` takes ``<folder>/train.lock`` (or raises `OutputFolderLocked`); ``release()`` drops it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False

    def _owner_record(self) -> dict:
        pid = os.getpid()
        return {
            "pid": pid,
            "host": socket.gethostname(),
            "process_start": _process_start(pid),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(sys.argv),
        }

    def _try_create(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{LOCK_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self._owner_record()) + "\n", encoding="utf-8")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def read_owner(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {"unreadable": True}

    def acquire(self) -> OutputLock:
        for _ in range(3):
            if self._try_create():
                self.held = True
                return self
            owner = self.read_owner()
            if not owner:  # released between our attempt and the read: try again
                continue
            if owner.get("unreadable") or owner_is_dead(owner):
                log.warning(
                    "%s was left by a run that is no longer running (pid %s on %s, started %s): taking "
                    "the folder over; the run resumes from its newest state.",
                    self.path,
                    owner.get("pid", "?"),
                    owner.get("host", "?"),
                    owner.get("started", "?"),
                )
                self.path.unlink(missing_ok=True)
                continue
            where = "this machine" if owner.get("host") == socket.gethostname() else f"host {owner['host']}"
            raise OutputFolderLocked(
                f"Output folder {self.folder} is in use by another training run (pid {owner.get('pid')} on "
                f"{where}, started {owner.get('started')}, command: {owner.get('command')}). Wait for it "
                f"to finish, or pass another --out. If that run is known to be dead, delete {self.path}."
            )
        raise OutputFolderLocked(f"Could not take {self.path}: it keeps changing; is another run starting?")

    def release(self) -> None:
        if self.held and self.read_owner().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_output_folder(accelerator, out: Path) -> OutputLock | None:
    """The main process takes ``<out>/train.lock``; every process raises `OutputFolderLocked` when it
    cannot (one small all-reduce, so no process is left waiting for the others)."""
    lock, refused = None, None
    if accelerator.is_main_process:
        try:
            lock = OutputLock(out).acquire()
        except OutputFolderLocked as exc:
            refused = exc
    if accelerator.num_processes > 1:
        import torch

        flag = torch.tensor([0.0 if refused else 1.0], device=accelerator.device)
        agreed = float(accelerator.reduce(flag, "sum")) == accelerator.num_processes
        if not agreed and refused is None:
            if lock is not None:
                lock.release()
            raise OutputFolderLocked(f"The main process could not lock {out} (see its error).")
    if refused is not None:
        raise refused
    return lock
