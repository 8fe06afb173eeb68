"""Train/test splits of any dataset (HumanEdit, ComplexMultistepImageEditing, JSONL), shipped as a
manifest of record ids.

The method trained on 5,244 HumanEdit rows and tested on 500 but did not publish its split. Ours is
deterministic: sort the ids as strings, shuffle them with ``random.Random(seed)``, take the first
``test_size`` as test, the next ``train_size`` as train, and list any rest as ``unused``
(HumanEdit has 5,751 rows; 5,751 - 500 - 5,244 = 7).

Sizes are counts (``500``) or fractions of the dataset (``0.1``); ``rest`` gives train every non-test
id. By default HumanEdit gets the paper's 500 / 5,244 when the copy is large enough, and any other
dataset (or a partial HumanEdit copy) 10 % test (at least one record) and the rest train.

Where a dataset's manifest lives (`default_manifest_path`), so that training finds it by itself:
HumanEdit ``training/splits/humanedit.json`` (written on first use), ComplexMultistepImageEditing
``training/splits/complex_multistep.json``, JSONL beside the data (``<name>.split.json`` next to a
``.jsonl`` file, ``split.json`` inside a dataset folder). Commit or share that file: it, not the seed
alone, is what makes an experiment reproducible (the manifest records a hash of the sorted id list
to detect another copy of the data).

    python -m training.data.split --format jsonl --data my_edits/ [--test-size 0.2] [--seed 0]
    python -m training.data.split --data /path/to/HumanEdit          # training/splits/humanedit.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"
DEFAULT_MANIFEST = SPLITS_DIR / "humanedit.json"
DEFAULT_SEED = 0
PAPER_TRAIN_SIZE = 5244
PAPER_TEST_SIZE = 500
DEFAULT_TEST_FRACTION = 0.1
REST = "rest"
DATASET_NAMES = {
    "humanedit": "HumanEdit",
    "complex_multistep": "ComplexMultistepImageEditing",
    "jsonl": "JSONL",
}


def default_manifest_path(dataset_format: str, data: str | Path) -> Path:
    """Where the split manifest of a dataset lives unless one is named (see the module docstring)."""
    if dataset_format == "humanedit":
        return DEFAULT_MANIFEST
    if dataset_format == "complex_multistep":
        return SPLITS_DIR / "complex_multistep.json"
    path = Path(data).expanduser()
    if path.is_dir():
        return path / "split.json"
    return path.with_name(f"{path.stem}.split.json")


def _size(spec: str | int | float | None, n: int, what: str) -> int | None:
    """A count from ``spec``: an int count, a fraction in (0, 1), or ``rest`` (None)."""
    if spec is None or spec == REST:
        return None
    value = float(spec)
    if 0 < value < 1:
        return max(1, round(value * n))
    if value < 0 or value != int(value):
        raise ValueError(f"{what} {spec!r}: expected a count (e.g. 500), a fraction in (0, 1) or '{REST}'.")
    return int(value)


def resolve_sizes(
    n: int, dataset_format: str, test: str | int | float | None = None, train: str | int | float | None = None
) -> tuple[int, int | None]:
    """``(test_size, train_size)`` for a dataset of ``n`` ids; ``None`` spec = the default.

    Default: the paper's 500 / 5,244 for a HumanEdit copy that holds them, else 10 % test (at least 1)
    and the rest train."""
    paper = dataset_format == "humanedit" and n >= PAPER_TEST_SIZE + PAPER_TRAIN_SIZE
    test_size = _size(test, n, "test size") if test is not None else None
    if test_size is None:
        test_size = PAPER_TEST_SIZE if paper else max(1, round(DEFAULT_TEST_FRACTION * n))
    if train is None:
        train_size = PAPER_TRAIN_SIZE if paper and test is None else None
    else:
        train_size = _size(train, n, "train size")
    if test_size >= n:
        raise ValueError(
            f"A test size of {test_size} leaves nothing to train on: the dataset has {n} records. Pass a "
            "smaller --test-size (a count, or a fraction such as 0.2)."
        )
    return test_size, train_size


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
        raise ValueError(
            f"{dataset}: test_size {test_size} leaves nothing to train on ({len(unique)} ids): pass a smaller "
            "test size (a count, or a fraction such as 0.2)."
        )
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
    ids: Sequence[str],
    path: str | Path = DEFAULT_MANIFEST,
    *,
    seed: int = DEFAULT_SEED,
    dataset_format: str = "humanedit",
    **sizes,
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
    if not sizes:
        test_size, train_size = resolve_sizes(len(ids), dataset_format)
        sizes = {"test_size": test_size, "train_size": train_size}
    manifest = make_split(ids, seed=seed, dataset=DATASET_NAMES.get(dataset_format, dataset_format), **sizes)
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
    from ..cli_errors import add_verbose_flag, run_command
    from .loader import DATASET_FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m training.data.split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--format", choices=DATASET_FORMATS, default="humanedit")
    parser.add_argument(
        "--data", required=True, help="local dataset (HumanEdit snapshot, parquet, JSONL/folder)"
    )
    parser.add_argument(
        "--column-map", nargs="*", default=None, help="role=column entries (complex_multistep)"
    )
    parser.add_argument(
        "--out", default=None, help="manifest to write (default: where training looks for it)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--test-size",
        default=None,
        help="test records: a count or a fraction (default: 500 for HumanEdit, else 0.1)",
    )
    parser.add_argument(
        "--train-size",
        default=None,
        help=f"train records: a count, a fraction, or '{REST}' (default: 5,244 for HumanEdit, else the rest)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing manifest")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return run_command(lambda: _write(args), verbose=args.verbose)


def _write(args: argparse.Namespace) -> int:
    from .loader import load_records, parse_column_map, record_ids

    out = Path(args.out) if args.out else default_manifest_path(args.format, args.data)
    if out.exists() and not args.force:
        print(f"{out} exists; pass --force to overwrite it (it defines the split your results use).")
        return 1
    records = load_records(args.format, args.data, column_map=parse_column_map(args.column_map))
    ids = record_ids(records)
    train = None if args.train_size in (None, "-1") else args.train_size
    if args.train_size == "-1":
        train = REST
    try:
        test_size, train_size = resolve_sizes(len(ids), args.format, args.test_size, train)
        manifest = make_split(
            ids,
            seed=args.seed,
            test_size=test_size,
            train_size=train_size,
            dataset=DATASET_NAMES[args.format],
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifest.save(out)
    print(
        f"Wrote {out}: {len(manifest.train)} train, {len(manifest.test)} test, {len(manifest.unused)} unused "
        f"(of {manifest.num_ids} records, seed {manifest.seed})."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
