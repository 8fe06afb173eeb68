"""Load IP-Adapter files in every layout users have, and build the adapter module from them.

Families and kinds, told apart from keys and shapes here and nowhere else (`inspect_sections`):
SD1.5 (768-wide image tokens, 16 sites) and SDXL (2048-wide, 70 sites), each plain (``proj`` +
``norm``: ViT-H ``image_embeds [B,1024]``) or plus (a Perceiver resampler, ``latents``: ViT-H
penultimate hidden states ``[B,257,1280]``; SDXL's is 1280 wide with 20 heads). The SDXL adapter for
the ViT-bigG encoder (``ip-adapter_sdxl``: 1280-wide ``image_embeds``) is refused with the
``_vit-h`` file to use instead: a MIND-Edit head makes ViT-H embeddings.

Layouts accepted (all seen in the wild):

- ``.bin`` / ``.pt`` / ``.pth``: a pickle ``{"image_proj": {...}, "ip_adapter": {...}}`` with
  unprefixed keys. Loaded with ``torch.load(weights_only=True)`` (`safe_files`): no arbitrary objects
  unpickled.
- ``.safetensors``: one flat dict, keys prefixed ``image_proj.`` / ``ip_adapter.``.
- legacy training checkpoints: flat, prefixed ``image_proj_model.`` / ``adapter_modules.`` (the
  reference training script's module names); any ``unet.*`` keys there are ignored.

The module built here keeps the file's own names (``image_proj.*``, ``ip_adapter.{n}.to_k_ip``), so
``IPAdapter.state_dict()`` *is* the flat ``.safetensors`` layout and loading is ``strict``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..embeds import EmbedSpec, check_embeds
from ..safe_files import load_weights
from .projection import LinearTokenProjection, PerceiverResampler
from .sites import CONTEXT_DIMS, FAMILY_NAMES, SITES_BY_FAMILY, Site

log = logging.getLogger(__name__)

AdapterFamily = Literal["sd15", "sdxl"]
SDXL_CONTEXT_DIM = CONTEXT_DIMS["sdxl"]
PERCEIVER_DIM_HEAD = 64  # every released Perceiver-resampler adapter uses 64-wide heads
VIT_H_EMBEDS_DIM = 1024  # OpenCLIP ViT-H/14 image_embeds (what plain adapters of both families read)
VIT_H_HIDDEN_DIM = 1280  # its penultimate hidden states (what plus adapters read)
# The adapter files made for the ViT-H encoder, per family and kind (h94/IP-Adapter names).
VIT_H_FILES: dict[tuple[str, str], str] = {
    ("sd15", "plain"): "ip-adapter_sd15.safetensors",
    ("sd15", "plus"): "ip-adapter-plus_sd15.safetensors",
    ("sdxl", "plain"): "ip-adapter_sdxl_vit-h.safetensors",
    ("sdxl", "plus"): "ip-adapter-plus_sdxl_vit-h.safetensors",
}

_IMAGE_PROJ_PREFIXES = ("image_proj.", "image_proj_model.")
_IP_LAYER_PREFIXES = ("ip_adapter.", "adapter_modules.")
FIX_HINT = (
    "Use an IP-Adapter made for the ViT-H image encoder, placed in ComfyUI/models/ipadapter: with SD1.5 "
    "checkpoints ip-adapter_sd15 (plain) or ip-adapter-plus_sd15 (plus); with SDXL checkpoints "
    "ip-adapter_sdxl_vit-h (plain) or ip-adapter-plus_sdxl_vit-h / ip-adapter-plus-face_sdxl_vit-h (plus); "
    ".safetensors or .bin."
)


class IPAdapterFileError(ValueError):
    """A file cannot be used as an IP-Adapter; the message names the file, what was found and the fix."""


@dataclass(frozen=True)
class AdapterInfo:
    """What a file holds, read from its keys and shapes alone."""

    kind: Literal["plain", "plus"]
    family: AdapterFamily
    embed_spec: EmbedSpec  # the CLIP-vision output it consumes (what `EMBEDS` must look like)
    context_dim: int  # width of the image tokens (768 for SD1.5, 2048 for SDXL)
    tokens: int  # image tokens per embedding (4 plain, 16 plus)
    site_numbers: tuple[int, ...]  # 1, 3, ..., 31 for SD1.5; 1, 3, ..., 139 for SDXL
    site_widths: tuple[int, ...]  # output width of each to_k_ip, in site order
    source: str

    def describe(self) -> str:
        return (
            f"{FAMILY_NAMES[self.family]} {self.kind} IP-Adapter ({len(self.site_numbers)} sites, {self.tokens} tokens x "
            f"{self.context_dim}, consumes {self.embed_spec.describe()})"
        )


def read_adapter_file(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Read any supported layout into ``{"image_proj": {...}, "ip_adapter": {...}}`` (unprefixed keys)."""
    path = Path(path)
    if not path.is_file():
        raise IPAdapterFileError(f"IP-Adapter file not found: {path}. {FIX_HINT}")
    raw = load_weights(
        path, what="IP-Adapter file", fix=f"Download it again, as .safetensors where offered. {FIX_HINT}"
    )
    if not isinstance(raw, dict):
        raise IPAdapterFileError(f"{path} holds a {type(raw).__name__}, not a dict of tensors. {FIX_HINT}")
    return split_sections(raw, source=str(path))


