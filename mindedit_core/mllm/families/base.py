"""`MLLMFamily`: everything that differs between the vision-language models MIND-Edit can sit on.

One family object per module holds the family's facts: transformers class and first release, how the
chat messages carry the image and the mask outline, the image budget, the prompt encoding (one
function, `MLLMFamily.encode_prompt`, used by inference and by training's collate), where the
decoder layers are, the text model's width and depth, the default layer m, the LoRA targets, the
end-of-answer token, display names and the released checkpoints (the download catalogue and the
docs' tables are built from them). Everything else (prompt and parser, vision head, the one pass,
Cancel and progress, memory management, dtype / attention / 4-8-bit options, training, the
checkpoint manifest) is one generic implementation that reads these facts. A family is chosen by
``config.json``'s ``model_type``.

A new family is one module with one `MLLMFamily` (plus its fixture and the tests' family list); a
family whose processor or batching differs from the defaults overrides the method concerned in a
subclass of `MLLMFamily`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...images import mask_is_empty, prepare_mllm_image
from ...prompting import build_messages

# The pack's own floor (module layout and adapter format, see docs/MODELS.md); a family may need more.
PACK_MIN_TRANSFORMERS = "4.52.0"

# Layer m: the paper reads layer 21 of LLaVA-OneVision-7B's 28, i.e. 3/4 of the depth.
PAPER_LAYER_FRACTION = (21, 28)

# LoRA on the language model's attention and MLP projections (the names of Qwen2/3-style decoders).
DEFAULT_LORA_MODULES = r"(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"
# Where those decoder layers sit: ``...language_model.layers.N`` (transformers >= 4.52) or the older
# ``language_model.model.layers.N``; the vision towers (``vision_tower.`` / ``visual.``) never match.
DEFAULT_LORA_LAYERS = r"language_model\.(?:model\.)?layers"

IMAGE_BATCHINGS = ("padded_tiles", "flat_patches", "stacked")


class UnsupportedTransformersError(ImportError):
    """The installed transformers does not ship the family's model class."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def about(count: int) -> str:
    """A token count rounded to two significant digits, for texts: 1485 -> "~1,500"."""
    if count < 100:
        return f"~{count}"
    digits = len(str(count)) - 2
    return f"~{round(count, -digits):,}"


@dataclass(frozen=True)
class Release:
    """One released checkpoint of a family: a row of the download catalogue and of docs/MODELS.md.
    ``num_layers`` / ``hidden_size``: the text model's (public ``config.json``); sizes and VRAM as
    texts (``"7.5 GB"``, ``"~3 GB"``; VRAM is an estimate at the default image budget)."""

    key: str  # the downloader's --what name
    repo: str
    label: str  # the size as the model's name says it: "0.5B", "7B"
    params: str  # the counted parameters: "0.89 B"
    hidden_size: int
    num_layers: int
    download_size: str
    vram_bf16: str
    vram_4bit: str
    note: str = ""  # e.g. "the paper's MLLM"
    # the deepest layer generate computes for every prompt position, when not the last (KV sharing)
    readable_layers: int | None = None


