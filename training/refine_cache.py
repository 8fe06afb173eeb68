"""The append-only JSONL cache of refinement answers, so a killed `refine_data` run resumes.

Each answered request is one line, written and flushed (fsync) as soon as its answer arrives, under
a lock, as a single ``write`` call. Just before a request is sent a ``sent`` line is written for it,
so a killed run knows which requests were in flight. On start the cache is read back: a request whose
key already has an answer (``ok`` or ``unparsed``) is never sent again; a request that was in flight
when the run was killed (its ``sent`` line has no answer after it; at most ``--concurrency`` of them)
is sent again, and the resumed run says how many. ``error`` lines (the endpoint failed after all
retries) are kept for the record and retried on the next run. A line cut short by a kill is skipped
with a warning.

The key is a sha256 over (model, prompt version, record id, instruction, source image bytes, mask
bytes when the mask is used, image size limit): change any of them and the request is made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STATUS_OK = "ok"  # answered and parsed
STATUS_UNPARSED = "unparsed"  # answered, the core parser fell back (kept, not dropped)
STATUS_ERROR = "error"  # no usable answer (HTTP failure after retries, empty answer, ...)
STATUS_SENT = "sent"  # the request is being sent; an answer or error line follows unless the run was killed
ANSWERED = (STATUS_OK, STATUS_UNPARSED)


def request_key(
    *,
    model: str,
    prompt_version: str,
    record_id: str,
    instruction: str,
    image: bytes,
    mask: bytes | None = None,
    max_side: int | None = None,
) -> str:
    """A stable hash of everything that determines the answer to a refinement request."""
    h = hashlib.sha256()
    for part in (model, prompt_version, record_id, instruction, str(max_side)):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little") + data)
    for blob in (image, mask or b""):
        h.update(len(blob).to_bytes(8, "little") + hashlib.sha256(blob).digest())
    return h.hexdigest()


@dataclass
class CacheEntry:
    key: str
    id: str
    status: str
    model: str
    prompt_version: str
    instruction: str
    positive: str = ""
    negative: str = ""
    raw: str = ""
    warning: str | None = None
    error: str | None = None
    attempts: int = 1
    extra: dict = field(default_factory=dict)


class RefineCache:
    """Thread-safe append-only JSONL file of `CacheEntry` lines."""

    def __init__(self, path: str | Path, *, also_read: Iterable[str | Path] = ()) -> None:
        """``also_read``: other cache files whose answers count as cached (a sharded process reads the
        merged file besides its own); only ``path`` is written."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.entries: dict[str, CacheEntry] = {}
        self.bad_lines = 0
        for other in also_read:
            self._read(Path(other))
        self._read(self.path)

    def _read(self, path: Path) -> None:
        if not path.is_file():
            return
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = CacheEntry(**json.loads(line))
                except (ValueError, TypeError) as exc:
                    self.bad_lines += 1
                    log.warning("%s:%d: skipping an unreadable line (a killed write?): %s", path, number, exc)
                    continue
                previous = self.entries.get(entry.key)
                # An answer is never replaced by a later error for the same key.
                if previous is None or entry.status in ANSWERED or previous.status not in ANSWERED:
                    self.entries[entry.key] = entry

    def answered(self, key: str) -> bool:
        entry = self.entries.get(key)
        return entry is not None and entry.status in ANSWERED

    def in_flight(self, key: str) -> bool:
        """The request was being sent when a previous run stopped (no answer was received)."""
        entry = self.entries.get(key)
        return entry is not None and entry.status == STATUS_SENT

    def append(self, entry: CacheEntry) -> None:
        with self._lock:
            _append_line(self.path, entry_line(entry))
            previous = self.entries.get(entry.key)
            if previous is None or entry.status in ANSWERED or previous.status not in ANSWERED:
                self.entries[entry.key] = entry

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries.values():
            out[entry.status] = out.get(entry.status, 0) + 1
        return out


def entry_line(entry: CacheEntry) -> str:
    return json.dumps(asdict(entry), ensure_ascii=False) + "\n"


def _append_line(path: Path, line: str) -> None:
    """One ``write`` of a whole line, flushed and fsynced; a partial last line (a killed write) is
    ended first so only it is lost."""
    with path.open("a", encoding="utf-8") as fh:
        if fh.tell() > 0:
            with path.open("rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    fh.write("\n")
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def rank_file(path: str | Path, index: int, count: int) -> Path:
    """The cache file process ``index`` of ``count`` writes beside ``path`` (merged into it later)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{index}-of-{count}{path.suffix}")


def unmerged_rank_files(path: str | Path) -> list[Path]:
    path = Path(path)
    return sorted(path.parent.glob(f"{path.stem}.rank*-of-*{path.suffix}"))


def merge_rank_files(path: str | Path) -> dict[str, int]:
    """Append the lines of every process's rank file to ``path`` and delete the rank file.

    Resumable: a line already in ``path`` is not appended twice, and a rank file is deleted only once
    all its lines are in ``path`` (flushed and fsynced), so a killed merge is finished by running it
    again. Returns ``{"files": ..., "lines": ...}`` (lines appended now)."""
    path = Path(path)
    files = unmerged_rank_files(path)
    present = set()
    if path.is_file():
        present = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    appended = 0
    for rank_path in files:
        for line in rank_path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line in present:
                continue
            try:
                CacheEntry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a killed process: its request is retried next run
            _append_line(path, line + "\n")
            present.add(line)
            appended += 1
        rank_path.unlink()
    return {"files": len(files), "lines": appended}


def load_refined(path: str | Path, *, prompt_version: str | None = None) -> dict[str, tuple[str, str]]:
    """``record id -> (positive, negative)`` from a refinement cache (parsed answers only).

    ``unparsed`` answers stay in the cache for inspection but are not training targets (their
    positive prompt is only the fallback instruction).

    With ``prompt_version`` set, entries made with another prompt version are ignored (and counted in
    a warning): a model must be trained on targets written for the prompt it will see.
    """
    pending = unmerged_rank_files(path)
    if pending:
        log.warning(
            "%s has %d unmerged per-process files (%s ...): their answers are not used. Merge them with "
            "`python -m training.refine_data --merge --out %s`.",
            path,
            len(pending),
            pending[0].name,
            path,
        )
    cache = RefineCache(path)
    out: dict[str, tuple[str, str]] = {}
    skipped = 0
    for entry in cache.entries.values():
        if entry.status != STATUS_OK:
            continue
        if prompt_version and entry.prompt_version != prompt_version:
            skipped += 1
            continue
        out[entry.id] = (entry.positive, entry.negative)
    if skipped:
        log.warning("%s: ignored %d entries made with another prompt version.", path, skipped)
    return out


def attach_refined(records: Iterable, refined: dict[str, tuple[str, str]]) -> tuple[list, list[str]]:
    """Records with their refined prompts filled in, and the ids that have none."""
    out, missing = [], []
    for record in records:
        if record.id in refined:
            out.append(record.with_refined(*refined[record.id]))
        else:
            out.append(record)
            if not record.has_refined:
                missing.append(record.id)
    return out, missing
