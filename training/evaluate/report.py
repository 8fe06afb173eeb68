"""The Markdown report: Table 1 layout (ours measured, the paper's numbers labelled as reported), the
Table 2 ablation rows (for every dataset; the paper's rows beside HumanEdit's), a per-edit-type table,
the runs with their generation settings, checkpoints and recorded variants, how many items fell back
to the raw instruction (loudly, when any did), every metric convention, and the plots.

Input: scored run folders (``run.json``, manifests, ``summary.json``, ``scores.jsonl``, ``thumbs/``).
Output folder: ``report.md`` and ``plots/*.png``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from training.data.synthetic import is_synthetic

from . import plots
from .ablation_rows import ROW_ORDER, classify_run
from .insight_check import insight_section, insight_stats
from .metrics import DISPLAY_NAMES, HIGHER_IS_BETTER
from .provenance import partial_copy_note, split_overlap, training_summary
from .reported import (
    BENCHMARKS,
    REPORTED_TABLE1,
    REPORTED_TABLE2,
    SYNTHETIC,
    benchmark_of,
    benchmark_title,
)
from .run_files import RUN_FILE, SCORES_FILE, SUMMARY_FILE, read_jsonl, read_manifest, read_run, safe_name

CORE = ("clip_i", "lpips", "psnr", "ssim")
RESULTS_FILE = "results.json"  # every number of the report, with its provenance
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
        self.info = read_run(self.folder) if (self.folder / RUN_FILE).is_file() else {}
        self.sources = self.info.get("sources") or {}
        self.row = classify_run(self.summary["method"], self.sources)
        scored = {row["id"] for row in self.scores}
        items = [item for item_id, item in read_manifest(self.folder).items() if item_id in scored]
        self.fallbacks = sum(1 for item in items if _fell_back(item))
        self.refined_items = sum(1 for item in items if item.get("prompt_origin") == "mllm")
        self.insight = insight_stats(items)  # spread of v_insight over the items (None: not used)
        self.provenance = run_provenance(self.info, self.summary, self.sources)
        self.synthetic = bool(  # the data, the SD model, or a checkpoint trained on a synthetic fixture
            self.provenance["dataset"].get("synthetic")
            or self.provenance.get("sd_model_synthetic")
            or any(
                (t or {}).get("dataset_synthetic") for t in (self.provenance.get("training") or {}).values()
            )
        )
        if self.synthetic:
            self.benchmark = SYNTHETIC  # never beside the paper's numbers as a benchmark
        self.overlaps = self.info.get("split_overlap") or _recheck_overlap(
            self.sources, sorted(scored), self.summary["dataset"]
        )
        self.marks = (["synthetic fixture"] if self.synthetic else []) + (
            ["⚠ trained on evaluated items"] if self.overlaps else []
        )


def run_provenance(info: dict, summary: dict, sources: dict) -> dict:
    """The run's recorded provenance (``run.json``), completed for runs made before it was recorded."""
    recorded = dict(info.get("provenance") or {})
    dataset = summary.get("dataset") or {}
    recorded.setdefault(
        "dataset",
        {
            "path": dataset.get("path"),
            "format": dataset.get("format"),
            "num_records": None,
            "split_manifest": dataset.get("split_manifest"),
            "split": dataset.get("split"),
            "synthetic": is_synthetic(dataset.get("path")),
        },
    )
    recorded.setdefault("decoding", None)
    recorded.setdefault("training", {role: training_summary(src) for role, src in (sources or {}).items()})
    recorded.setdefault("sd_model_synthetic", is_synthetic((info.get("diffusion") or {}).get("model")))
    return recorded


def _recheck_overlap(sources: dict, scored_ids: list[str], dataset: dict) -> dict | None:
    """Overlap of the scored items with each source's training records (runs made before generate
    checked it)."""
    found = {}
    for role, source in (sources or {}).items():
        overlap = split_overlap(source, scored_ids, dataset.get("format"), dataset.get("path") or "")
        if overlap:
            found[role] = overlap
    return found or None


def _fell_back(item: dict) -> bool:
    """An item whose refined prompt fell back to the raw instruction (older manifests: same text)."""
    if "prompt_fallback" in item:
        return bool(item["prompt_fallback"])
    return item.get("prompt_origin") == "mllm" and item.get("positive") == item.get("instruction")


