"""Which records an evaluation runs on: a dataset (via `training.data`), an optional split manifest,
explicit ids, and a limit. The same description is stored in ``run.json`` so `score` can reopen it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class DatasetSelection:
    """A dataset and the subset of it to evaluate (all paths absolute once resolved)."""

    format: str
    path: str
    split_manifest: str | None = None
    split: str = "test"
    ids: list[str] | None = None
    limit: int | None = None
    mask_polarity: str | None = None
    column_map: dict[str, str] = field(default_factory=dict)
    use_masks: bool = True

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = str(Path(self.path).resolve())
        if self.split_manifest:
            data["split_manifest"] = str(Path(self.split_manifest).resolve())
        return data

    @classmethod
    def from_json(cls, data: dict) -> DatasetSelection:
        return cls(**data)


def _split_ids(manifest_file: str, split: str) -> list[str]:
    from training.data import SplitManifest

    manifest = SplitManifest.load(manifest_file)
    if split not in ("train", "test", "unused"):
        raise ValueError(f"Unknown split {split!r}: expected train, test or unused.")
    return [str(i) for i in getattr(manifest, split)]


def _without_masks(records: Sequence) -> list:
    from dataclasses import replace

    return [replace(r, mask=None) for r in records]


def load_selection(selection: DatasetSelection, stats: dict | None = None) -> list:
    """The selected `EditRecord`s, in split-manifest (or dataset) order. ``stats`` (a dict) receives
    ``num_records``, the size of the whole dataset."""
    from training.data import load_records

    records = load_records(
        selection.format,
        selection.path,
        mask_polarity=selection.mask_polarity,
        column_map=selection.column_map or None,
    )
    if stats is not None:
        stats["num_records"] = len(records)
    wanted: list[str] | None = None
    if selection.split_manifest:
        wanted = _split_ids(selection.split_manifest, selection.split)
    if selection.ids:
        wanted = [i for i in (wanted or selection.ids) if i in set(selection.ids)]
    if wanted is not None:
        if selection.limit is not None:
            wanted = wanted[: selection.limit]
        if hasattr(records, "select_ids") and selection.format == "humanedit":
            from training.data import HUMANEDIT_COLUMNS

            chosen = list(records.select_ids(wanted, HUMANEDIT_COLUMNS["id"]))
        else:
            by_id = {r.id: r for r in records}
            missing = [i for i in wanted if i not in by_id]
            if missing:
                raise KeyError(
                    f"{len(missing)} selected ids are not in {selection.path} (first: {missing[:5]})."
                )
            chosen = [by_id[i] for i in wanted]
    else:
        count = len(records) if selection.limit is None else min(selection.limit, len(records))
        chosen = [records[i] for i in range(count)]
    return chosen if selection.use_masks else _without_masks(chosen)
