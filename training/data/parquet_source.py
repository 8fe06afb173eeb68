"""A local parquet dataset (a hub snapshot folder, a folder of shards, a glob or one file), opened
with `datasets` offline and read row by row as `EditRecord`s through a column map.

`datasets` memory-maps the converted Arrow table, so random access (needed for shuffled training)
costs no RAM; image columns are cast to ``Image(decode=False)`` so rows carry the encoded bytes.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from pathlib import Path

from .record import EditRecord


def find_parquet_files(path: str | Path) -> list[str]:
    """Parquet files for ``path``: a file, a glob pattern, or a folder searched recursively."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text, recursive=True))
    else:
        p = Path(text).expanduser()
        if p.is_file():
            files = [str(p)]
        elif p.is_dir():
            # `hf download --local-dir` keeps bookkeeping under <dir>/.cache: skip it.
            files = sorted(str(f) for f in p.rglob("*.parquet") if ".cache" not in f.relative_to(p).parts)
        else:
            raise FileNotFoundError(
                f"Dataset path {p} does not exist. Download the dataset first, e.g. "
                "`hf download BryanW/HumanEdit --repo-type dataset --local-dir <folder>`, "
                "and pass that folder."
            )
    if not files:
        raise FileNotFoundError(
            f"No .parquet files found under {text}. Pass the dataset's snapshot folder, a folder of "
            "parquet shards, a glob like 'data/train-*.parquet', or one parquet file."
        )
    return files


def open_parquet(path: str | Path, *, cache_dir: str | Path | None = None):
    """Open local parquet shards as one `datasets.Dataset` (offline, memory-mapped)."""
    import datasets

    files = find_parquet_files(path)
    return datasets.load_dataset(
        "parquet",
        data_files={"train": files},
        split="train",
        cache_dir=str(cache_dir) if cache_dir else None,
    )


def check_columns(columns: Sequence[str], required: dict[str, str], *, dataset_name: str) -> None:
    """Raise a clear error naming every missing column and the columns that exist."""
    missing = {role: col for role, col in required.items() if col not in columns}
    if missing:
        wanted = ", ".join(f"{role} -> {col!r}" for role, col in missing.items())
        raise ValueError(
            f"{dataset_name}: the data lacks the columns {wanted}. Columns present: {sorted(columns)}. "
            "Pass a column map (--column-map role=column, roles: id, source, target, instruction, "
            "mask, edit_type) that names the right columns."
        )


def cast_images_undecoded(ds, image_columns: Sequence[str]):
    """Keep image columns encoded (``{'bytes','path'}`` dicts) so reading a row costs no decode."""
    import datasets

    for col in image_columns:
        if col in ds.column_names and isinstance(ds.features[col], datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def image_cell(value, *, base_dir: Path | None = None):
    """An image cell (HF struct, raw bytes or path string) as `ImageData`, or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
        if not value:
            return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    p = Path(str(value))
    return p if p.is_absolute() or base_dir is None else base_dir / p


class RecordTable(Sequence[EditRecord]):
    """A random-access sequence of `EditRecord`s over a `datasets.Dataset` and a row converter."""

    def __init__(self, ds, to_record: Callable[[dict], EditRecord], *, name: str, id_column: str) -> None:
        self._ds = ds
        self._to_record = to_record
        self.name = name
        self.id_column = id_column

    def ids(self) -> list[str]:
        """Every record id, without decoding any image."""
        return [str(v) for v in self._ds[self.id_column]]

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._to_record(self._ds[int(index)])

    def column(self, name: str) -> list:
        return list(self._ds[name])

    def select_ids(self, ids: Sequence[str], id_column: str | None = None) -> RecordTable:
        """The rows whose id is in ``ids``, in the order of ``ids``; unknown ids raise.

        ``id_column`` is accepted for callers that name it; it defaults to the reader's id column.
        """
        column = id_column or self.id_column
        position = {str(v): i for i, v in enumerate(self._ds[column])}
        unknown = [i for i in ids if i not in position]
        if unknown:
            raise KeyError(
                f"{self.name}: {len(unknown)} ids of the split manifest are not in the data "
                f"(first: {unknown[:5]}). The manifest was written from a different copy of the "
                "dataset: re-download it, or write a new manifest with `python -m training.data.split`."
            )
        return RecordTable(
            self._ds.select([position[i] for i in ids]),
            self._to_record,
            name=self.name,
            id_column=self.id_column,
        )
