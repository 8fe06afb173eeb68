"""One entry point for every dataset format, used by the command-line tools."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .complex_multistep import load_complex_multistep
from .humanedit import HUMANEDIT_DEFAULT_POLARITY, load_humanedit
from .jsonl import load_jsonl
from .record import EditRecord

DATASET_FORMATS: tuple[str, ...] = ("humanedit", "complex_multistep", "jsonl")


def parse_column_map(items: Sequence[str] | None) -> dict[str, str]:
    """``["source=image", "target=edited"]`` -> ``{"source": "image", "target": "edited"}``."""
    out: dict[str, str] = {}
    for item in items or ():
        role, sep, column = item.partition("=")
        if not sep or not role or not column:
            raise ValueError(f"Bad column map entry {item!r}: expected role=column, e.g. source=input_image.")
        out[role.strip()] = column.strip()
    return out


def load_records(
    dataset_format: str,
    path: str | Path,
    *,
    mask_polarity: str | None = None,
    column_map: dict[str, str] | None = None,
    cache_dir: str | Path | None = None,
) -> Sequence[EditRecord]:
    """Open a local dataset of the given format as a sequence of `EditRecord`s."""
    if dataset_format == "humanedit":
        return load_humanedit(
            path, mask_polarity=mask_polarity or HUMANEDIT_DEFAULT_POLARITY, cache_dir=cache_dir
        )
    if dataset_format == "complex_multistep":
        return load_complex_multistep(path, column_map=column_map, cache_dir=cache_dir)
    if dataset_format == "jsonl":
        return load_jsonl(path, mask_polarity=mask_polarity or "white_is_edit")
    raise ValueError(f"Unknown dataset format {dataset_format!r}: expected one of {DATASET_FORMATS}.")


def record_ids(records: Sequence[EditRecord]) -> list[str]:
    """The ids of a record sequence, without decoding images when the reader can avoid it."""
    ids = getattr(records, "ids", None)
    return ids() if callable(ids) else [r.id for r in records]
