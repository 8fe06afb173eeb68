"""Select the training records: dataset + split + refined prompts + CLIP targets, without decoding images.

Records that lack what the variant needs (refined prompts, from the cache or inline in JSONL data, for
the text loss; a CLIP target for the head) are dropped with a warning that says how many and how to
fill them; none left is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mindedit_core.prompting import PROMPT_VERSION

from .config import TrainConfig
from .data.loader import load_records, record_ids
from .data.record import EditRecord
from .data.split import default_manifest_path, ensure_manifest
from .refine_cache import load_refined
from .target_store import TargetStore

log = logging.getLogger(__name__)


class SelectedRecords(Sequence[EditRecord]):
    """A view of ``base`` at ``positions``, with refined prompts attached on access."""

    def __init__(
        self, base: Sequence[EditRecord], positions: list[int], ids: list[str], refined: dict
    ) -> None:
        self._base = base
        self._positions = positions
        self._ids = ids
        self._refined = refined
        self.provenance: dict = {}  # where the records came from (see `data_provenance`)

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        record = self._base[self._positions[index]]
        if record.id in self._refined:
            record = record.with_refined(*self._refined[record.id])
        return record

    def ids(self) -> list[str]:
        return list(self._ids)


SPLIT_ALL = ("all", "none")  # train on every record, test records included (explicit only)


def split_path(cfg: TrainConfig) -> str | None:
    """The split manifest training reads (its ``subset`` part), or ``None`` for ``split=all``.

    Without ``split=``, the dataset's known manifest is used (`default_manifest_path`; HumanEdit's is
    written on first use). A dataset with no known split is refused: training on all of it would
    include its test records, so that needs ``split=all``."""
    if cfg.split in SPLIT_ALL:
        log.warning("split=%s: training on every record of %s, test records included.", cfg.split, cfg.data)
        return None
    if cfg.split:
        return cfg.split
    known = default_manifest_path(cfg.data_format, cfg.data)
    if known.is_file() or cfg.data_format == "humanedit":
        return str(known)
    raise ValueError(
        f"No split is known for {cfg.data} ({cfg.data_format}): training on every record would train on "
        f"its test records too. Write one with `python -m training.data.split --format {cfg.data_format} "
        f"--data {cfg.data}` (it goes to {known}, where training finds it), pass split=<manifest>, or "
        "pass split=all to train on every record."
    )


def select_training_records(cfg: TrainConfig, *, targets: TargetStore | None) -> SelectedRecords:
    base = load_records(cfg.data_format, cfg.data, mask_polarity=cfg.mask_polarity, column_map=cfg.column_map)
    ids = record_ids(base)
    positions = list(range(len(ids)))
    manifest_path = split_path(cfg)
    if manifest_path:
        manifest = ensure_manifest(ids, manifest_path, dataset_format=cfg.data_format)
        wanted = set(getattr(manifest, cfg.subset))
        positions = [p for p in positions if ids[p] in wanted]
        log.info("Split %s: %d %s records.", manifest_path, len(positions), cfg.subset)
    refined: dict = {}
    if cfg.uses_text:
        refined = load_refined(cfg.refined, prompt_version=PROMPT_VERSION) if cfg.refined else {}
        # JSONL data may carry refined prompts inline (`positive`/`negative`); the cache's win.
        inline = {r.id for r in base if r.has_refined} if cfg.data_format == "jsonl" else set()
        kept = [p for p in positions if ids[p] in refined or ids[p] in inline]
        _report_drop(
            len(positions) - len(kept),
            len(positions),
            "refined prompts",
            "run `python -m training.refine_data` on the same data (it resumes)",
        )
        positions = kept
    if cfg.uses_head and targets is not None:
        have = targets.ids(cfg.head_kind)
        kept = [p for p in positions if ids[p] in have]
        _report_drop(
            len(positions) - len(kept),
            len(positions),
            f"{cfg.head_kind} CLIP targets",
            f"run `python -m training.build_targets --kinds {cfg.head_kind}` (it resumes)",
        )
        positions = kept
    if cfg.limit is not None:
        positions = positions[: cfg.limit]
    if not positions:
        raise ValueError(
            f"No training records left from {cfg.data} (split {manifest_path}, subset {cfg.subset}) after "
            "matching refined prompts and CLIP targets: check that they were built from the same data."
        )
    selected = SelectedRecords(base, positions, [ids[p] for p in positions], refined)
    selected.provenance = data_provenance(cfg, num_records=len(ids), manifest_path=manifest_path)
    selected.provenance["num_trained"] = len(positions)
    return selected


def file_sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def data_provenance(cfg: TrainConfig, *, num_records: int, manifest_path: str | None) -> dict:
    """What a checkpoint was trained on, recorded in its manifest (``extra.data``) so evaluation can
    report it and refuse a test split that overlaps it: the dataset (path, format, size), the split
    manifest (path, sha256 of the file, the id-list hash it records) and the subset, or ``split: all``."""
    out: dict = {
        "path": str(Path(cfg.data).resolve()),
        "format": cfg.data_format,
        "num_records": num_records,
        "split": "all" if manifest_path is None else str(Path(manifest_path).resolve()),
        "subset": None if manifest_path is None else cfg.subset,
    }
    if manifest_path is not None:
        import json

        out["split_sha256"] = file_sha256(manifest_path)
        out["split_ids_sha256"] = json.loads(Path(manifest_path).read_text(encoding="utf-8")).get(
            "ids_sha256"
        )
    return out


def _report_drop(dropped: int, total: int, what: str, fix: str) -> None:
    if dropped:
        log.warning("%d of %d records have no %s and are left out: %s.", dropped, total, what, fix)