@dataclass(frozen=True)
class MLLMFamily:
    """What differs per family.

    ``image_after_text``: the user turn carries the instruction before the image, so (under causal
    attention) the image tokens' hidden states see the instruction; only for chat templates that keep
    the content order (LLaVA-OneVision's renders images first anyway). ``image_batching``: how a
    batch of images is laid out for the model (``"padded_tiles"``: a ``[B, tiles, C, H, W]`` tensor
    padded to the most tiles, the other image keys stacked; ``"flat_patches"``: every image key's rows
    concatenated, e.g. patches with a per-image grid; ``"stacked"``: every image tensor has the same
    shape whatever the image, so a batch stacks them). ``token_aligned_keys``: processor outputs with
    one value per token that the model needs besides the ids (Qwen's ``mm_token_type_ids`` for its
    multi-axis RoPE, returned by transformers 5.x). ``image_tokens``: visual tokens of a square image
    at a few sides (measured with the real processor settings, BENCHMARKS.md); the nodes' image-budget
    tooltip and docs/MODELS.md read them. ``end_of_answer``: the chat template's end-of-turn token, which
    ends the supervised answer in training (the tokenizer's eos is used if it is not one token).
    ``turn_start``: the token that opens every chat turn (a ``user_turn`` vision head pools from the
    user's). ``chat_template_options``: keyword arguments for ``apply_chat_template`` (e.g. thinking off for
    models that think by default). ``folder_note``: extra advice for users whose folder has the wrong
    layout.
    """

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
    releases: tuple[Release, ...]
    image_tokens: tuple[tuple[int, int], ...]
    tokens_per_image_note: str
    image_after_text: bool = False
    token_aligned_keys: tuple[str, ...] = ()
    end_of_answer: str = "<|im_end|>"
    turn_start: str = "<|im_start|>"
    lora_modules: str = DEFAULT_LORA_MODULES
    lora_layers: str = DEFAULT_LORA_LAYERS
    layer_fraction: tuple[int, int] = PAPER_LAYER_FRACTION
    chat_template_options: tuple[tuple[str, Any], ...] = ()
    image_tokens_follow_side: bool = True
    kv_shared_layers_key: str = ""
    folder_note: str = ""

    # -- transformers --------------------------------------------------------------------------------
    @property
    def min_transformers(self) -> str:
        """The lowest transformers this pack supports for the family."""
        return max(self.first_transformers, PACK_MIN_TRANSFORMERS, key=_version_tuple)

    @property
    def transformers_note(self) -> str:
        """``"transformers >= 4.57"`` when the family needs more than the pack's floor, else ``""``."""
        if _version_tuple(self.min_transformers) <= _version_tuple(PACK_MIN_TRANSFORMERS):
            return ""
        return f"transformers >= {self.min_transformers.removesuffix('.0')}"

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

    # -- the text model --------------------------------------------------------------------------
    def text_dims(self, model_or_config: Any) -> tuple[int, int]:
        """``(hidden_size, num_layers)`` of the language model, from a model or its config."""
        config = getattr(model_or_config, "config", model_or_config)
        getter = getattr(config, "get_text_config", None)
        text = getter() if callable(getter) else getattr(config, "text_config", None)
        text = text if text is not None else config
        return int(text.hidden_size), int(text.num_hidden_layers)

    def default_layer(self, num_layers: int, *, readable: int | None = None) -> int:
        """Layer m when none is set: the family's relative depth (the paper's 21 of 28 by default), at
        most ``readable`` (`readable_layers`) when given."""
        from ...vision_head import default_layer

        layer = default_layer(num_layers, self.layer_fraction)
        return layer if readable is None else min(layer, readable)

    def readable_layers(self, model_or_config: Any) -> int:
        """How many leading decoder layers ``generate``'s prefill runs over every prompt position (the
        deepest usable layer m): all but the KV-sharing ones (``kv_shared_layers_key``: Gemma 4
        E2B/E4B run those on the last prompt position only)."""
        config = getattr(model_or_config, "config", model_or_config)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        shared = int(getattr(text, self.kv_shared_layers_key, 0) or 0) if self.kv_shared_layers_key else 0
        return int(text.num_hidden_layers) - shared

    def model_default_layer(self, model_or_config: Any) -> int:
        """Layer m of a loaded model (or its config) when none is set."""
        _, depth = self.text_dims(model_or_config)
        return self.default_layer(depth, readable=self.readable_layers(model_or_config))

    def check_layer(self, model_or_config: Any, layer: int) -> None:
        """Refuse a layer m that ``generate`` does not compute for every prompt position."""
        readable = self.readable_layers(model_or_config)
        if layer > readable:
            raise ValueError(
                f"Layer {layer} of this {self.display_name} model reuses earlier layers' keys and values, so "
                f"generation computes it for the last prompt token only: layer m must be in 1..{readable} "
                f"(default {self.model_default_layer(model_or_config)}). Use a head/checkpoint trained at such "
                "a layer."
            )

    def lora_target_regex(self, layers: list[int] | None = None) -> str:
        """The peft ``target_modules`` regex: the language model's projections in every decoder
        layer, or only in the given 0-based ``layers``."""
        which = r"\d+" if layers is None else "(?:" + "|".join(str(i) for i in layers) + ")"
        return rf".*{self.lora_layers}\.{which}\.{self.lora_modules}"

    # -- the prompt ------------------------------------------------------------------------------
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

    def encode_prompt(
        self,
        processor: Any,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        max_side: int | None,
        style: Any = None,
    ) -> dict:
        """The one prompt encoding, used by inference (`MindEditMLLM.prepare_inputs`) and by training
        (`training.collate`): the image prepared for the MLLM (RGB, longest side ``max_side``, the mask
        outlined unless it is empty), the family's chat messages with the generation prompt, and the
        processor's output for one image (CPU tensors with a batch dimension of 1). ``style``: the
        output style (None: SD tags)."""
        with_mask = not mask_is_empty(mask)
        pil = prepare_mllm_image(image, mask=mask if with_mask else None, max_side=max_side)
        messages = self.messages(instruction, with_mask=with_mask, style=style)
        text = self.render_prompt(processor, messages)
        return dict(processor(images=pil, text=text, return_tensors="pt"))

    def render_prompt(self, processor: Any, messages: list[dict]) -> str:
        """The prompt text for ``messages``: the chat template with the generation prompt appended and
        the family's ``chat_template_options``."""
        return processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **dict(self.chat_template_options)
        )

    # -- image tensors for training batches ------------------------------------------------------
    def per_sample_image_inputs(self, encoded: dict) -> dict:
        """One sample's image tensors from a processor output for a single image (batch dim dropped
        where the model expects a leading batch dim, kept as-is where images are concatenated)."""
        out = {}
        for key in self.image_input_keys:
            value = encoded[key]
            out[key] = value if self.image_batching == "flat_patches" else value[0]
        return out

    def batch_image_inputs(self, samples: list[dict]) -> dict:
        """The image tensors of several samples (`per_sample_image_inputs`), batched the family's way."""
        import torch

        if self.image_batching == "flat_patches":
            return {key: torch.cat([s[key] for s in samples]) for key in self.image_input_keys}
        if self.image_batching == "stacked":
            return {key: torch.stack([s[key] for s in samples]) for key in self.image_input_keys}
        if self.image_batching != "padded_tiles":
            raise ValueError(f"Unknown image batching {self.image_batching!r}.")
        tiles_key, *other_keys = self.image_input_keys
        most = max(s[tiles_key].shape[0] for s in samples)
        first = samples[0][tiles_key]
        tiles = torch.zeros((len(samples), most, *first.shape[1:]), dtype=first.dtype)
        for i, s in enumerate(samples):
            tiles[i, : s[tiles_key].shape[0]] = s[tiles_key]
        out = {tiles_key: tiles}
        for key in other_keys:
            out[key] = torch.stack([torch.as_tensor(s[key]) for s in samples])
        return out

    # -- texts -----------------------------------------------------------------------------------
    def release_name(self, release: Release) -> str:
        """A release's display name: ``"LLaVA-OneVision 0.5B"``."""
        return f"{self.display_name} {release.label}"

    def release_description(self, release: Release) -> str:
        """The download catalogue's line for a release."""
        extra = "; ".join(x for x in (release.note, self.transformers_note) if x)
        return (
            f"{self.release_name(release)}{f' ({extra})' if extra else ''}; {release.vram_bf16} VRAM in "
            f"bf16, {release.vram_4bit} in 4-bit (est.); layer m "
            f"{self.default_layer(release.num_layers, readable=release.readable_layers)} "
            f"of {release.num_layers}"
        )

    def tokens_at(self, side: int) -> int | None:
        """Visual tokens of a square image of ``side`` px (None when not measured)."""
        return dict(self.image_tokens).get(side)


