"""The diffusers side of batch editing (SD1.5 or SDXL): img2img for mask-free edits, inpainting for masked ones.

The family is read from the model's ``model_index.json`` (a folder, or the ``--single-file-config``
folder of a single file): ``StableDiffusionXL*`` pipelines for SDXL, ``StableDiffusion*`` otherwise.
The same `v_insight` drives both, through the family's ViT-H IP-Adapter (``ip-adapter_sd15`` /
``ip-adapter_sdxl_vit-h``; plus variants likewise).

Choices (written into every run's ``run.json`` and docs/EVALUATION.md):

- Mask-free records: `StableDiffusionImg2ImgPipeline` at ``strength`` (default 0.75).
- Masked records with a plain SD1.5 checkpoint (4-channel UNet): `StableDiffusionInpaintPipeline`,
  which for a 4-channel UNet re-noises the source latents and blends them outside the mask at every
  step (the "legacy" inpainting), then the decoded result is composited in pixel space with the hard
  binary mask, so every pixel outside the mask equals the source exactly (the VAE alone would change
  them slightly). A real inpainting checkpoint (9-channel UNet) goes through the same pipeline.
- `v_insight` reaches the UNet through one of two equivalent back ends (``ipadapter_backend``):
  ``mindedit`` (default): our IP-Adapter processors (`mindedit_core.ipadapter.diffusers_processor`),
  i.e. the decoupled-attention code the ComfyUI nodes run; ``diffusers``: diffusers' own IP-Adapter
  processors fed through the pipeline argument ``ip_adapter_image_embeds``. Either way the adapter
  file is read by `mindedit_core.ipadapter.read_adapter_file` (every layout the nodes accept), the
  unconditional embedding is zeros (diffusers' convention for plain adapters), and an item without an
  image embedding gets no image term (scale 0 / no tokens: the text attention output unchanged).
  tests/test_eval_ipadapter_parity.py shows both back ends give the same UNet output and latents.
- Images are resized to ``resolution`` x ``resolution`` (bicubic; masks nearest) before editing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mindedit_core.embeds import unconditional_embeds

MASKED_PIPELINE = "StableDiffusionInpaintPipeline (4-channel UNet: latent blending) + pixel compositing"
MASK_FREE_PIPELINE = "StableDiffusionImg2ImgPipeline"
SDXL_MASKED_PIPELINE = (
    "StableDiffusionXLInpaintPipeline (4-channel UNet: latent blending) + pixel compositing"
)
SDXL_MASK_FREE_PIPELINE = "StableDiffusionXLImg2ImgPipeline"
IPADAPTER_BACKENDS: tuple[str, ...] = ("mindedit", "diffusers")


def model_family(settings: DiffusionSettings) -> str:
    """``"sdxl"`` when the model's ``model_index.json`` names an SDXL pipeline, else ``"sd15"``."""
    import json

    model = Path(settings.model)
    folder = model if model.is_dir() else Path(settings.single_file_config or "")
    index = folder / "model_index.json"
    if not index.is_file():
        return "sd15"
    name = json.loads(index.read_text()).get("_class_name", "")
    return "sdxl" if name.startswith("StableDiffusionXL") else "sd15"


class PipelineLoadError(FileNotFoundError):
    """The SD1.5 model (or its config) cannot be loaded from local files; the message says what to pass."""


@dataclass
class DiffusionSettings:
    """Everything that determines the diffusion half of an edit (recorded in ``run.json``)."""

    model: str
    single_file_config: str | None = None
    ipadapter: str | None = None
    ipadapter_scale: float = 1.0
    ipadapter_backend: str = "mindedit"
    steps: int = 50
    guidance_scale: float = 7.5
    strength: float = 0.75
    inpaint_strength: float = 1.0
    resolution: int = 512
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.ipadapter_backend not in IPADAPTER_BACKENDS:
            raise ValueError(
                f"ipadapter_backend {self.ipadapter_backend!r}: expected one of {IPADAPTER_BACKENDS}."
            )

    def to_json(self) -> dict:
        return asdict(self)


