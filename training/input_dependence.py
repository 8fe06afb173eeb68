"""Does ``v_insight`` depend on the input? Spread of a head's outputs over held-out items, and collapse.

A head that emits one vector for every input (in practice the mean training target) still scores a
respectable cosine against CLIP targets, whose image embeddings share a large common direction, and a
high CLIP-I downstream. Cosine and CLIP-I cannot see it; these numbers can:

- ``spread``: mean ``1 - cos`` over all pairs of outputs (0 = every output points the same way);
- ``target_spread``: the same over the items' targets (how far apart the outputs should be);
- ``cos_to_mean_target``: mean cosine of the outputs with the mean training target (1 = the head
  emits the mean target).

A head is **collapsed** when its spread is below ``COLLAPSE_RATIO`` (10 %) of the targets' spread. The
ratio is relative so that the test holds for any target encoder: CLIP ViT-H embeddings of different
images are ~0.2-0.5 apart, the learning benchmark's stand-in targets ~0.8-1. A collapsed head before
training is expected (random init); after training it means the head learned nothing input-dependent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COLLAPSE_RATIO = 0.1
# Without targets to compare with (the evaluation report), an absolute floor: CLIP ViT-H embeddings of
# different images are >= ~0.1 apart, the collapsed head of issue 23 had a spread below 1e-6.
COLLAPSE_SPREAD = 1e-3


def pairwise_spread(values: torch.Tensor) -> float:
    """Mean ``1 - cos`` over distinct pairs of ``[N, D]`` (or ``[N, T, D]``, flattened per item)."""
    flat = values.detach().float().reshape(values.shape[0], -1)
    n = flat.shape[0]
    if n < 2:
        raise ValueError("The spread of outputs needs at least two items.")
    unit = F.normalize(flat, dim=-1)
    sims = unit @ unit.T
    off = ~torch.eye(n, dtype=torch.bool, device=sims.device)
    return float((1.0 - sims[off]).mean())


def spread_check(outputs: torch.Tensor) -> dict:
    """``{n, spread, collapsed}`` of outputs alone (no targets): collapsed below `COLLAPSE_SPREAD`."""
    spread = pairwise_spread(outputs)
    return {"n": int(outputs.shape[0]), "spread": spread, "collapsed": bool(spread < COLLAPSE_SPREAD)}


def input_dependence(
    predictions: torch.Tensor, targets: torch.Tensor, mean_target: torch.Tensor | None
) -> dict:
    """``{n, spread, target_spread, spread_ratio, cos_to_mean_target, collapsed}`` for N >= 2 items."""
    spread = pairwise_spread(predictions)
    target_spread = pairwise_spread(targets)
    ratio = spread / max(target_spread, 1e-12)
    stats = {
        "n": int(predictions.shape[0]),
        "spread": spread,
        "target_spread": target_spread,
        "spread_ratio": ratio,
        "collapsed": bool(ratio < COLLAPSE_RATIO),
    }
    if mean_target is not None:
        flat = predictions.detach().float().reshape(predictions.shape[0], -1)
        mean = mean_target.detach().float().reshape(1, -1).to(flat.device)
        stats["cos_to_mean_target"] = float(F.cosine_similarity(flat, mean, dim=-1).mean())
    return stats


def collapse_warning(stats: dict | None, *, where: str = "held-out items") -> str | None:
    """The loud message for a collapsed head, or None when the head's outputs depend on the input."""
    if not stats or not stats.get("collapsed"):
        return None
    to_mean = stats.get("cos_to_mean_target")
    mean_part = f", cos to the mean training target {to_mean:.3f}" if to_mean is not None else ""
    versus = f" vs the targets' {stats['target_spread']:.2e}" if "target_spread" in stats else ""
    return (
        f"VISION HEAD COLLAPSED: on {stats['n']} {where} its outputs are nearly identical (spread "
        f"{stats['spread']:.2e}{versus}{mean_part}). v_insight does "
        "not depend on the edit; its cosine and CLIP-I look fine but it carries a constant. See "
        "docs/TRAINING.md (learning benchmark) for what to check."
    )
