"""`MLLMFamily`: the few facts that differ between the vision-language models MIND-Edit can sit on.

Everything else (prompt and parser, vision head, the one pass, Cancel and progress, memory
management, dtype / attention / 4-8-bit options, LoRA on the language model, training, the
checkpoint manifest) is one generic implementation that reads these facts. A family is chosen by
``config.json``'s ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...prompting import build_messages

# The pack's own floor (module layout and adapter format, see docs/MODELS.md); a family may need more.
PACK_MIN_TRANSFORMERS = "4.52.0"


class UnsupportedTransformersError(ImportError):
    """The installed transformers does not ship the family's model class."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@dataclass(frozen=True)
class MLLMFamily:
    """What differs per family. ``image_after_text``: the user turn carries the instruction before
    the image, so (under causal attention) the image tokens' hidden states see the instruction; only
    for chat templates that keep the content order (LLaVA-OneVision's renders images first anyway).
    ``image_batching``: how a batch of images is laid out for the model (``"padded_tiles"``: a
    ``[B, tiles, C, H, W]`` tensor padded to the most tiles; ``"flat_patches"``: all images' patches
    concatenated, with a per-image grid). ``token_aligned_keys``: processor outputs with one value
    per token that the model needs besides the ids (Qwen's ``mm_token_type_ids`` for its multi-axis
    RoPE, returned by transformers 5.x)."""

    model_type: str
    display_name: str
    model_class: str
    processor_class: str
    first_transformers: str
    example_repo: str
    image_input_keys: tuple[str, ...]
    image_batching: str
    vision_modules: tuple[str, ...]
    decoder_layer_paths: tuple[str, ...]
    image_after_text: bool = False
    token_aligned_keys: tuple[str, ...] = ()
    tokens_per_image_note: str = ""

    @property
    def min_transformers(self) -> str:
        """The lowest transformers this pack supports for the family."""
        return max(self.first_transformers, PACK_MIN_TRANSFORMERS, key=_version_tuple)

    def model_class_object(self) -> Any:
        """transformers' own class for the family, or an error naming the release that first ships it."""
        import transformers

        cls = getattr(transformers, self.model_class, None)
        too_old = _version_tuple(transformers.__version__) < _version_tuple(self.min_transformers)
        if cls is None or too_old:
            raise UnsupportedTransformersError(
                f"{self.display_name} ({self.model_class}) needs transformers >= {self.min_transformers} "
                f"(the class first ships in {self.first_transformers}); this environment has "
                f"transformers {transformers.__version__}. Upgrade it in ComfyUI's Python: "
                "`python -m pip install -U transformers`."
            )
        return cls

    def messages(self, instruction: str, *, with_mask: bool, style: Any = None) -> list[dict]:
        """The chat messages carrying the image (with its mask outline drawn in) and the request, in
        ``style`` (a `PromptStyle` or its name; None: the SD tag style)."""
        messages = build_messages(instruction, with_mask=with_mask, style=style)
        if self.image_after_text:
            for message in messages:
                content = message["content"]
                if isinstance(content, list):
                    message["content"] = [c for c in content if c.get("type") != "image"] + [
                        c for c in content if c.get("type") == "image"
                    ]
        return messages

    def per_sample_image_inputs(self, encoded: dict) -> dict:
        """One sample's image tensors from a processor output for a single image (batch dim dropped
        where the model expects a leading batch dim, kept as-is where images are concatenated)."""
        out = {}
        for key in self.image_input_keys:
            value = encoded[key]
            out[key] = value[0] if self.image_batching == "padded_tiles" else value
        return out
