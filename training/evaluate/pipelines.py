"""The diffusers SD1.5 side of batch editing: img2img for mask-free edits, inpainting for masked ones.

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

MASKED_PIPELINE = "StableDiffusionInpaintPipeline (4-channel UNet: latent blending) + pixel compositing"
MASK_FREE_PIPELINE = "StableDiffusionImg2ImgPipeline"
IPADAPTER_BACKENDS: tuple[str, ...] = ("mindedit", "diffusers")


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
    """The img2img pipeline from a diffusers folder, or from a single file + a local `config` folder."""
    from diffusers import StableDiffusionImg2ImgPipeline

    dtype = getattr(torch, settings.dtype)
    model = Path(settings.model)
    common = {"safety_checker": None, "requires_safety_checker": False, "torch_dtype": dtype}
    if model.is_dir():
        if not (model / "model_index.json").is_file():
            raise PipelineLoadError(
                f"{model} is a folder without model_index.json: pass a Stable Diffusion 1.5 folder in "
                "diffusers layout (e.g. `hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir "
                "DIR`) or a single .safetensors checkpoint with --single-file-config."
            )
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(str(model), local_files_only=True, **common)
    elif model.is_file():
        if not settings.single_file_config:
            raise PipelineLoadError(
                f"{model} is a single-file checkpoint: diffusers would look its config up on the hub, which "
                "is not done here. Pass --single-file-config DIR, a local SD1.5 folder in diffusers layout "
                "(only its JSON configs and tokenizer are read)."
            )
        pipe = StableDiffusionImg2ImgPipeline.from_single_file(
            str(model), config=str(settings.single_file_config), local_files_only=True, **common
        )
    else:
        raise PipelineLoadError(
            f"SD1.5 model not found: {model} (a diffusers folder or a .safetensors file)."
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


def to_diffusers_embeds(embeds: torch.Tensor, kind: str) -> torch.Tensor:
    """One sample's embedding (``[1,D]`` plain / ``[1,T,D]`` plus) -> diffusers' ``[2, 1, ...]``
    (zeros as the unconditional half first, then the embedding)."""
    if kind == "plain" and embeds.dim() == 1:
        embeds = embeds.unsqueeze(0)
    if kind == "plus" and embeds.dim() == 2:
        embeds = embeds.unsqueeze(0)
    single = embeds[:1].unsqueeze(1)
    return torch.cat([torch.zeros_like(single), single], dim=0)


def composite(result: Image.Image, source: Image.Image, mask: Image.Image) -> Image.Image:
    """Pixels inside the (white) mask from `result`, all others from `source`, exactly."""
    keep = np.asarray(mask.convert("L")) >= 128
    out = np.where(keep[..., None], np.asarray(result.convert("RGB")), np.asarray(source.convert("RGB")))
    return Image.fromarray(out.astype(np.uint8), mode="RGB")


class EditPipelines:
    """img2img + inpainting sharing one set of SD1.5 components (and one IP-Adapter)."""

    def __init__(self, settings: DiffusionSettings) -> None:
        from diffusers import StableDiffusionInpaintPipeline

        self.settings = settings
        self.img2img = load_img2img(settings)
        components = dict(self.img2img.components)
        self.inpaint = StableDiffusionInpaintPipeline(**components, requires_safety_checker=False)
        self.inpaint.set_progress_bar_config(disable=True)
        self.adapter: dict | None = None
        self._ours = None  # (IPAdapter, IPAdapterRunState) for the mindedit back end
        if settings.ipadapter:
            if settings.ipadapter_backend == "diffusers":
                self.adapter = attach_ipadapter(self.img2img, settings.ipadapter)
            else:
                self.adapter = self._attach_ours(settings.ipadapter)

    def _attach_ours(self, adapter_file: str) -> dict:
        from mindedit_core.ipadapter import load_ipadapter
        from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors

        adapter = load_ipadapter(adapter_file).to(self.settings.device)
        state = install_ipadapter_processors(self.img2img.unet, adapter)
        self._ours = (adapter, state)
        return {"kind": adapter.kind, "embed": adapter.embed_spec.describe(), "file": str(adapter_file)}

    def describe(self) -> dict:
        return {
            "mask_free": MASK_FREE_PIPELINE,
            "masked": MASKED_PIPELINE,
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
    ) -> Image.Image:
        """One edit. `mask` (white = edit) selects inpainting; `image_embeds` feeds the IP-Adapter."""
        source, mask = self._prepare(source, mask)
        result = self._run(source, mask, positive, negative, image_embeds, seed, "pil").images[0]
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
    ) -> torch.Tensor:
        """The final latents of the same call as `edit` (no VAE decode): for parity checks."""
        source, mask = self._prepare(source, mask)
        return self._run(source, mask, positive, negative, image_embeds, seed, "latent").images

    @torch.no_grad()
    def _run(self, source, mask, positive, negative, image_embeds, seed, output_type):
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
                state.set_embeds(adapter, embeds, torch.zeros_like(embeds), cfg=s.guidance_scale > 1.0)
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
            kwargs["ip_adapter_image_embeds"] = [to_diffusers_embeds(image_embeds, kind).to(s.device, dtype)]
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
