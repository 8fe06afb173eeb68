"""What the MLLM sees for a record: the prepared image and whether the prompt mentions a mask.

Used by data construction (`refine_data`): the refined prompts are written for exactly the image the
fine-tuned model is trained on and later sees at inference (`mindedit_core.images.prepare_mllm_image`:
RGB, longer side <= ``max_side``, mask outlined), which training's collate and inference prepare
through `MLLMFamily.encode_prompt` from the same function.
"""

from __future__ import annotations

from PIL import Image

from mindedit_core.images import mask_is_empty, prepare_mllm_image

from .data.record import EditRecord


def record_image(record: EditRecord, *, use_mask: bool, max_side: int | None) -> tuple[Image.Image, bool]:
    """``(image, with_mask)`` for ``record``; ``with_mask`` is False when masks are off or empty."""
    mask = record.load_mask() if use_mask else None
    with_mask = mask is not None and not mask_is_empty(mask)
    image = prepare_mllm_image(record.load_source(), mask=mask if with_mask else None, max_side=max_side)
    return image, with_mask
