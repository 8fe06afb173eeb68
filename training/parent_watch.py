"""Workers that end when their launcher dies.

``accelerate launch`` / ``torchrun`` start each worker in a session of its own, so ``kill -9`` of the
launcher, or of the launcher's process group, does not reach the workers: they would train on to the
end (holding GPUs, writing states nobody waits for). `exit_when_parent_dies` starts a daemon thread
that polls the parent pid and ends this process (exit status 143, as SIGTERM would) once the parent
is gone: the process is then re-parented, so ``os.getppid()`` changes. Polling works on every POSIX
system and cannot fire by mistake (``prctl(PR_SET_PDEATHSIG)`` fires when the parent *thread* that
forked us exits, even if the launcher lives on). The run resumes from its newest state.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

EXIT_STATUS = 143  # 128 + SIGTERM, what a shell reports for a terminated process
LAUNCHER_ENV = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK")  # set by torchrun / accelerate launch for workers


def launched_by_a_launcher(environ=os.environ) -> bool:
    return any(key in environ for key in LAUNCHER_ENV)


def exit_when_parent_dies(*, interval: float = 1.0, what: str = "launcher") -> threading.Thread | None:
    """Watch the parent process; exit this one when it is gone. Returns the thread (``None`` on
    Windows, where processes are not re-parented)."""
    if os.name != "posix":
        return None
    parent = os.getppid()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            if os.getppid() != parent:
                message = (
                    f"The {what} (pid {parent}) is gone: process {os.getpid()} stops too. Rerun the same "
                    "command to resume from the newest saved state."
                )
                log.error(message)
                print(message, file=sys.stderr, flush=True)
                os._exit(EXIT_STATUS)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


def watch_launcher() -> threading.Thread | None:
    """`exit_when_parent_dies` for processes started by ``accelerate launch`` / ``torchrun``."""
    if not launched_by_a_launcher():
        return None
    return exit_when_parent_dies()