def split_sections(raw: dict, *, source: str = "<state dict>") -> dict[str, dict[str, torch.Tensor]]:
    """Normalise nested or flat (prefixed) dicts to the two sections, or explain why it is not one."""
    if isinstance(raw.get("image_proj"), dict) and isinstance(raw.get("ip_adapter"), dict):
        return {"image_proj": dict(raw["image_proj"]), "ip_adapter": dict(raw["ip_adapter"])}
    image_proj: dict[str, torch.Tensor] = {}
    ip_layers: dict[str, torch.Tensor] = {}
    ignored = 0
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            ignored += 1
            continue
        for prefix in _IMAGE_PROJ_PREFIXES:
            if key.startswith(prefix):
                image_proj[key[len(prefix) :]] = value
                break
        else:
            for prefix in _IP_LAYER_PREFIXES:
                if key.startswith(prefix):
                    ip_layers[key[len(prefix) :]] = value
                    break
            else:
                ignored += 1
    if not image_proj or not ip_layers:
        sample = ", ".join(sorted(map(str, raw.keys()))[:5]) or "(no keys)"
        raise IPAdapterFileError(
            f"{source} is not an IP-Adapter file: expected keys starting with 'image_proj.' and "
            f"'ip_adapter.' (or a nested {{'image_proj', 'ip_adapter'}} dict), found {len(raw)} keys such as "
            f"{sample}. A checkpoint, LoRA or CLIP-vision model does not go here. {FIX_HINT}"
        )
    if ignored:
        log.info("IP-Adapter %s: ignored %d keys outside image_proj/ip_adapter", source, ignored)
    return {"image_proj": image_proj, "ip_adapter": ip_layers}


def _unsupported_variant(sections: dict[str, dict[str, torch.Tensor]]) -> str | None:
    proj, layers = sections["image_proj"], sections["ip_adapter"]
    if any("to_q_lora" in key for key in layers) or "proj.2.weight" in proj:
        return "a FaceID adapter (needs InsightFace embeddings)"
    if "proj.3.weight" in proj:
        return "an 'ip-adapter-full-face' adapter (MLP projection)"
    if any(key.startswith("perceiver_resampler.") for key in proj):
        return "a FaceID-plus adapter"
    return None


def _family(context_dim: int) -> AdapterFamily:
    """SDXL adapters make 2048-wide image tokens; every other width is SD1.5-like (768 released; the
    tiny diffusers test pipelines use narrower ones). The MODEL's own width is checked at apply time."""
    return "sdxl" if context_dim == SDXL_CONTEXT_DIM else "sd15"


