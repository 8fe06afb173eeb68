"""What conditions each edit: the prompt (refined or raw) and the image embedding (v_insight, the
source's CLIP embedding, or none). One `MethodSpec` names a row of the results table.

The presets are the method, its two ablations of Table 2 (#1 refined prompt only, #2 v_insight
only) and the two baselines the harness can run itself (plain SD1.5 with the raw instruction, and the
standard IP-Adapter fed the source image's CLIP embedding). The prompts and ``v_insight`` may come
from two different MLLMs (checkpoints): Table 2's #3-#5 pair independently and jointly trained ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mindedit_core.mllm.protocol import PassRequest

PROMPT_SOURCES: tuple[str, ...] = ("refined", "raw")
IMAGE_EMBED_SOURCES: tuple[str, ...] = ("insight", "source_clip", "none")


@dataclass(frozen=True)
class MethodSpec:
    """A method = where the prompt comes from + where the IP-Adapter embedding comes from."""

    name: str
    prompt: str = "refined"
    image_embed: str = "insight"

    def __post_init__(self) -> None:
        if self.prompt not in PROMPT_SOURCES:
            raise ValueError(f"prompt source {self.prompt!r}: expected one of {PROMPT_SOURCES}.")
        if self.image_embed not in IMAGE_EMBED_SOURCES:
            raise ValueError(
                f"image embed source {self.image_embed!r}: expected one of {IMAGE_EMBED_SOURCES}."
            )

    @property
    def needs_mllm(self) -> bool:
        return self.image_embed == "insight"

    @property
    def needs_adapter(self) -> bool:
        return self.image_embed != "none"

    def to_json(self) -> dict:
        return asdict(self)


PRESETS: dict[str, MethodSpec] = {
    "mind_edit": MethodSpec("mind_edit", "refined", "insight"),
    "refined_only": MethodSpec("refined_only", "refined", "none"),  # Table 2, #1
    "insight_only": MethodSpec("insight_only", "raw", "insight"),  # Table 2, #2
    "sd15": MethodSpec("sd15", "raw", "none"),  # baseline: plain SD1.5, raw instruction
    "ipadapter": MethodSpec("ipadapter", "raw", "source_clip"),  # baseline: standard IP-Adapter
}


@dataclass
class Conditioning:
    """The inputs of one diffusion call, and where they came from (logged in the manifest)."""

    positive: str
    negative: str
    image_embeds: torch.Tensor | None
    prompt_origin: str  # "mllm" | "record" | "instruction"
    warning: str | None = None
    fell_back: bool = (
        False  # refined prompts were asked for, the MLLM's answer was unreadable: raw instruction
    )
    # The IP-Adapter's unconditional input: a plus checkpoint's stored blank-image embedding, the
    # encoder's blank-image output for the plus baseline, or None (zeros).
    negative_embeds: torch.Tensor | None = None


class SourceClipEncoder:
    """The standard IP-Adapter's input: the source image through a local CLIP vision encoder.

    Plain adapters take ``image_embeds`` ``[1, D]``; plus adapters the penultimate hidden states.
    """

    def __init__(self, folder: str | Path, kind: str = "plain", device: str = "cpu") -> None:
        from transformers import CLIPVisionModelWithProjection

        from .metrics.clip_image import ClipPreprocess

        path = Path(folder)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"CLIP vision encoder folder {path} has no config.json. The IP-Adapter baseline needs the "
                "encoder the adapter was trained with (OpenCLIP ViT-H/14 for SD1.5 adapters) in Hugging "
                "Face layout, passed as --image-encoder DIR."
            )
        self.model = CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True)
        self.model.to(device).eval()
        self.preprocess = ClipPreprocess.from_folder(path, self.model.config.image_size)
        self.kind = kind
        self.device = device

    @torch.no_grad()
    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = self.preprocess(image).unsqueeze(0).to(self.device, self.model.dtype)
        if self.kind == "plus":
            out = self.model(pixel_values=pixels, output_hidden_states=True)
            return out.hidden_states[-2].float().cpu()
        return self.model(pixel_values=pixels).image_embeds.float().cpu()

    def blank(self) -> torch.Tensor | None:
        """The plus adapter's unconditional input (the encoder's output for an all-zero ``pixel_values``,
        as in `training.build_targets.encode_blank`; computed once); None for plain (trained with zeros)."""
        from ..build_targets import encode_blank

        if not hasattr(self, "_blank"):
            self._blank = encode_blank(self.model, [self.kind], int(self.model.config.image_size)).get("plus")
        return self._blank


class Conditioner:
    """Builds the `Conditioning` of a record for one `MethodSpec`.

    `mllm` is any `mindedit_core.mllm.MindEditMLLMLike` (the local `MindEditMLLM`, a remote backend, a
    test fake), called through ``run(PassRequest(...))`` as the nodes call it: it writes the refined
    prompts and, unless `insight_mllm` is given, also gives ``v_insight`` (one pass). `insight_mllm` is a second MLLM whose vision head gives
    ``v_insight`` (Table 2 #3-#5: prompts and ``v_insight`` from different checkpoints). With
    ``prompt="refined"`` and no MLLM, the record's own refined prompts are used (e.g. a JSONL with
    ``positive``/``negative``), else it is an error.
    """

    def __init__(
        self,
        method: MethodSpec,
        *,
        mllm: Any | None = None,
        insight_mllm: Any | None = None,
        source_encoder: SourceClipEncoder | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self.insight_mllm = insight_mllm if insight_mllm is not None else mllm
        if method.needs_mllm and self.insight_mllm is None:
            raise ValueError(
                f"Method {method.name!r} uses v_insight, which needs the MLLM: pass --mllm DIR and --checkpoint DIR."
            )
        if method.image_embed == "source_clip" and source_encoder is None:
            raise ValueError(
                f"Method {method.name!r} feeds the source's CLIP embedding: pass --image-encoder DIR."
            )
        self.method = method
        self.mllm = mllm
        self.source_encoder = source_encoder
        self.generate_kwargs = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}

    def __call__(self, record, source: Image.Image, mask: Image.Image | None, seed: int) -> Conditioning:
        method = self.method
        instruction = record.instruction
        embeds: torch.Tensor | None = None
        warning = None
        fell_back = False
        if method.prompt == "refined":
            if self.mllm is not None:
                one_pass = method.image_embed == "insight" and self.insight_mllm is self.mllm
                request = PassRequest(
                    source,
                    instruction,
                    mask=mask,
                    outputs="both" if one_pass else "prompts",
                    options=self.mllm.default_options.with_overrides(seed=seed, **self.generate_kwargs),
                )
                result = self.mllm.run(request)
                refined, embeds = result.refined, result.v_insight
                positive, negative, origin = refined.positive, refined.negative, "mllm"
                warning = getattr(refined, "warning", None)
                fell_back = not getattr(refined, "parsed", True)
            elif getattr(record, "refined_positive", None) is not None:
                positive, negative, origin = record.refined_positive, record.refined_negative or "", "record"
            else:
                raise ValueError(
                    f"Record {record.id!r}: method {method.name!r} needs refined prompts but no MLLM was given "
                    "and the record has none. Pass --mllm DIR (and --checkpoint DIR), or use --prompt raw."
                )
        else:
            positive, negative, origin = instruction, "", "instruction"
        if method.image_embed == "insight" and embeds is None:
            request = PassRequest(source, instruction, mask=mask, outputs="embeds")
            embeds = self.insight_mllm.run(request).v_insight
        elif method.image_embed == "source_clip":
            embeds = self.source_encoder(source)
        negative_embeds = None
        if embeds is not None:
            embeds = embeds.detach().float().cpu()
            if method.image_embed == "insight":
                negative_embeds = self.insight_mllm.negative_embeds  # MindEditMLLMLike
            elif method.image_embed == "source_clip":
                negative_embeds = self.source_encoder.blank()
        return Conditioning(positive, negative, embeds, origin, warning, fell_back, negative_embeds)