def load_img2img(settings: DiffusionSettings):
    """The img2img pipeline (SD1.5 or SDXL, `model_family`) from a diffusers folder, or from a single
    file + a local `config` folder."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    dtype = getattr(torch, settings.dtype)
    model = Path(settings.model)
    if model_family(settings) == "sdxl":
        StableDiffusionImg2ImgPipeline = StableDiffusionXLImg2ImgPipeline  # noqa: N806 - same calls below
        common = {"torch_dtype": dtype}
    else:
        common = {"safety_checker": None, "requires_safety_checker": False, "torch_dtype": dtype}
    if model.is_dir():
        if not (model / "model_index.json").is_file():
            raise PipelineLoadError(
                f"{model} is a folder without model_index.json: pass a Stable Diffusion 1.5 or SDXL folder in "
                "diffusers layout (e.g. `hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir "
                "DIR`, or stabilityai/stable-diffusion-xl-base-1.0) or a single .safetensors checkpoint with "
                "--single-file-config."
            )
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(str(model), local_files_only=True, **common)
    elif model.is_file():
        if not settings.single_file_config:
            raise PipelineLoadError(
                f"{model} is a single-file checkpoint: diffusers would look its config up on the hub, which "
                "is not done here. Pass --single-file-config DIR, a local SD1.5 (or, for an SDXL file, SDXL) "
                "folder in diffusers layout (only its JSON configs and tokenizers are read)."
            )
        pipe = StableDiffusionImg2ImgPipeline.from_single_file(
            str(model), config=str(settings.single_file_config), local_files_only=True, **common
        )
    else:
        raise PipelineLoadError(
            f"SD1.5/SDXL model not found: {model} (a diffusers folder or a .safetensors file)."
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(settings.device)


def attach_ipadapter(pipe, adapter_file: str | Path) -> dict:
    """Load an IP-Adapter file into the pipeline's UNet (diffusers processors); returns its description."""
    from mindedit_core.ipadapter import build_ipadapter, read_adapter_file

    sections = read_adapter_file(adapter_file)
    info = build_ipadapter(sections, source=str(adapter_file)).info
    pipe.load_ip_adapter(
        {"image_proj": sections["image_proj"], "ip_adapter": sections["ip_adapter"]},
        subfolder="",
        weight_name=None,
        image_encoder_folder=None,
    )
    return {"kind": info.kind, "embed": info.embed_spec.describe(), "file": str(adapter_file)}


def to_diffusers_embeds(
    embeds: torch.Tensor, kind: str, negative: torch.Tensor | None = None
) -> torch.Tensor:
    """One sample's embedding (``[1,D]`` plain / ``[1,T,D]`` plus) -> diffusers' ``[2, 1, ...]``
    (the unconditional half first: ``negative`` or zeros, see `unconditional_embeds`; then the embedding)."""
    if kind == "plain" and embeds.dim() == 1:
        embeds = embeds.unsqueeze(0)
    if kind == "plus" and embeds.dim() == 2:
        embeds = embeds.unsqueeze(0)
    single = embeds[:1]
    uncond = unconditional_embeds(single, None if negative is None else negative.to(single.device))
    return torch.cat([uncond.unsqueeze(1), single.unsqueeze(1)], dim=0)


def composite(result: Image.Image, source: Image.Image, mask: Image.Image) -> Image.Image:
    """Pixels inside the (white) mask from `result`, all others from `source`, exactly."""
    keep = np.asarray(mask.convert("L")) >= 128
    out = np.where(keep[..., None], np.asarray(result.convert("RGB")), np.asarray(source.convert("RGB")))
    return Image.fromarray(out.astype(np.uint8), mode="RGB")


