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
    RoPE, returned by transformers 5.x). ``image_batching="stacked"``: every image tensor has the same
    shape whatever the image (Gemma 4 pads its patches to the token budget), so a batch stacks them.
    ``end_of_answer``: the token that closes an assistant turn in the chat template (training appends
    it to the supervised answer so the model learns to stop). ``chat_template_options``: keyword
    arguments for ``apply_chat_template`` (e.g. thinking off for models that think by default).
    ``image_tokens_follow_side``: False where the processor resizes every image to a fixed token
    budget, so ``max_image_side`` bounds the detail, not the number of visual tokens.
    ``kv_shared_layers_key``: the text-config field counting trailing decoder layers that reuse earlier
    layers' keys and values (Gemma 4 E2B/E4B); ``generate`` runs those on the last prompt position
    only, so layer m must come before them (`readable_layers`)."""

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
    end_of_answer: str = "<|im_end|>"
    chat_template_options: tuple[tuple[str, Any], ...] = ()
    image_tokens_follow_side: bool = True
    kv_shared_layers_key: str = ""

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

    def messages(self, instruction: str, *, with_mask: bool) -> list[dict]:
        """The chat messages carrying the image (with its mask outline drawn in) and the request."""
        messages = build_messages(instruction, with_mask=with_mask)
        if self.image_after_text:
            for message in messages:
                content = message["content"]
                if isinstance(content, list):
                    message["content"] = [c for c in content if c.get("type") != "image"] + [
                        c for c in content if c.get("type") == "image"
                    ]
        return messages

    def readable_layers(self, config: Any) -> int:
        """How many leading decoder layers ``generate``'s prefill runs over every prompt position (the
        deepest usable layer m)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        shared = int(getattr(text, self.kv_shared_layers_key, 0) or 0) if self.kv_shared_layers_key else 0
        return text.num_hidden_layers - shared

    def default_layer(self, config: Any) -> int:
        """Layer m: 3/4 of the depth (the paper's 21 of 28), at most the deepest readable layer."""
        from ...vision_head import default_layer

        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return min(default_layer(text.num_hidden_layers), self.readable_layers(config))

    def check_layer(self, config: Any, layer: int) -> None:
        """Refuse a layer m that ``generate`` does not compute for every prompt position."""
        readable = self.readable_layers(config)
        if layer > readable:
            raise ValueError(
                f"Layer {layer} of this {self.display_name} model reuses earlier layers' keys and values, so "
                f"generation computes it for the last prompt token only: layer m must be in 1..{readable} "
                f"(default {self.default_layer(config)}). Use a head/checkpoint trained at such a layer."
            )

    def render_prompt(self, processor: Any, messages: list[dict]) -> str:
        """The prompt text for ``messages`` with the generation prompt appended (inference and training)."""
        return processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **dict(self.chat_template_options)
        )

    def per_sample_image_inputs(self, encoded: dict) -> dict:
        """One sample's image tensors from a processor output for a single image (batch dim dropped
        where the model expects a leading batch dim, kept as-is where images are concatenated)."""
        out = {}
        for key in self.image_input_keys:
            value = encoded[key]
            out[key] = value if self.image_batching == "flat_patches" else value[0]
        return out
