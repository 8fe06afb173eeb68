"""HumanEdit (`BryanW/HumanEdit`) from a local download.

Schema (one ``train`` split, 5,751 rows): ``IMAGE_ID``, ``EDITING_TYPE``, ``CORE``, ``MASK``,
``EDITING_INSTRUCTION``, ``OUTPUT_DESCRIPTION``, ``INPUT_CAPTION_BY_LLAMA``,
``OUTPUT_CAPTION_BY_LLAMA`` and the images ``INPUT_IMG``, ``MASK_IMG``, ``OUTPUT_IMG``.

Mask polarity: HumanEdit's own tools treat black (0) mask pixels as the edit region, so that is the
default here (``black_is_edit``). Check a few rows of your copy (``record.load_mask()`` returns the
canonical white = edit mask: it should cover the edited object) and pass ``mask_polarity`` to
override.
"""

from __future__ import annotations

from pathlib import Path

from .masks import MaskPolarity, check_polarity
from .parquet_source import RecordTable, cast_images_undecoded, check_columns, image_cell, open_parquet
from .record import EditRecord

HUMANEDIT_COLUMNS: dict[str, str] = {
    "id": "IMAGE_ID",
    "source": "INPUT_IMG",
    "target": "OUTPUT_IMG",
    "instruction": "EDITING_INSTRUCTION",
    "mask": "MASK_IMG",
    "edit_type": "EDITING_TYPE",
}
HUMANEDIT_IMAGE_COLUMNS = ("INPUT_IMG", "OUTPUT_IMG", "MASK_IMG")
HUMANEDIT_DEFAULT_POLARITY: MaskPolarity = "black_is_edit"
# Passed through into `EditRecord.extra` when present.
HUMANEDIT_EXTRA_COLUMNS = ("CORE", "MASK", "OUTPUT_DESCRIPTION")


def load_humanedit(
    path: str | Path,
    *,
    mask_polarity: MaskPolarity = HUMANEDIT_DEFAULT_POLARITY,
    cache_dir: str | Path | None = None,
) -> RecordTable:
    """All HumanEdit rows of a local copy as `EditRecord`s (random access, lazily decoded)."""
    check_polarity(mask_polarity)
    ds = open_parquet(path, cache_dir=cache_dir)
    required = {k: v for k, v in HUMANEDIT_COLUMNS.items() if k != "mask"}
    check_columns(ds.column_names, required, dataset_name=f"HumanEdit at {path}")
    ds = cast_images_undecoded(ds, HUMANEDIT_IMAGE_COLUMNS)
    has_mask = "MASK_IMG" in ds.column_names

    def to_record(row: dict) -> EditRecord:
        return EditRecord(
            id=str(row["IMAGE_ID"]),
            instruction=str(row["EDITING_INSTRUCTION"]).strip(),
            source=image_cell(row["INPUT_IMG"]),
            target=image_cell(row["OUTPUT_IMG"]),
            mask=image_cell(row["MASK_IMG"]) if has_mask else None,
            edit_type=row.get("EDITING_TYPE"),
            mask_polarity=mask_polarity,
            extra={k: row[k] for k in HUMANEDIT_EXTRA_COLUMNS if k in row},
        )

    return RecordTable(ds, to_record, name="HumanEdit", id_column="IMAGE_ID")
