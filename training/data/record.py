"""One editing example, whatever dataset it came from.

Images stay encoded (bytes or a file path) until they are needed: HumanEdit is ~16 GB of 1024 px
PNGs, so decoding eagerly would not fit in memory. `image_bytes` gives the exact encoded bytes, which
is what the refinement cache hashes (a re-encoded image would change the key).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from .masks import MaskPolarity, normalise_mask

# Encoded image bytes, or a path to an image file.
ImageData = bytes | str | Path


def image_bytes(data: ImageData) -> bytes:
    """The encoded bytes of an image given as bytes or as a path."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"Image file {path} does not exist (referenced by a dataset record).")
    return path.read_bytes()


def open_image(data: ImageData, *, mode: str = "RGB") -> Image.Image:
    """Decode an image (bytes or path) and convert it to ``mode``."""
    raw = image_bytes(data)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return img.convert(mode)
    except Exception as exc:  # PIL raises several types for corrupt data
        where = f"file {data}" if not isinstance(data, (bytes, bytearray)) else f"{len(raw)} bytes"
        raise ValueError(f"Could not decode image ({where}): {exc}") from exc


@dataclass(frozen=True)
class EditRecord:
    """An editing example: source image + vague instruction -> target image (+ optional mask).

    ``mask_polarity`` says how ``mask`` is encoded; `load_mask` always returns the canonical form
    (white = edit region). ``refined_positive``/``refined_negative`` are the refined-prompt targets
    filled by `training.refine_data` (None until then).
    """

    id: str
    instruction: str
    source: ImageData
    target: ImageData | None = None
    mask: ImageData | None = None
    edit_type: str | None = None
    refined_positive: str | None = None
    refined_negative: str | None = None
    mask_polarity: MaskPolarity = "white_is_edit"
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_refined(self) -> bool:
        return self.refined_positive is not None

    def load_source(self) -> Image.Image:
        return open_image(self.source)

    def load_target(self) -> Image.Image:
        if self.target is None:
            raise ValueError(f"Record {self.id!r} has no target image (needed for CLIP targets).")
        return open_image(self.target)

    def load_mask(self) -> Image.Image | None:
        """The mask as an ``L`` image with 255 = edit region, or None when the record has none."""
        if self.mask is None:
            return None
        return normalise_mask(open_image(self.mask, mode="L"), self.mask_polarity)

    def with_refined(self, positive: str, negative: str) -> EditRecord:
        return replace(self, refined_positive=positive, refined_negative=negative)
