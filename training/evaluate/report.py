"""The Markdown report: Table 1 layout (ours measured, the paper's numbers labelled as reported), the
Table 2 ablation rows, a per-edit-type table, every metric convention, and the plots.

Input: scored run folders (``summary.json``, ``scores.jsonl``, ``thumbs/``). Output folder:
``report.md`` and ``plots/*.png``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from . import plots
from .metrics import DISPLAY_NAMES, HIGHER_IS_BETTER
from .reported import (
    BENCHMARKS,
    PRESET_TO_TABLE2,
    REPORTED_TABLE1,
    REPORTED_TABLE2,
    benchmark_of,
    benchmark_title,
)
from .run_files import SCORES_FILE, SUMMARY_FILE, read_jsonl, safe_name

CORE = ("clip_i", "lpips", "psnr", "ssim")
NOT_RUN = "—"


class ScoredRun:
    """One scored run folder: its summary, per-item scores, label and benchmark."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        summary_file = self.folder / SUMMARY_FILE
        if not summary_file.is_file():
            raise FileNotFoundError(
                f"{self.folder} has no {SUMMARY_FILE}: run `python -m training.evaluate score --run "
                f"{self.folder} ...` before the report."
            )
        self.summary = json.loads(summary_file.read_text(encoding="utf-8"))
        self.scores = list(read_jsonl(self.folder / SCORES_FILE))
        self.method = self.summary["method"]["name"]
        self.benchmark = benchmark_of(self.summary["dataset"]["format"])
        self.label = self.method


def _fmt(value) -> str:
    if value is None:
        return NOT_RUN
    return f"{value:.4f}"