class EditPipelines:
    """img2img + inpainting sharing one set of SD1.5 or SDXL components (and one IP-Adapter)."""

    def __init__(self, settings: DiffusionSettings) -> None:
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

        self.settings = settings
        self.family = model_family(settings)
        self.img2img = load_img2img(settings)
        components = dict(self.img2img.components)
        if self.family == "sdxl":
            self.inpaint = StableDiffusionXLInpaintPipeline(**components)
        else:
            self.inpaint = StableDiffusionInpaintPipeline(**components, requires_safety_checker=False)
        self.inpaint.set_progress_bar_config(disable=True)
        self.adapter: dict | None = None
        self._ours = None  # (IPAdapter, IPAdapterRunState) for the mindedit back end
        if settings.ipadapter:
            self._check_family(settings.ipadapter)
            if settings.ipadapter_backend == "diffusers":
                self.adapter = attach_ipadapter(self.img2img, settings.ipadapter)
            else:
                self.adapter = self._attach_ours(settings.ipadapter)

    def _check_family(self, adapter_file: str) -> None:
        """An adapter of the other family is refused here, naming both (before any weight is loaded)."""
        from mindedit_core.ipadapter import IPAdapterModelMismatch, read_adapter_file
        from mindedit_core.ipadapter.weights import FIX_HINT, inspect_sections

        info = inspect_sections(read_adapter_file(adapter_file), source=str(adapter_file))
        if info.family != self.family:
            names = {"sd15": "SD1.5", "sdxl": "SDXL"}
            raise IPAdapterModelMismatch(
                f"IP-Adapter {adapter_file} is an {names[info.family]} adapter, but the model {self.settings.model} "
                f"is {names[self.family]}: use an adapter of the model's family. {FIX_HINT}"
            )

    def _attach_ours(self, adapter_file: str) -> dict:
        from mindedit_core.ipadapter import load_ipadapter
        from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors

        adapter = load_ipadapter(adapter_file).to(self.settings.device)
        state = install_ipadapter_processors(self.img2img.unet, adapter)
        self._ours = (adapter, state)
        return {"kind": adapter.kind, "embed": adapter.embed_spec.describe(), "file": str(adapter_file)}

    def describe(self) -> dict:
        sdxl = self.family == "sdxl"
        return {
            "family": self.family,
            "mask_free": SDXL_MASK_FREE_PIPELINE if sdxl else MASK_FREE_PIPELINE,
            "masked": SDXL_MASKED_PIPELINE if sdxl else MASKED_PIPELINE,
            "unet_in_channels": int(self.img2img.unet.config.in_channels),
            "scheduler": type(self.img2img.scheduler).__name__,
            "ipadapter": self.adapter,
            "ipadapter_backend": self.settings.ipadapter_backend if self.adapter else None,
        }

    def _prepare(self, image: Image.Image, mask: Image.Image | None):
        size = (self.settings.resolution, self.settings.resolution)
        image = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        if mask is not None:
            mask = mask.convert("L").resize(size, Image.Resampling.NEAREST)
        return image, mask

    def edit(
        self,
        source: Image.Image,
        positive: str,
        negative: str = "",
        *,
        mask: Image.Image | None = None,
        image_embeds: torch.Tensor | None = None,
        seed: int = 0,
        negative_embeds: torch.Tensor | None = None,
    ) -> Image.Image:
        """One edit. `mask` (white = edit) selects inpainting; `image_embeds` feeds the IP-Adapter, with
        `negative_embeds` (a plus checkpoint's stored blank-image embedding) or zeros as its unconditional."""
        source, mask = self._prepare(source, mask)
        result = self._run(
            source, mask, positive, negative, image_embeds, seed, "pil", negative_embeds
        ).images[0]
        if mask is None:
            return result
        return composite(result.resize(source.size), source, mask)

    def edit_latents(
        self,
        source: Image.Image,
        positive: str,
        negative: str = "",
        *,
        mask: Image.Image | None = None,
        image_embeds: torch.Tensor | None = None,
        seed: int = 0,
        negative_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The final latents of the same call as `edit` (no VAE decode): for parity checks."""
        source, mask = self._prepare(source, mask)
        return self._run(
            source, mask, positive, negative, image_embeds, seed, "latent", negative_embeds
        ).images

    @torch.no_grad()
    def _run(self, source, mask, positive, negative, image_embeds, seed, output_type, negative_embeds=None):
        s = self.settings
        kwargs: dict = {
            "prompt": positive,
            "negative_prompt": negative or None,
            "num_inference_steps": s.steps,
            "guidance_scale": s.guidance_scale,
            "generator": torch.Generator(device="cpu").manual_seed(int(seed)),
            "output_type": output_type,
        }
        if image_embeds is not None and self.adapter is None:
            raise ValueError(
                "An image embedding (v_insight or the source's CLIP embedding) was given but no IP-Adapter "
                "is loaded: pass --ipadapter FILE."
            )
        if self._ours is not None:
            adapter, state = self._ours
            if image_embeds is None:
                state.tokens = None
            else:
                embeds = image_embeds.to(s.device)
                negative_embeds = None if negative_embeds is None else negative_embeds.to(s.device)
                state.set_embeds(adapter, embeds, negative_embeds, cfg=s.guidance_scale > 1.0)
            state.weight = s.ipadapter_scale
        elif self.adapter is not None:
            kind = self.adapter["kind"]
            if image_embeds is None:
                width = self._adapter_input_width()
                image_embeds = torch.zeros((1, width) if kind == "plain" else (1, 1, width))
                self.img2img.set_ip_adapter_scale(0.0)
            else:
                self.img2img.set_ip_adapter_scale(s.ipadapter_scale)
            dtype = getattr(torch, s.dtype)
            kwargs["ip_adapter_image_embeds"] = [
                to_diffusers_embeds(image_embeds, kind, negative_embeds).to(s.device, dtype)
            ]
        if mask is None:
            return self.img2img(image=source, strength=s.strength, **kwargs)
        return self.inpaint(
            image=source,
            mask_image=mask,
            strength=s.inpaint_strength,
            height=s.resolution,
            width=s.resolution,
            **kwargs,
        )

    def _adapter_input_width(self) -> int:
        projection = self.img2img.unet.encoder_hid_proj.image_projection_layers[0]
        for name in ("image_embeds", "proj_in"):
            layer = getattr(projection, name, None)
            if layer is not None:
                return int(layer.in_features)
        raise RuntimeError(f"Unknown IP-Adapter projection type {type(projection).__name__}.")