def fallback_cell(run: ScoredRun) -> str:
    if not run.refined_items:
        return "n/a (raw instruction)"
    cell = f"{run.fallbacks} / {run.refined_items}"
    return f"**{cell} ⚠**" if run.fallbacks else cell


def fallback_warnings(runs: list[ScoredRun]) -> str | None:
    """One loud line per run whose refinement fell back for some items."""
    lines = [
        f"> **WARNING: {r.fallbacks} of {r.refined_items} items of `{r.label}` fell back to the raw "
        "instruction** (the MLLM's answer could not be parsed): those items were edited with the "
        "instruction as the prompt, so this row partly measures the raw instruction, not refined prompts. "
        f"The warnings are in `{r.folder}/items/*.json` (`refinement_warning`)."
        for r in runs
        if r.fallbacks
    ]
    return "\n>\n".join(lines) if lines else None


def _fmt(value) -> str:
    if value is None:
        return NOT_RUN
    return f"{value:.4f}"


def _header(metrics=CORE) -> str:
    return " | ".join(f"{DISPLAY_NAMES[m]} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in metrics)


def _unique_labels(runs: list[ScoredRun]) -> None:
    """Runs of the same method on the same benchmark get their folder name appended; a run on a
    synthetic fixture, or whose checkpoint trained on its items, carries that mark in every table."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for run in runs:
        counts[(run.benchmark, run.method)] += 1
    for run in runs:
        if counts[(run.benchmark, run.method)] > 1:
            run.label = f"{run.method} ({run.folder.name})"
        if run.marks:
            run.label += f" [{'; '.join(run.marks)}]"


def table1(runs: list[ScoredRun]) -> str:
    """Rows = methods (ours, then reported), column groups = benchmarks, like the paper's Table 1."""
    benchmarks = [b for b in BENCHMARKS if any(r.benchmark == b for r in runs)]
    with_paper = bool(benchmarks)  # the paper's rows only beside runs on the paper's benchmarks
    benchmarks += sorted({r.benchmark for r in runs} - set(BENCHMARKS))
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
    for method, values in REPORTED_TABLE1.items() if with_paper else ():
        cells = []
        for b in benchmarks:
            cells += [_fmt(values.get(b, {}).get(m)) for m in CORE]
        lines.append(f"| {method} (reported, paper Table 1) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _source_cell(source: dict | None, letter: str | None) -> str:
    if not source or not letter:
        return "—"
    path = Path(source.get("checkpoint") or source.get("mllm") or "?")
    name = f"{path.parent.name}/{path.name}" if path.name in ("checkpoint", "model") else path.name
    return f"{letter} (`{name}`, {source.get('variant') or 'no checkpoint'})"


def table2(runs: list[ScoredRun], benchmark: str) -> str | None:
    """Table 2 layout for one benchmark: our runs that are Table 2 rows (from their recorded sources),
    in the paper's order, with fallback counts; the paper's rows beside HumanEdit's."""
    ours = sorted(
        (r for r in runs if r.benchmark == benchmark and r.row is not None),
        key=lambda r: ROW_ORDER[r.row.exp],
    )
    if not ours:
        return None
    lines = [
        "| Exp. | T_opt | v_insight | T_opt training | v_insight training | "
        + _header()
        + " | Fell back to the instruction |",
        "|---" * 10 + "|",
    ]
    for run in ours:
        row = run.row
        cells = [_fmt(run.summary["overall"].get(m)) for m in CORE]
        lines.append(
            f"| **{row.exp}** (ours, measured: `{run.label}`) | {'✓' if row.t_opt else '—'} | "
            f"{'✓' if row.v_insight else '—'} | {_source_cell(run.sources.get('prompt'), row.t_opt)} | "
            f"{_source_cell(run.sources.get('insight'), row.v_insight)} | "
            + " | ".join(cells)
            + f" | {fallback_cell(run)} |"
        )
    if benchmark == "humanedit":
        for exp, t_opt, v_ins, t_train, v_train, values in REPORTED_TABLE2:
            cells = [_fmt(values.get(m)) for m in CORE]
            lines.append(
                f"| {exp} (reported, paper Table 2) | {t_opt} | {v_ins} | {t_train} | {v_train} | "
                + " | ".join(cells)
                + " | — |"
            )
    return "\n".join(lines)


def _setting(diffusion: dict, key: str) -> str:
    value = diffusion.get(key)
    return "—" if value is None else str(value)


def settings_section(runs: list[ScoredRun]) -> str:
    """How every run was generated: the diffusion settings, the seed and the MLLM sources."""
    lines = [
        "| Run | Resolution | Steps | Guidance | IP-Adapter scale | Strength (img2img / inpaint) | Seed "
        "| Max new tokens | Prompts from | v_insight from |",
        "|---" * 10 + "|",
    ]
    for run in runs:
        d = run.info.get("diffusion") or {}
        adapter = (
            f"{_setting(d, 'ipadapter_scale')} (`{Path(d['ipadapter']).name}`)"
            if d.get("ipadapter")
            else "none"
        )
        lines.append(
            f"| {run.label} | {_setting(d, 'resolution')} px | {_setting(d, 'steps')} | "
            f"{_setting(d, 'guidance_scale')} | {adapter} | {_setting(d, 'strength')} / "
            f"{_setting(d, 'inpaint_strength')} | {run.info.get('seed')} | {run.info.get('max_new_tokens') or 'default'} | "
            f"{_source_text(run.sources.get('prompt'))} | {_source_text(run.sources.get('insight'))} |"
        )
    return "\n".join(lines)


def _source_text(source: dict | None) -> str:
    if not source:
        return "—"
    checkpoint = f"`{source['checkpoint']}`" if source.get("checkpoint") else "no checkpoint"
    return f"{checkpoint} (variant {source.get('variant') or '—'}) on `{Path(source['mllm']).name}`"


def _num(value, fmt: str = "{}") -> str:
    return "—" if value is None else fmt.format(value)


def _short_hash(value: str | None) -> str:
    return f"`{value[:12]}`" if value else "—"


def provenance_section(runs: list[ScoredRun]) -> str:
    """Per run: the evaluated data (path, size, split manifest and its sha256), the MLLM's decoding,
    and per source checkpoint its training (seed, steps, lr, data and size, split and its sha256)."""
    lines = [
        "| Run | Evaluated data (records) | Split manifest (sha256) | MLLM decoding | Source | Checkpoint "
        "| Train seed | Steps | lr | Trained on (records) | Train split (sha256) |",
        "|---" * 11 + "|",
    ]
    for run in runs:
        prov = run.provenance
        data = prov.get("dataset") or {}
        partial = partial_copy_note(data)
        data_cell = (
            f"`{data.get('path')}` ({_num(data.get('num_records'))}{'; ' + partial if partial else ''})"
        )
        if data.get("synthetic"):
            data_cell += " **synthetic fixture**"
        split_cell = (
            f"`{Path(data['split_manifest']).name}` / {data.get('split')} ({_short_hash(data.get('split_manifest_sha256'))})"
            if data.get("split_manifest")
            else "none (whole dataset)"
        )
        dec = prov.get("decoding")
        dec_cell = (
            f"{dec['mode']}, max {dec['max_new_tokens']} new tokens" if dec else "— (no MLLM or not recorded)"
        )
        training = prov.get("training") or {}
        roles = [role for role in ("prompt", "insight") if run.sources.get(role)] or [None]
        for role in roles:
            t = training.get(role) if role else None
            source = run.sources.get(role) if role else None
            if t and t.get("known"):
                train_cells = [
                    _num(t.get("seed")),
                    _num(t.get("steps")),
                    _num(t.get("lr"), "{:g}"),
                    f"`{t.get('dataset')}` ({_num(t.get('num_trained'))} of {_num(t.get('dataset_size'))})"
                    + (" synthetic" if t.get("dataset_synthetic") else ""),
                    f"`{Path(str(t.get('split'))).name}` / {t.get('subset') or '—'} ({_short_hash(t.get('split_sha256'))})",
                ]
            else:
                train_cells = ["—", "—", "—", "not recorded", "—"] if source else ["—"] * 5
            checkpoint = (source or {}).get("checkpoint") or (source or {}).get("mllm")
            lines.append(
                f"| {run.label} | {data_cell} | {split_cell} | {dec_cell} | {role or '—'} | "
                f"{'`' + str(checkpoint) + '`' if checkpoint else '—'} | " + " | ".join(train_cells) + " |"
            )
    return "\n".join(lines)


def provenance_warnings(runs: list[ScoredRun]) -> str | None:
    """Loud lines for runs on synthetic fixtures and runs whose checkpoint trained on their items."""
    lines = []
    for run in runs:
        if run.synthetic:
            lines.append(
                f"> **SYNTHETIC FIXTURE: `{run.label}`** ran on generated test data or a tiny random model "
                "(marked `SYNTHETIC_FIXTURE.txt`): its numbers say nothing about the method and are not "
                "shown beside the paper's."
            )
        for role, o in (run.overlaps or {}).items():
            lines.append(
                f"> **WARNING: train/test overlap in `{run.label}`**: the {role} checkpoint `{o['checkpoint']}` "
                f"was {o['how']}, including {o['count']} of the {o['of']} evaluated items: these scores are "
                "partly measured on training data."
            )
    return "\n>\n".join(lines) if lines else None


def results_json(runs: list[ScoredRun]) -> dict:
    """``results.json``: every number of the report with its full provenance."""
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": [
            {
                "label": run.label,
                "folder": str(run.folder),
                "method": run.summary["method"],
                "benchmark": run.benchmark,
                "synthetic_fixture": run.synthetic,
                "table2_row": run.row.exp if run.row else None,
                "overall": run.summary.get("overall"),
                "by_type": run.summary.get("by_type"),
                "scored": run.summary.get("scored"),
                "selected": run.summary.get("selected"),
                "fell_back": {"items": run.fallbacks, "of": run.refined_items},
                "split_overlap": run.overlaps,
                "provenance": run.provenance,
                "sources": run.sources,
                "generation": {
                    k: run.info.get(k) for k in ("seed", "diffusion", "max_new_tokens", "versions")
                },
                "conventions": run.summary.get("conventions"),
            }
            for run in runs
        ],
        "reported": {
            "note": "the MIND-Edit paper's numbers (its own split and settings), not measured here",
            "table1": REPORTED_TABLE1,
            "table2": [list(row[:5]) + [row[5]] for row in REPORTED_TABLE2],
        },
    }


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
        "| Run | Method (prompt, image embedding) | Table 2 row | Dataset | Scored / selected | Missing results "
        "| Fell back to the instruction | Folder |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary
        spec = s["method"]
        lines.append(
            f"| {run.label} | {spec['name']} ({spec['prompt']}, {spec['image_embed']}) | "
            f"{run.row.exp if run.row else '—'} | {benchmark_title(run.benchmark)} | {s['scored']} / {s['selected']} "
            f"| {len(s.get('missing', []))} | {fallback_cell(run)} | `{run.folder}` |"
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
    ]
    for warnings in (provenance_warnings(runs), fallback_warnings(runs)):
        if warnings:
            parts.append(warnings)
    collapse_warnings, insight_table = insight_section(runs)
    if collapse_warnings:
        parts.append(collapse_warnings)
    parts += ["## Results (paper Table 1 layout)", table1(runs)]
    if insight_table:
        parts += [
            "## v_insight input dependence (beside CLIP-I, which cannot see a collapsed head)",
            insight_table,
        ]
    for benchmark in sorted({r.benchmark for r in runs}):
        ablation = table2(runs, benchmark)
        if ablation:
            parts += [f"## Ablations (paper Table 2 layout, {benchmark_title(benchmark)})", ablation]
    parts += [
        "## Per edit type",
        per_type_table(runs),
        "## Runs",
        runs_section(runs),
        "## Generation settings",
        settings_section(runs),
        "## Provenance (data, decoding, training of each checkpoint)",
        provenance_section(runs),
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
    (out_dir / RESULTS_FILE).write_text(
        json.dumps(results_json(runs), indent=1, default=str) + "\n", encoding="utf-8"
    )
    return report
