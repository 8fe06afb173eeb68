"""The training metrics log: ``<out>/metrics.jsonl`` on the main process, plus TensorBoard
(``<out>/tensorboard``) when the ``tensorboard`` package is installed (the JSONL log always stays)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsLog:
    """metrics.jsonl (main process) + TensorBoard when the package is installed.

    ``start_step`` is the step the run starts from (0, or the resumed state's step): records of later
    steps, logged by a run that was killed before its next state save, are dropped from the JSONL
    and purged from TensorBoard, so every step appears once.
    """

    def __init__(self, out: Path, enabled: bool, tensorboard: bool, start_step: int = 0) -> None:
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.writer = None
        if enabled and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if _logged_step(line) <= start_step]
            if len(kept) != len(lines):
                self.path.write_text("".join(kept), encoding="utf-8")
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: say so once, keep the JSONL log
                log.info(
                    "TensorBoard is not installed (pip install tensorboard); metrics go to %s.", self.path
                )
            else:
                self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _logged_step(line: str) -> float:
    """The step of one metrics.jsonl line (a line cut short by a kill counts as after every step)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def format_metrics(record: dict) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items() if k != "step"
    )