def _refuse_other_encoder(family: str, kind: str, in_dim: int, source: str) -> None:
    """An SDXL adapter made for another image encoder (ViT-bigG) cannot take a MIND-Edit embedding."""
    expected = VIT_H_EMBEDS_DIM if kind == "plain" else VIT_H_HIDDEN_DIM
    if family != "sdxl" or in_dim == expected:
        return
    what = "image_embeds" if kind == "plain" else "hidden states"
    raise IPAdapterFileError(
        f"{Path(source).name} ({source}) is an SDXL {kind} IP-Adapter for the OpenCLIP ViT-bigG/14 image "
        f"encoder: it reads {in_dim}-wide {what}, where a ViT-H/14 encoder (and a MIND-Edit head's v_insight) "
        f"gives {expected}-wide ones. Use {VIT_H_FILES[('sdxl', kind)]} instead (the same adapter trained "
        f"for ViT-H; h94/IP-Adapter sdxl_models/), in ComfyUI/models/ipadapter."
    )


def inspect_sections(sections: dict[str, dict[str, torch.Tensor]], *, source: str) -> AdapterInfo:
    """Detect plain/plus and SD1.5/SDXL from keys and shapes; raise a clear error for anything else."""
    variant = _unsupported_variant(sections)
    if variant:
        raise IPAdapterFileError(
            f"{source} is {variant}, which MIND-Edit does not support: only the plain and plus IP-Adapters "
            f"for the ViT-H encoder take a v_insight embedding. {FIX_HINT}"
        )
    proj, layers = sections["image_proj"], sections["ip_adapter"]
    numbers = sorted({int(key.split(".")[0]) for key in layers if key.split(".")[0].isdigit()})
    missing = [
        n for n in numbers if f"{n}.to_k_ip.weight" not in layers or f"{n}.to_v_ip.weight" not in layers
    ]
    if not numbers or missing:
        raise IPAdapterFileError(
            f"{source}: the ip_adapter section lacks to_k_ip/to_v_ip weights for sites {missing or 'all'}; "
            f"the file is truncated or not an IP-Adapter. {FIX_HINT}"
        )
    context_dim = int(layers[f"{numbers[0]}.to_k_ip.weight"].shape[1])
    family = _family(context_dim)
    widths = tuple(int(layers[f"{n}.to_k_ip.weight"].shape[0]) for n in numbers)
    if "latents" in proj:
        if "proj_in.weight" not in proj:
            raise IPAdapterFileError(f"{source}: plus adapter without image_proj.proj_in.weight. {FIX_HINT}")
        in_dim = int(proj["proj_in.weight"].shape[1])
        _refuse_other_encoder(family, "plus", in_dim, source)
        tokens = int(proj["latents"].shape[1])
        spec = EmbedSpec(kind="plus", dim=in_dim, tokens=257 if in_dim == VIT_H_HIDDEN_DIM else None)
        return AdapterInfo("plus", family, spec, context_dim, tokens, tuple(numbers), widths, source)
    if "proj.weight" not in proj or "norm.weight" not in proj:
        raise IPAdapterFileError(
            f"{source}: image_proj has neither 'latents' (plus) nor 'proj.weight' + 'norm.weight' (plain); "
            f"found {sorted(proj)[:5]}. {FIX_HINT}"
        )
    _refuse_other_encoder(family, "plain", int(proj["proj.weight"].shape[1]), source)
    token_dim = int(proj["norm.weight"].shape[0])
    tokens = int(proj["proj.weight"].shape[0]) // token_dim
    spec = EmbedSpec(kind="plain", dim=int(proj["proj.weight"].shape[1]))
    return AdapterInfo("plain", family, spec, token_dim, tokens, tuple(numbers), widths, source)


class SiteProjections(nn.Module):
    """``to_k_ip`` / ``to_v_ip`` of one cross-attention site: image tokens -> keys and values."""

    def __init__(self, context_dim: int, width: int) -> None:
        super().__init__()
        self.to_k_ip = nn.Linear(context_dim, width, bias=False)
        self.to_v_ip = nn.Linear(context_dim, width, bias=False)

    @property
    def width(self) -> int:
        return self.to_k_ip.out_features


