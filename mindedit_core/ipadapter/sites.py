"""The 16 cross-attention sites of SD1.5 that an IP-Adapter patches, and how each is addressed.

An SD1.5 IP-Adapter file numbers its per-site projections ``1, 3, 5, ..., 31``: the reference
training code enumerated *all* attention processors of a diffusers UNet (self-attention ``attn1``
at even positions, cross-attention ``attn2`` at odd positions) in diffusers' module order, which
is down blocks, then up blocks, then the middle block. ComfyUI addresses the same layers by
``(block_kind, block_id, transformer_index)`` in the LDM layout (``input_blocks``,
``output_blocks``, ``middle_block``). This module is the single place that maps one onto the other.

Note on the middle block: ComfyUI 0.3.75 labels it ``("middle", 0)`` (see
``openaimodel.py``: ``transformer_options["block"] = ("middle", 0)``), so its key is
``("middle", 0, 0)``. Some older packs patch ``("middle", 1)``, which that ComfyUI never looks up.
"""

from __future__ import annotations

from dataclasses import dataclass

ComfyAttnKey = tuple[str, int, int]


@dataclass(frozen=True)
class Site:
    """One cross-attention layer: its position, its adapter key number, ComfyUI key, real width."""

    index: int  # 0..15, the order of the adapter file (and of ComfyUI_IPAdapter_plus' layer weights)
    adapter_number: int  # 1, 3, ..., 31: the prefix of ``{n}.to_k_ip.weight`` in the file
    comfy_key: ComfyAttnKey  # key in transformer_options["patches_replace"]["attn2"]
    sd15_width: int  # channels of real SD1.5 at this site (query width of attn2)

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


def _build_sd15_sites() -> tuple[Site, ...]:
    layout: list[tuple[tuple[str, int], int]] = [
        (("input", 1), 320),
        (("input", 2), 320),
        (("input", 4), 640),
        (("input", 5), 640),
        (("input", 7), 1280),
        (("input", 8), 1280),
        (("output", 3), 1280),
        (("output", 4), 1280),
        (("output", 5), 1280),
        (("output", 6), 640),
        (("output", 7), 640),
        (("output", 8), 640),
        (("output", 9), 320),
        (("output", 10), 320),
        (("output", 11), 320),
        (("middle", 0), 1280),
    ]
    return tuple(
        Site(index=i, adapter_number=2 * i + 1, comfy_key=(kind, block, 0), sd15_width=width)
        for i, ((kind, block), width) in enumerate(layout)
    )


SD15_SITES: tuple[Site, ...] = _build_sd15_sites()
SD15_WIDTHS: tuple[int, ...] = tuple(site.sd15_width for site in SD15_SITES)