def check_family(family: MLLMFamily) -> list[str]:
    """What a family object lacks or gets wrong (empty when complete): the facts every family must
    provide. The family tests run it for every registered family."""
    problems = []
    for name in ("model_type", "display_name", "model_class", "processor_class", "example_repo"):
        if not getattr(family, name):
            problems.append(f"{name} is empty")
    if _version_tuple(family.first_transformers) < (4,):
        problems.append(f"first_transformers {family.first_transformers!r} is not a release number")
    if family.image_batching not in IMAGE_BATCHINGS:
        problems.append(f"image_batching {family.image_batching!r} is not one of {IMAGE_BATCHINGS}")
    for name in ("image_input_keys", "vision_modules", "decoder_layer_paths", "releases"):
        if not getattr(family, name):
            problems.append(f"{name} is empty")
    if "pixel_values" not in family.image_input_keys:
        problems.append("image_input_keys lacks pixel_values")
    if family.example_repo not in {r.repo for r in family.releases}:
        problems.append(f"example_repo {family.example_repo!r} is not one of its releases")
    for side in (384, 1024):
        if family.tokens_at(side) is None:
            problems.append(f"image_tokens has no count for {side} px")
    if not family.end_of_answer or not family.turn_start or not family.tokens_per_image_note:
        problems.append("end_of_answer, turn_start or tokens_per_image_note is empty")
    try:
        re.compile(family.lora_target_regex())
    except re.error as exc:
        problems.append(f"the LoRA target regex does not compile: {exc}")
    for release in family.releases:
        if (
            not 1
            <= family.default_layer(release.num_layers, readable=release.readable_layers)
            <= release.num_layers
        ):
            problems.append(f"default layer m is outside {release.key}'s {release.num_layers} layers")
    return problems