class IPAdapter(nn.Module):
    """A loaded IP-Adapter: ``image_proj`` (tokens from embeddings) and ``ip_adapter`` (per-site K/V).

    ``sites`` pairs each `Site` of the family's released UNet (ComfyUI key, adapter number) with its
    projections; `comfy_patch` pairs them with the sites of the MODEL in hand instead.
    """

    def __init__(self, info: AdapterInfo, image_proj: nn.Module) -> None:
        super().__init__()
        self.info = info
        self.image_proj = image_proj
        self.ip_adapter = nn.ModuleDict(
            {
                str(n): SiteProjections(info.context_dim, w)
                for n, w in zip(info.site_numbers, info.site_widths)
            }
        )

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def embed_spec(self) -> EmbedSpec:
        return self.info.embed_spec

    @property
    def family_name(self) -> str:
        return FAMILY_NAMES[self.family]

    @property
    def sites(self) -> list[tuple[Site, SiteProjections]]:
        """The family's sites (16 SD1.5, 70 SDXL) in file order; empty when the file numbers its sites
        otherwise (another site count, or numbers other than 1, 3, 5, ...)."""
        family_sites = SITES_BY_FAMILY[self.family]
        if [site.adapter_number for site in family_sites] != list(self.info.site_numbers):
            return []
        return [(site, self.ip_adapter[str(site.adapter_number)]) for site in family_sites]

    def check_embeds(self, embeds: torch.Tensor, *, what: str = "embedding") -> None:
        """Raise `EmbedShapeError` naming this file, both shapes and the fix, unless ``embeds`` fits."""
        spec = self.embed_spec
        if spec.kind == "plus" and spec.tokens is None and embeds.ndim == 3 and embeds.shape[2] == spec.dim:
            return  # non-ViT-H plus adapter: any token count goes through the resampler
        check_embeds(embeds, spec, what=what, consumer=f"the IP-Adapter {Path(self.info.source).name}")

    @torch.no_grad()
    def project(self, embeds: torch.Tensor) -> torch.Tensor:
        """CLIP-vision-shaped embeddings -> image tokens ``[B, tokens, context_dim]`` (float32)."""
        self.check_embeds(embeds)
        param = next(self.image_proj.parameters())
        return self.image_proj(embeds.to(device=param.device, dtype=param.dtype))


def _build_image_proj(info: AdapterInfo, proj: dict[str, torch.Tensor]) -> nn.Module:
    if info.kind == "plain":
        return LinearTokenProjection(info.embed_spec.dim, info.context_dim, info.tokens)
    dim = int(proj["latents"].shape[2])
    depth = len({key.split(".")[1] for key in proj if key.startswith("layers.")})
    inner = int(proj["layers.0.0.to_q.weight"].shape[0])
    ff_inner = int(proj["layers.0.1.1.weight"].shape[0])
    return PerceiverResampler(
        in_dim=info.embed_spec.dim,
        dim=dim,
        out_dim=int(proj["proj_out.weight"].shape[0]),
        depth=depth,
        heads=inner // PERCEIVER_DIM_HEAD,
        dim_head=PERCEIVER_DIM_HEAD,
        queries=info.tokens,
        ff_mult=ff_inner // dim,
    )


def build_ipadapter(
    sections: dict[str, dict[str, torch.Tensor]], *, source: str = "<state dict>"
) -> IPAdapter:
    """Build the float32 CPU module from normalised sections (see `split_sections`), strictly."""
    info = inspect_sections(sections, source=source)
    adapter = IPAdapter(info, _build_image_proj(info, sections["image_proj"]))
    flat = {f"image_proj.{k}": v for k, v in sections["image_proj"].items()}
    flat.update({f"ip_adapter.{k}": v for k, v in sections["ip_adapter"].items()})
    try:
        adapter.load_state_dict({k: v.float() for k, v in flat.items()}, strict=True)
    except RuntimeError as err:
        raise IPAdapterFileError(
            f"{source}: detected a {info.describe()} but its weights do not fit that layout: {err}. "
            f"The file may be a variant MIND-Edit does not support. {FIX_HINT}"
        ) from err
    return adapter.eval().requires_grad_(False)


def load_ipadapter(path: str | Path) -> IPAdapter:
    """Load an IP-Adapter file (any supported layout) into an `IPAdapter` (float32, CPU, eval)."""
    adapter = build_ipadapter(read_adapter_file(path), source=str(path))
    log.info("Loaded %s from %s", adapter.info.describe(), path)
    return adapter
