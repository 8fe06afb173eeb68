"""The on-disk layout of one evaluation run (one method over one split), shared by every step.

    <run>/run.json                 what was run: method, diffusion settings, dataset, seed, versions
    <run>/images/<id>.png          one edited image per item (written atomically: the commit point)
    <run>/items/<id>.json          that item's prompts, seed and timing (written just before the image)
    <run>/manifest.rank<k>.jsonl   one line per finished item, per process (no shared appends)
    <run>/failures.rank<k>.jsonl   items that raised, with the error
    <run>/scores.jsonl, summary.json, thumbs/   written by `score`

An item is finished when its image exists; a killed run resumes by skipping those.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

RUN_FILE = "run.json"
SCORES_FILE = "scores.jsonl"
SUMMARY_FILE = "summary.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(item_id: str) -> str:
    """A file name for an item id (unsafe characters -> '_'); ids that collide are rejected upstream."""
    name = _UNSAFE.sub("_", str(item_id))
    return name if name not in ("", ".", "..") else f"_{name}_"


def image_path(run: Path, item_id: str) -> Path:
    return run / "images" / f"{safe_name(item_id)}.png"


def item_path(run: Path, item_id: str) -> Path:
    return run / "items" / f"{safe_name(item_id)}.json"


def manifest_path(run: Path, rank: int) -> Path:
    return run / f"manifest.rank{rank}.jsonl"


def failures_path(run: Path, rank: int) -> Path:
    return run / f"failures.rank{rank}.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line; a line cut short by a killed writer is ended first, so only it is lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        line = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line
        handle.write(line)
        handle.flush()


def read_jsonl(path: Path) -> Iterator[dict]:
    """Rows of a JSONL file; a truncated last line (a killed writer) is skipped."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_manifest(run: Path) -> dict[str, dict]:
    """All finished items of a run (every rank), keyed by id; only items whose image exists."""
    rows: dict[str, dict] = {}
    for path in sorted(run.glob("manifest.rank*.jsonl")):
        for row in read_jsonl(path):
            if image_path(run, row["id"]).is_file():
                rows[row["id"]] = row
    return rows


def read_run(run: Path) -> dict:
    path = Path(run) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{run} is not an evaluation run folder (no {RUN_FILE}): run `python -m training.evaluate "
            "generate --out DIR ...` first."
        )
    return json.loads(path.read_text(encoding="utf-8"))
