"""The report's input-dependence check of ``v_insight``, beside CLIP-I (which cannot see a collapse).

Each generated item that used ``v_insight`` stores a compact copy of it (``insight_vector`` in its
manifest row, `training.evaluate.generate.insight_vector`); a run's spread is the mean ``1 - cos``
over pairs of items (`training.input_dependence.spread_check`). A head that emits one vector for every
input has a spread near 0 and still a respectable CLIP-I: the report says so loudly.
"""

from __future__ import annotations

import torch

from ..input_dependence import collapse_warning, spread_check


def insight_stats(items: list[dict]) -> dict | None:
    """``{n, spread, collapsed}`` over the items with an ``insight_vector``; None with fewer than two."""
    vectors = [item["insight_vector"] for item in items if item.get("insight_vector")]
    if len(vectors) < 2:
        return None
    return spread_check(torch.tensor(vectors, dtype=torch.float32))


def insight_section(runs) -> tuple[str | None, str | None]:
    """``(warnings, table)`` for runs with ``v_insight`` items (both None when no run has any)."""
    checked = [r for r in runs if r.insight is not None]
    if not checked:
        return None, None
    rows = [
        "| Run | CLIP-I ↑ | items with v_insight | spread of v_insight (1 − pairwise cos) | collapsed |",
        "|---|---|---|---|---|",
    ]
    warnings = []
    for run in checked:
        stats = run.insight
        clip = run.summary.get("overall", {}).get("clip_i")
        clip_cell = "—" if clip is None else f"{clip:.4f}"
        flag = "**YES ⚠**" if stats["collapsed"] else "no"
        rows.append(f"| {run.label} | {clip_cell} | {stats['n']} | {stats['spread']:.2e} | {flag} |")
        warning = collapse_warning(stats, where=f"items of `{run.label}`")
        if warning:
            warnings.append(f"> **WARNING: {warning}**")
    return ("\n>\n".join(warnings) if warnings else None), "\n".join(rows)