def _header(metrics=CORE) -> str:
    return " | ".join(f"{DISPLAY_NAMES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in metrics)


def _unique_labels(runs: list[ScoredRun]) -> None:
    """Runs of the same method on the same benchmark get their folder name appended."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for run in runs:
        counts[(run.benchmark, run.method)] += 1
    for run in runs:
        if counts[(run.benchmark, run.method)] > 1:
            run.label = f"{run.method} ({run.folder.name})"


def table1(runs: list[ScoredRun]) -> str:
    """Rows = methods (ours, then reported), column groups = benchmarks, like the paper's Table 1."""
    benchmarks = [b for b in BENCHMARKS if any(r.benchmark == b for r in runs)] or list(BENCHMARKS)
    extra = sorted({r.benchmark for r in runs} - set(BENCHMARKS))
    benchmarks += extra
    head = (
        "| Method | "
        + " | ".join(
            " | ".join(f"{benchmark_title(b)} {h}" for h in _header().split(" | ")) for b in benchmarks
        )
        + " |"
    )
    sep = "|---" * (1 + 4 * len(benchmarks)) + "|"
    lines = [head, sep]
    labels: dict[str, dict[str, ScoredRun]] = defaultdict(dict)
    for run in runs:
        labels[run.label][run.benchmark] = run
    for label, by_bench in labels.items():
        cells = []
        for b in benchmarks:
            overall = by_bench[b].summary["overall"] if b in by_bench else {}
            cells += [_fmt(overall.get(m)) for m in CORE]
        lines.append(f"| **{label}** (ours, measured) | " + " | ".join(cells) + " |")
    for method, values in REPORTED_TABLE1.items():
        cells = []
        for b in benchmarks:
            cells += [_fmt(values.get(b, {}).get(m)) for m in CORE]
        lines.append(f"| {method} (reported, paper Table 1) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table2(runs: list[ScoredRun]) -> str | None:
    """HumanEdit ablations: our preset runs beside the paper's Table 2 rows."""
    ours = [r for r in runs if r.benchmark == "humanedit" and r.method in PRESET_TO_TABLE2]
    lines = [
        "| Exp. | T_opt | v_insight | T_opt training | v_insight training | " + _header() + " |",
        "|---" * 9 + "|",
    ]
    for run in ours:
        spec = run.summary["method"]
        cells = [_fmt(run.summary["overall"].get(m)) for m in CORE]
        lines.append(
            f"| {PRESET_TO_TABLE2[run.method]} ours: **{run.label}** | "
            f"{'yes' if spec['prompt'] == 'refined' else '-'} | {'yes' if spec['image_embed'] == 'insight' else '-'}"
            " | (checkpoint) | (checkpoint) | " + " | ".join(cells) + " |"
        )
    for exp, t_opt, v_ins, t_train, v_train, values in REPORTED_TABLE2:
        cells = [_fmt(values.get(m)) for m in CORE]
        lines.append(
            f"| {exp} (reported, paper Table 2) | {t_opt} | {v_ins} | {t_train} | {v_train} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def per_type_table(runs: list[ScoredRun]) -> str:
    seen = {m for r in runs for m in r.summary.get("metrics", [])}
    extra = [m for m in DISPLAY_NAMES if m in seen and m not in CORE]
    metrics = list(CORE) + extra
    head = (
        "| Benchmark | Edit type | Method | n | "
        + " | ".join(
            f"{DISPLAY_NAMES.get(m, m)} {'↑' if HIGHER_IS_BETTER.get(m.split('_')[0], True) else '↓'}"
            for m in metrics
        )
        + " |"
    )
    lines = [head, "|---" * (4 + len(metrics)) + "|"]
    for run in sorted(runs, key=lambda r: r.benchmark):
        for edit_type, values in run.summary.get("by_type", {}).items():
            cells = [_fmt(values.get(m)) for m in metrics]
            lines.append(
                f"| {benchmark_title(run.benchmark)} | {edit_type} | {run.label} | {values.get('count', 0)} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def conventions_section(runs: list[ScoredRun]) -> str:
    """The conventions of the first run, and any run whose conventions differ (flagged, not hidden)."""
    first = runs[0].summary["conventions"]
    lines = [f"- **{key}**: {value}" for key, value in first.items()]
    for run in runs[1:]:
        differing = {k: v for k, v in run.summary["conventions"].items() if first.get(k) != v}
        if differing:
            lines.append(f"- **WARNING** `{run.label}` was scored with different conventions:")
            lines += [f"  - {k}: {v}" for k, v in differing.items()]
    return "\n".join(lines)


def runs_section(runs: list[ScoredRun]) -> str:
    lines = [
        "| Run | Method (prompt, image embedding) | Dataset | Scored / selected | Missing results | Folder |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary
        spec = s["method"]
        lines.append(
            f"| {run.label} | {spec['name']} ({spec['prompt']}, {spec['image_embed']}) | "
            f"{benchmark_title(run.benchmark)} | {s['scored']} / {s['selected']} | {len(s.get('missing', []))} | "
            f"`{run.folder}` |"
        )
    return "\n".join(lines)


def _grid_rows(runs: list[ScoredRun], benchmark: str, limit: int) -> tuple[list[dict], list[str]]:
    chosen = [r for r in runs if r.benchmark == benchmark]
    if not chosen:
        return [], []
    anchor = chosen[0]
    ids = [
        row["id"]
        for row in anchor.scores
        if (anchor.folder / "thumbs" / f"{safe_name(row['id'])}_source.png").is_file()
    ][:limit]
    rows = []
    for item_id in ids:
        name = safe_name(item_id)
        row: dict = {
            "id": item_id,
            "source": anchor.folder / "thumbs" / f"{name}_source.png",
            "target": anchor.folder / "thumbs" / f"{name}_target.png",
        }
        for run in chosen:
            thumb = run.folder / "thumbs" / f"{name}_result.png"
            row[run.label] = thumb if thumb.is_file() else run.folder / "images" / f"{name}.png"
        rows.append(row)
    return rows, ["source", "target"] + [r.label for r in chosen]


def build_report(
    run_folders: list[str | Path],
    out_dir: str | Path,
    *,
    title: str = "MIND-Edit evaluation",
    grid_items: int = 4,
) -> Path:
    """Write ``report.md`` and ``plots/`` for the scored runs; returns the report path."""
    runs = [ScoredRun(f) for f in run_folders]
    if not runs:
        raise ValueError("No runs given: pass one or more scored run folders.")
    _unique_labels(runs)
    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    parts = [
        f"# {title}",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m training.evaluate report`.",
        "Rows marked *reported* are the numbers printed in the MIND-Edit paper (its own split and "
        "settings); rows marked *measured* were computed by this harness with the conventions below.",
        "## Results (paper Table 1 layout)",
        table1(runs),
    ]
    ablation = table2(runs)
    if ablation and any(r.benchmark == "humanedit" for r in runs):
        parts += ["## Ablations (paper Table 2 layout, HumanEdit)", ablation]
    parts += [
        "## Per edit type",
        per_type_table(runs),
        "## Runs",
        runs_section(runs),
        "## Metric conventions",
        conventions_section(runs),
        "## Plots",
    ]
    for benchmark in sorted({r.benchmark for r in runs}):
        chosen = [r for r in runs if r.benchmark == benchmark]
        key = benchmark
        name = benchmark_title(benchmark)
        bars = plots.per_type_bars(
            {r.label: r.summary for r in chosen},
            plot_dir / f"{key}_per_type.png",
            title=f"{name}: metrics per edit type",
        )
        dist = plots.distributions(
            {r.label: r.scores for r in chosen},
            plot_dir / f"{key}_distributions.png",
            title=f"{name}: per-item distributions",
        )
        rows, columns = _grid_rows(runs, benchmark, grid_items)
        grid = plots.image_grid(rows, columns, plot_dir / f"{key}_grid.png", title=f"{name}: examples")
        for label, path in (("Per edit type", bars), ("Distributions", dist), ("Examples", grid)):
            if path is not None:
                parts.append(f"### {name}: {label}\n\n![{label}](plots/{path.name})")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.md"
    report.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return report
