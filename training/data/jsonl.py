"""Users' own data: a JSONL file (or a folder holding ``metadata.jsonl``), one example a line.

Each line is an object with ``id``, ``source`` (image path), ``instruction``, and optionally
``target`` (image path; needed for training), ``mask`` (image path), ``edit_type``, ``positive`` and
``negative`` (refined prompts, if you already have them). Relative paths are resolved against the
JSONL file's folder. Masks are white = edit region unless ``mask_polarity`` says otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

from .masks import MaskPolarity, check_polarity
from .record import EditRecord

METADATA_NAME = "metadata.jsonl"
REQUIRED_KEYS = ("id", "source", "instruction")


def resolve_jsonl_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / METADATA_NAME
    if not p.is_file():
        raise FileNotFoundError(
            f"{p} does not exist. Pass a JSONL file, or a folder with a {METADATA_NAME} file whose lines "
            'look like {"id": "0001", "source": "images/0001.png", "instruction": "...", '
            '"target": "edited/0001.png"}.'
        )
    return p


def load_jsonl(path: str | Path, *, mask_polarity: MaskPolarity = "white_is_edit") -> list[EditRecord]:
    """All records of a JSONL dataset; a bad line raises with its line number."""
    check_polarity(mask_polarity)
    file = resolve_jsonl_path(path)
    base = file.parent
    records: list[EditRecord] = []
    seen: set[str] = set()
    with file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file}:{number}: not valid JSON ({exc}).") from exc
            missing = [k for k in REQUIRED_KEYS if not row.get(k)]
            if missing:
                raise ValueError(
                    f"{file}:{number}: missing required keys {missing} (required: {REQUIRED_KEYS})."
                )
            rid = str(row["id"])
            if rid in seen:
                raise ValueError(f"{file}:{number}: duplicate id {rid!r}; ids must be unique.")
            seen.add(rid)

            def path_of(key: str, row: dict = row) -> Path | None:
                return base / row[key] if row.get(key) else None

            records.append(
                EditRecord(
                    id=rid,
                    instruction=str(row["instruction"]).strip(),
                    source=path_of("source"),
                    target=path_of("target"),
                    mask=path_of("mask"),
                    edit_type=row.get("edit_type"),
                    refined_positive=row.get("positive"),
                    refined_negative=row.get("negative"),
                    mask_polarity=mask_polarity,
                )
            )
    return records
