"""ComplexMultistepImageEditing (`NilanE/ComplexMultistepImageEditing`): one parquet file, the
method evaluates 120 examples without masks.

Its column names are not verified here (the data could not be downloaded when this was written), so
the reader goes through a column map with a schema check: the defaults below are a guess, and a
mismatch fails with the list of columns that exist and how to pass ``column_map``.
"""

from __future__ import annotations

from pathlib import Path

from .parquet_source import RecordTable, cast_images_undecoded, check_columns, image_cell, open_parquet
from .record import EditRecord

# role -> column. Only id, source and instruction are required; target is needed for training and
# for the reference metrics. Override any entry with ``column_map``.
COMPLEX_MULTISTEP_COLUMNS: dict[str, str] = {
    "id": "id",
    "source": "source_image",
    "target": "target_image",
    "instruction": "instruction",
}
REQUIRED_ROLES = ("source", "instruction")


def load_complex_multistep(
    path: str | Path,
    *,
    column_map: dict[str, str] | None = None,
    cache_dir: str | Path | None = None,
) -> RecordTable:
    """The rows of a local ComplexMultistepImageEditing copy as mask-free `EditRecord`s.

    ``column_map`` overrides default role -> column entries (roles: id, source, target,
    instruction, edit_type). Without an id column the row number is the id.
    """
    columns = {**COMPLEX_MULTISTEP_COLUMNS, **(column_map or {})}
    ds = open_parquet(path, cache_dir=cache_dir)
    check_columns(
        ds.column_names,
        {role: columns[role] for role in REQUIRED_ROLES},
        dataset_name=f"ComplexMultistepImageEditing at {path}",
    )
    present = {role: col for role, col in columns.items() if col in ds.column_names}
    ds = cast_images_undecoded(ds, [present[r] for r in ("source", "target") if r in present])
    if "id" not in present:
        ds = ds.add_column("__row_id__", [str(i) for i in range(len(ds))])
        present["id"] = "__row_id__"

    def to_record(row: dict) -> EditRecord:
        return EditRecord(
            id=str(row[present["id"]]),
            instruction=str(row[present["instruction"]]).strip(),
            source=image_cell(row[present["source"]]),
            target=image_cell(row[present["target"]]) if "target" in present else None,
            edit_type=row.get(present["edit_type"]) if "edit_type" in present else None,
        )

    return RecordTable(ds, to_record, name="ComplexMultistepImageEditing", id_column=present["id"])
