"""Datasets behind one record type: `EditRecord` (id, source, instruction, target, mask, edit type,
refined prompts). Readers: HumanEdit (local parquet), ComplexMultistepImageEditing (column map),
JSONL/folder; the HumanEdit split manifest lives in `split`."""

from .complex_multistep import COMPLEX_MULTISTEP_COLUMNS, load_complex_multistep
from .humanedit import HUMANEDIT_COLUMNS, HUMANEDIT_DEFAULT_POLARITY, load_humanedit
from .jsonl import load_jsonl
from .loader import DATASET_FORMATS, load_records, parse_column_map, record_ids
from .masks import MASK_POLARITIES, MaskPolarity, normalise_mask
from .record import EditRecord, ImageData, image_bytes, open_image
from .split import SplitManifest, ensure_manifest, make_split
