"""CLIP-I: cosine similarity between the CLIP image embeddings of the result and the target.

The model is a local folder in Hugging Face layout holding a `CLIPVisionModelWithProjection` or a
full `CLIPModel` (only the vision tower and projection are used). Default documented in
docs/EVALUATION.md: ``openai/clip-vit-base-patch32`` (MagicBrush's harness); ViT-L/14 or the
IP-Adapter encoder ViT-H/14 work the same way. Preprocessing is done here, without torchvision:
shortest side to the model's size (bicubic), centre crop, CLIP mean/std (values read from the
folder's ``preprocessor_config.json`` when present). Nothing is downloaded: the folder must exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipPreprocess:
    """How images are turned into CLIP pixel values (recorded in the report)."""

    size: int
    crop: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @classmethod
    def from_folder(cls, folder: Path, image_size: int) -> ClipPreprocess:
        config_file = folder / "preprocessor_config.json"
        if not config_file.is_file():
            return cls(size=image_size, crop=image_size)
        config = json.loads(config_file.read_text())
        size = config.get("size", image_size)
        size = size.get("shortest_edge", image_size) if isinstance(size, dict) else int(size)
        crop = config.get("crop_size", size)
        crop = crop.get("height", size) if isinstance(crop, dict) else int(crop)
        return cls(
            size=int(size),
            crop=int(crop),
            mean=tuple(config.get("image_mean", CLIP_MEAN)),
            std=tuple(config.get("image_std", CLIP_STD)),
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """`[3, crop, crop]` normalised pixel values for one RGB image."""
        image = image.convert("RGB")
        width, height = image.size
        scale = self.size / min(width, height)
        resized = image.resize(
            (max(self.crop, int(width * scale)), max(self.crop, int(height * scale))),
            Image.Resampling.BICUBIC,
        )
        left = (resized.width - self.crop) // 2
        top = (resized.height - self.crop) // 2
        cropped = resized.crop((left, top, left + self.crop, top + self.crop))
        array = np.asarray(cropped, dtype=np.float32) / 255.0
        pixels = torch.from_numpy(array.copy()).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (pixels - mean) / std


class ClipImageScorer:
    """Embeds images with a local CLIP vision model and scores pairs by cosine similarity."""

    def __init__(self, model, preprocess: ClipPreprocess, name: str, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.name = name
        self.device = torch.device(device)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu") -> ClipImageScorer:
        from transformers import CLIPVisionModelWithProjection

        path = Path(folder)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"CLIP model folder {path} has no config.json. CLIP-I needs a local CLIP model in Hugging "
                f"Face layout (default {DEFAULT_CLIP_MODEL}: `hf download {DEFAULT_CLIP_MODEL} --local-dir "
                "DIR`), passed as --clip-model DIR; nothing is downloaded automatically."
            )
        model = CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True)
        preprocess = ClipPreprocess.from_folder(path, model.config.image_size)
        return cls(model, preprocess, name=str(path), device=device)

    @torch.no_grad()
    def embed(self, images: list[Image.Image], batch_size: int = 16) -> torch.Tensor:
        """Unit-norm `[N, D]` projected image embeddings (float32)."""
        chunks = []
        for start in range(0, len(images), batch_size):
            pixels = torch.stack([self.preprocess(im) for im in images[start : start + batch_size]])
            output = self.model(pixel_values=pixels.to(self.device, self.model.dtype))
            chunks.append(F.normalize(output.image_embeds.float(), dim=-1).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0)

    def similarity(self, results: list[Image.Image], targets: list[Image.Image]) -> list[float]:
        """CLIP-I per pair: cosine of the two embeddings (1.0 for identical images)."""
        if len(results) != len(targets):
            raise ValueError(f"CLIP-I needs pairs: {len(results)} results vs {len(targets)} targets.")
        a, b = self.embed(results), self.embed(targets)
        return [float(v) for v in (a * b).sum(dim=-1)]
