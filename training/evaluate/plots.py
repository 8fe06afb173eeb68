"""Report figures (matplotlib, Agg backend, PNG): per-edit-type bars, metric distributions, and a grid
of source / target / result images for a few items of each run.

Each function takes plain data (summaries, score rows, thumbnail paths) and returns the written path,
so the report decides what to plot and the figures stay testable without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from .metrics import DISPLAY_NAMES, HIGHER_IS_BETTER  # noqa: E402

CORE_METRICS = ("clip_i", "lpips", "psnr", "ssim")


def _label(metric: str) -> str:
    arrow = "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"
    return f"{DISPLAY_NAMES.get(metric, metric)} {arrow}"


def per_type_bars(summaries: dict[str, dict], out: Path, *, title: str = "") -> Path | None:
    """One panel per metric: grouped bars, edit types on x, one bar per method (run label)."""
    metrics = [m for m in CORE_METRICS if any(m in s.get("metrics", []) for s in summaries.values())]
    if not metrics:
        return None
    types = sorted({t for s in summaries.values() for t in s.get("by_type", {})})
    labels = list(summaries)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / max(1, len(labels))
    for ax, metric in zip(axes[0], metrics):
        for offset, label in enumerate(labels):
            by_type = summaries[label].get("by_type", {})
            values = [by_type.get(t, {}).get(metric) for t in types]
            xs = [i + offset * width - 0.4 + width / 2 for i in range(len(types))]
            ax.bar(xs, [v if v is not None else 0.0 for v in values], width=width, label=label)
        ax.set_xticks(range(len(types)))
        ax.set_xticklabels(types, rotation=30, ha="right", fontsize=8)
        ax.set_title(_label(metric))
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
    fig.suptitle(title or "Metrics per edit type")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def distributions(scores: dict[str, list[dict]], out: Path, *, title: str = "") -> Path | None:
    """Box plots of the per-item values of each metric, one box per method (inf PSNR left out)."""
    metrics = [m for m in CORE_METRICS if any(m in row for rows in scores.values() for row in rows)]
    if not metrics:
        return None
    labels = list(scores)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = []
        for label in labels:
            values = [r[metric] for r in scores[label] if r.get(metric) is not None]
            data.append([v for v in values if v != float("inf")] or [float("nan")])
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(_label(metric))
    fig.suptitle(title or "Per-item metric distributions")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def image_grid(rows: list[dict[str, Path]], columns: list[str], out: Path, *, title: str = "") -> Path | None:
    """A grid: one row per item, one column per image role (e.g. source, target, then each method)."""
    if not rows:
        return None
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(1.9 * len(columns), 1.9 * len(rows) + 0.4), squeeze=False
    )
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r][c]
            ax.axis("off")
            path = row.get(column)
            if path is not None and Path(path).is_file():
                with Image.open(path) as image:
                    ax.imshow(image.convert("RGB"))
            else:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=8)
            if r == 0:
                ax.set_title(column, fontsize=8)
        axes[r][0].text(
            -0.08,
            0.5,
            str(row.get("id", "")),
            transform=axes[r][0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=7,
        )
    fig.suptitle(title or "Source / target / results")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
