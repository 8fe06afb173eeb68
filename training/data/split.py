"""Our train/test split of HumanEdit, shipped as a manifest of IMAGE_IDs.

The method trained on 5,244 rows and tested on 500 but did not publish its split. Ours is
deterministic: sort the IMAGE_IDs as strings, shuffle them with ``random.Random(seed)``, take the
first ``test_size`` as test, the next ``train_size`` as train, and list any rest as ``unused``
(HumanEdit has 5,751 rows; 5,751 - 500 - 5,244 = 7).

The IDs are not known until you have a local copy, so the manifest is written on first use (or with
``python -m training.data.split``) to ``training/splits/humanedit.json``. Commit or share that file:
it, not the seed alone, is what makes an experiment reproducible (a different copy of the dataset
could hold different IDs; the manifest records a hash of the sorted ID list to detect that).

    python -m training.data.split --data /path/to/HumanEdit [--seed 0] [--out training/splits/humanedit.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"
DEFAULT_MANIFEST = SPLITS_DIR / "humanedit.json"
DEFAULT_SEED = 0
PAPER_TRAIN_SIZE = 5244
PAPER_TEST_SIZE = 500


def ids_digest(ids: Iterable[str]) -> str:
    """sha256 of the sorted ids, one per line: identifies the copy of the dataset a split came from."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


@dataclass
class SplitManifest:
    dataset: str
    seed: int
    num_ids: int
    ids_sha256: str
    train: list[str]
    test: list[str]
    unused: list[str]
    method: str = "sorted ids, random.Random(seed).shuffle, first test_size = test, next train_size = train"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SplitManifest:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**data)


def make_split(
    ids: Sequence[str],
    *,
    seed: int = DEFAULT_SEED,
    test_size: int = PAPER_TEST_SIZE,
    train_size: int | None = PAPER_TRAIN_SIZE,
    dataset: str = "HumanEdit",
) -> SplitManifest:
    """Deterministic split of ``ids`` (any order in, same split out).

    ``train_size=None`` puts every non-test id in train. When the dataset is smaller than the
    requested sizes, test keeps ``test_size`` (if possible) and train takes what is left, with a
    warning: a partial download should still train.
    """
    unique = sorted({str(i) for i in ids})
    if len(unique) != len(ids):
        raise ValueError(f"{dataset}: {len(ids) - len(unique)} duplicate ids; a split needs unique ids.")
    if test_size >= len(unique):
        raise ValueError(f"{dataset}: test_size {test_size} leaves nothing to train on ({len(unique)} ids).")
    order = list(unique)
    random.Random(seed).shuffle(order)
    test = order[:test_size]
    rest = order[test_size:]
    if train_size is None or train_size >= len(rest):
        if train_size is not None and train_size > len(rest):
            log.warning(
                "%s has %d ids: train gets %d instead of %d.", dataset, len(unique), len(rest), train_size
            )
        train, unused = rest, []
    else:
        train, unused = rest[:train_size], rest[train_size:]
    return SplitManifest(
        dataset=dataset,
        seed=seed,
        num_ids=len(unique),
        ids_sha256=ids_digest(unique),
        train=train,
        test=test,
        unused=unused,
    )


def ensure_manifest(
    ids: Sequence[str], path: str | Path = DEFAULT_MANIFEST, *, seed: int = DEFAULT_SEED, **sizes
) -> SplitManifest:
    """Load the manifest at ``path``; write it from ``ids`` on first use.

    An existing manifest is never rewritten. If it was made from a different copy of the data (its
    id hash differs) a warning says so; its ids are then checked when selecting rows.
    """
    path = Path(path)
    if path.is_file():
        manifest = SplitManifest.load(path)
        if manifest.ids_sha256 != ids_digest(str(i) for i in ids):
            log.warning(
                "Split manifest %s was written from a different copy of the dataset (%d ids, yours %d). "
                "Using it anyway; rows it names must exist in your copy.",
                path,
                manifest.num_ids,
                len(ids),
            )
        return manifest
    manifest = make_split(ids, seed=seed, **sizes)
    manifest.save(path)
    log.warning(
        "Wrote the split manifest %s (seed %d, %d train / %d test). Commit or share this file to "
        "reproduce the split.",
        path,
        seed,
        len(manifest.train),
        len(manifest.test),
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    from .humanedit import load_humanedit

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", required=True, help="local HumanEdit copy (snapshot folder or parquet glob)"
    )
    parser.add_argument("--out", default=str(DEFAULT_MANIFEST), help="manifest path to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--test-size", type=int, default=PAPER_TEST_SIZE)
    parser.add_argument("--train-size", type=int, default=PAPER_TRAIN_SIZE, help="-1: all non-test rows")
    parser.add_argument("--force", action="store_true", help="overwrite an existing manifest")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"{out} exists; pass --force to overwrite it (it defines the shipped split).")
        return 1
    table = load_humanedit(args.data)
    ids = table.ids()
    manifest = make_split(
        ids,
        seed=args.seed,
        test_size=args.test_size,
        train_size=None if args.train_size < 0 else args.train_size,
    )
    manifest.save(out)
    print(
        f"Wrote {out}: {len(manifest.train)} train, {len(manifest.test)} test, {len(manifest.unused)} unused."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
