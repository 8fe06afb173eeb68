"""User-facing texts built from the family table: the image-budget tooltip and the docs' tables.

README.md and docs/MODELS.md hold the tables between ``<!-- families:NAME -->`` and
``<!-- /families:NAME -->`` markers; ``python -m devkit.family_docs`` rewrites them and a test checks
they are current, so a new family appears everywhere once its module is registered.
"""

from __future__ import annotations

import re

from . import FAMILIES, family_names
from .base import about


def image_tokens_hint(sides: tuple[int, int] = (384, 1024)) -> str:
    """``"LLaVA-OneVision ~1,500 / ~7,400, Qwen2.5-VL ~200 / ~1,400, ..."`` at the given sides."""
    parts = []
    for family in FAMILIES.values():
        counts = [family.tokens_at(side) for side in sides]
        parts.append(f"{family.display_name} " + " / ".join(about(c) if c else "?" for c in counts))
    return ", ".join(parts)


def supported_vlms_table() -> str:
    """docs/MODELS.md's table of every release (family, repo, key, shapes, layer m, size, VRAM)."""
    rows = [
        "| family (`model_type`, transformers class, first release) | repo | download key | params | "
        "text hidden x layers | layer m (3/4 depth) | size bf16 | VRAM bf16 / 4-bit (est.) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for family in FAMILIES.values():
        first = family.first_transformers.removesuffix(".0")
        for index, r in enumerate(family.releases):
            who = (
                f"{family.display_name} (`{family.model_type}`, `{family.model_class}`, {first})"
                if index == 0
                else ""
            )
            note = f" ({r.note})" if r.note else ""
            rows.append(
                f"|{f' {who} ' if who else ' '}| `{r.repo}`{note} | `{r.key}` | {r.params} | {r.hidden_size} x {r.num_layers} | "
                f"{family.default_layer(r.num_layers, readable=r.readable_layers)} | {r.download_size} | {r.vram_bf16} / {r.vram_4bit} |"
            )
    return "\n".join(rows)


def image_tokens_table() -> str:
    """docs/MODELS.md's visual tokens per square image side, per family."""
    sides = sorted({side for f in FAMILIES.values() for side, _ in f.image_tokens})
    head = " | ".join(f"{f.display_name}: {f.tokens_per_image_note}" for f in FAMILIES.values())
    rows = [f"| side | {head} |", "| --- |" + " --- |" * len(FAMILIES)]
    for side in sides:
        cells = " | ".join(f"{c:,}" if (c := f.tokens_at(side)) else "-" for f in FAMILIES.values())
        rows.append(f"| {side} px | {cells} |")
    return "\n".join(rows)


def readme_family_list() -> str:
    """README's list of supported families (one line each, with the releases' download keys)."""
    lines = []
    for f in FAMILIES.values():
        keys = ", ".join(f"`{r.key}`" for r in f.releases)
        needs = f", {f.transformers_note}" if f.transformers_note else ""
        lines.append(f"- {f.display_name} (`{f.model_type}`{needs}): {keys}")
    return "\n".join(lines)


GENERATED_BLOCKS = {
    "README.md": {"list": readme_family_list},
    "docs/MODELS.md": {"releases": supported_vlms_table, "image-tokens": image_tokens_table},
}


def _block_re(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- families:{name} -->\n)(.*?)(<!-- /families:{name} -->)", re.DOTALL)


def render(text: str, blocks: dict) -> str:
    """``text`` with each named block replaced by its generated content (a missing block is an error)."""
    for name, build in blocks.items():
        pattern = _block_re(name)
        if not pattern.search(text):
            raise ValueError(f"no <!-- families:{name} --> ... <!-- /families:{name} --> block")
        text = pattern.sub(lambda m, b=build: m.group(1) + b() + "\n" + m.group(3), text)
    return text


__all__ = [
    "GENERATED_BLOCKS",
    "family_names",
    "image_tokens_hint",
    "image_tokens_table",
    "readme_family_list",
    "render",
    "supported_vlms_table",
]
