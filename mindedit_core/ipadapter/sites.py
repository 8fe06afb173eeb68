"""The cross-attention sites an IP-Adapter patches (16 in SD1.5, 70 in SDXL), and how each is addressed.

An IP-Adapter file numbers its per-site projections ``1, 3, 5, ...``: the reference training code
enumerated *all* attention processors of a diffusers UNet (self-attention ``attn1`` at even
positions, cross-attention ``attn2`` at odd positions) in diffusers' module order, which is down
blocks, then up blocks, then the middle block, each transformer layer in turn. ComfyUI addresses
the same layers by ``(block_kind, block_id, transformer_index)`` in the LDM layout
(``input_blocks``, ``output_blocks``, ``middle_block``). This module is the single place that maps
one onto the other, for both families:

- SD1.5: input 1, 2, 4, 5, 7, 8; output 3..11; middle; one transformer layer each (16 sites).
- SDXL: input 4, 5 (640 wide, 2 layers each), 7, 8 (1280, 10 layers); output 0-2 (1280, 10 layers),
  3-5 (640, 2 layers); middle (1280, 10 layers): 70 sites.

`sites_in_unet` reads the same order off the ComfyUI UNet in hand, so a fine-tune with the family's
layout works and a different layout is named in the error instead of being patched wrongly.

Note on the middle block: ComfyUI 0.3.75 and 0.33.0 label it ``("middle", 0)`` (``openaimodel.py``:
``transformer_options["block"] = ("middle", 0)``), so its keys are ``("middle", 0, i)``. Some older
packs patch ``("middle", 1)``, which those ComfyUIs never look up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

ComfyAttnKey = tuple[str, int, int]
Family = Literal["sd15", "sdxl"]
FAMILY_NAMES: dict[str, str] = {"sd15": "SD1.5", "sdxl": "SDXL"}
CONTEXT_DIMS: dict[str, int] = {"sd15": 768, "sdxl": 2048}  # width of the text context per family


@dataclass(frozen=True)
class Site:
    """One cross-attention layer: its position, its adapter key number, ComfyUI key, width."""

    index: int  # 0..N-1, the order of the adapter file (and of ComfyUI_IPAdapter_plus' layer weights)
    adapter_number: int  # 1, 3, ..., 2N-1: the prefix of ``{n}.to_k_ip.weight`` in the file
    comfy_key: ComfyAttnKey  # key in transformer_options["patches_replace"]["attn2"]
    width: int  # channels at this site (query width of attn2): real family width, or the model's

    @property
    def k_name(self) -> str:
        return f"{self.adapter_number}.to_k_ip.weight"

    @property
    def v_name(self) -> str:
        return f"{self.adapter_number}.to_v_ip.weight"

    @property
    def label(self) -> str:
        kind, block, index = self.comfy_key
        return f"{kind}_blocks.{block}.transformer_blocks.{index}.attn2"


# (block kind, block id, transformer layers, real width), in diffusers' order (down, up, middle).
_LAYOUTS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "sd15": (
        ("input", 1, 1, 320),
        ("input", 2, 1, 320),
        ("input", 4, 1, 640),
        ("input", 5, 1, 640),
        ("input", 7, 1, 1280),
        ("input", 8, 1, 1280),
        ("output", 3, 1, 1280),
        ("output", 4, 1, 1280),
        ("output", 5, 1, 1280),
        ("output", 6, 1, 640),
        ("output", 7, 1, 640),
        ("output", 8, 1, 640),
        ("output", 9, 1, 320),
        ("output", 10, 1, 320),
        ("output", 11, 1, 320),
        ("middle", 0, 1, 1280),
    ),
    "sdxl": (
        ("input", 4, 2, 640),
        ("input", 5, 2, 640),
        ("input", 7, 10, 1280),
        ("input", 8, 10, 1280),
        ("output", 0, 10, 1280),
        ("output", 1, 10, 1280),
        ("output", 2, 10, 1280),
        ("output", 3, 2, 640),
        ("output", 4, 2, 640),
        ("output", 5, 2, 640),
        ("middle", 0, 10, 1280),
    ),
}


def _numbered(keys_and_widths: list[tuple[ComfyAttnKey, int]]) -> tuple[Site, ...]:
    return tuple(
        Site(index=i, adapter_number=2 * i + 1, comfy_key=key, width=width)
        for i, (key, width) in enumerate(keys_and_widths)
    )


def family_sites(family: str) -> tuple[Site, ...]:
    """The sites of the family's released UNet (real widths), in adapter-file order."""
    return _numbered(
        [
            ((kind, block, layer), width)
            for kind, block, layers, width in _LAYOUTS[family]
            for layer in range(layers)
        ]
    )


SD15_SITES: tuple[Site, ...] = family_sites("sd15")
SD15_WIDTHS: tuple[int, ...] = tuple(site.width for site in SD15_SITES)
SDXL_SITES: tuple[Site, ...] = family_sites("sdxl")
SDXL_WIDTHS: tuple[int, ...] = tuple(site.width for site in SDXL_SITES)
SITES_BY_FAMILY: dict[str, tuple[Site, ...]] = {"sd15": SD15_SITES, "sdxl": SDXL_SITES}


def family_of_site_count(count: int) -> str | None:
    """``"sd15"`` for 16 sites, ``"sdxl"`` for 70, else None."""
    return next((f for f, sites in SITES_BY_FAMILY.items() if len(sites) == count), None)


def _attn2_layers(diffusion_model: Any) -> Iterator[tuple[ComfyAttnKey, Any]]:
    """Every attn2 of an LDM UNet in diffusers' order: input blocks, output blocks, then middle."""
    containers = [("input", i, b) for i, b in enumerate(diffusion_model.input_blocks)]
    containers += [("output", i, b) for i, b in enumerate(diffusion_model.output_blocks)]
    containers.append(("middle", 0, diffusion_model.middle_block))
    for kind, block_id, container in containers:
        for child in container:
            blocks = getattr(child, "transformer_blocks", None)
            if blocks is None:
                continue
            for layer, transformer_block in enumerate(blocks):
                attn2 = getattr(transformer_block, "attn2", None)
                if attn2 is not None:
                    yield (kind, block_id, layer), attn2


def sites_in_unet(diffusion_model: Any) -> tuple[tuple[Site, ...], int] | None:
    """The cross-attention sites of a ComfyUI LDM UNet, numbered as an adapter file numbers them,
    with their real widths, and the context width they take; None when the model is not an LDM UNet
    (a DiT, a duck-typed fake) and cannot be read."""
    if not all(hasattr(diffusion_model, name) for name in ("input_blocks", "output_blocks", "middle_block")):
        return None
    found = []
    context_dims = set()
    try:
        for key, attn2 in _attn2_layers(diffusion_model):
            inner, context = attn2.to_k.weight.shape
            found.append((key, int(inner)))
            context_dims.add(int(context))
    except (AttributeError, TypeError, ValueError):
        return None
    if not found or len(context_dims) != 1:
        return None
    return _numbered(found), context_dims.pop()


def describe_layout(sites: tuple[Site, ...] | list[Site]) -> str:
    """``input 4 x2, input 5 x2, ...``: a layout as a user can compare it with a family's."""
    counts: dict[tuple[str, int], int] = {}
    for site in sites:
        kind, block, _ = site.comfy_key
        counts[(kind, block)] = counts.get((kind, block), 0) + 1
    return ", ".join(f"{kind} {block} x{n}" for (kind, block), n in counts.items())
