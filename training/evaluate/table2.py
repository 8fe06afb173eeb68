"""``python -m training.evaluate table2``: the paper's Table 2 (rows #1-#6) from three checkpoints, and
Table 1 for the methods given, in one command: generate every row (resumable), score, report.

    python -m training.evaluate table2 --data DIR --format humanedit --split-manifest M \\
        --sd-model SD15 --ipadapter ip-adapter_sd15.safetensors --mllm BASE \\
        --joint runs/joint --text-only runs/text_only --head-only runs/head_only \\
        --clip-model CLIP --lpips-backbone-file alexnet.pth --out runs/table2 [--baselines sd15 ipadapter]

Each checkpoint is a checkpoint folder or a ``training.train`` output folder; its recorded variant
must match its role (``--text-only`` a ``text_only`` checkpoint, ...). Runs go to ``<out>/exp1`` ...
``<out>/exp6`` (and ``<out>/<baseline>``), the report to ``<out>/report/report.md``. Models are
loaded once and shared by the rows (at most two MLLMs at a time).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from .ablation_rows import RUN_ORDER, TABLE2_ROWS, Table2Row
from .cli_generate import add_data_arguments, add_diffusion_arguments, add_mllm_arguments
from .cli_score import add_score_arguments
from .conditioning import PRESETS, MethodSpec

ROLE_FLAGS = {"joint": "--joint", "text_only": "--text-only", "head_only": "--head-only"}
BASELINES = ("sd15", "ipadapter")


def add_table2_parser(sub) -> None:
    p = sub.add_parser("table2", help="Table 2 rows #1-#6 from three checkpoints (+ Table 1 baselines)")
    add_data_arguments(p)
    c = p.add_argument_group("checkpoints (a checkpoint folder or a training output folder each)")
    c.add_argument("--joint", required=True, help="the jointly trained model (variant joint)")
    c.add_argument("--text-only", dest="text_only", required=True, help="independent T_opt model (text_only)")
    c.add_argument(
        "--head-only", dest="head_only", required=True, help="independent v_insight model (head_only)"
    )
    r = p.add_argument_group("rows and output")
    r.add_argument("--out", required=True, help="folder for the runs (exp1 ... exp6) and report/")
    r.add_argument("--rows", nargs="+", type=int, choices=range(1, 7), help="only these rows (default 1-6)")
    r.add_argument("--baselines", nargs="*", default=[], choices=BASELINES, help="Table 1 baselines to add")
    r.add_argument("--title", default="MIND-Edit Tables 1 and 2")
    r.add_argument("--grid-items", type=int, default=4)
    add_diffusion_arguments(p)
    add_mllm_arguments(p)
    add_score_arguments(p)


def check_roles(args: argparse.Namespace) -> dict:
    """The three sources, each checked to record the variant its role needs."""
    from .sources import resolve_source

    sources = {}
    for role, flag in ROLE_FLAGS.items():
        source = resolve_source(getattr(args, role), args.mllm)
        if source.variant != role:
            raise ValueError(
                f"{flag} {getattr(args, role)} records variant {source.variant!r}, but {flag} needs a {role!r} "
                f"checkpoint (train it with `python -m training.train --config {role} ...`)."
            )
        sources[role] = source
    return sources


def _row_args(args: argparse.Namespace, row: Table2Row) -> tuple[argparse.Namespace, MethodSpec]:
    ns = copy.copy(args)
    ns.out = str(Path(args.out) / row.slug)
    ns.checkpoint = None
    ns.prompt_checkpoint = getattr(args, row.prompt_from) if row.prompt_from else None
    ns.insight_checkpoint = getattr(args, row.insight_from) if row.insight_from else None
    method = MethodSpec(
        name=f"table2 {row.exp}",
        prompt="refined" if row.prompt_from else "raw",
        image_embed="insight" if row.insight_from else "none",
    )
    return ns, method


def cmd_table2(args: argparse.Namespace) -> int:
    import torch

    from .cli_generate import apply_speed_preset, generate_one
    from .cli_score import score_runs
    from .report import build_report
    from .score import ScoreSettings
    from .sources import MLLMCache

    apply_speed_preset(args)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ScoreSettings(metrics=tuple(args.metrics), clip_model=args.clip_model)  # fail before generating
    if not args.ipadapter:
        print("error: rows #2-#6 feed v_insight to an IP-Adapter: pass --ipadapter FILE.", file=sys.stderr)
        return 2
    check_roles(args)
    wanted = {f"#{n}" for n in (args.rows or range(1, 7))}
    by_exp = {row.exp: row for row in TABLE2_ROWS}
    rows = [by_exp[e] for e in RUN_ORDER if e.split()[0] in wanted]
    mllms, pipelines = MLLMCache(device=args.device), {}
    folders, worst = [], 0
    for row in rows:
        ns, method = _row_args(args, row)
        print(f"== Table 2 {row.exp}: T_opt {row.prompt_from or '-'}, v_insight {row.insight_from or '-'}")
        code = generate_one(ns, method, mllms=mllms, pipelines=pipelines, extra={"table2_row": row.exp})
        if code == 2:
            return 2
        worst = max(worst, code)
        folders.append(Path(ns.out))
    for name in args.baselines:
        ns = copy.copy(args)
        ns.out, ns.checkpoint = str(Path(args.out) / name), None
        ns.prompt_checkpoint = ns.insight_checkpoint = None
        print(f"== Table 1 baseline {name}")
        code = generate_one(ns, PRESETS[name], mllms=mllms, pipelines=pipelines)
        if code == 2:
            return 2
        worst = max(worst, code)
        folders.append(Path(ns.out))
    folders.sort(key=lambda f: f.name)
    score_runs(args, folders)
    report = build_report(folders, Path(args.out) / "report", title=args.title, grid_items=args.grid_items)
    print(f"Report written to {report} ({len(rows)} Table 2 rows, {len(args.baselines)} baselines).")
    return worst
