"""Learning benchmark: does the trained vision head's ``v_insight`` depend on the edit? (CPU, minutes)

    .venv/bin/python -m bench.bench_learning [--families qwen2_5_vl llava_onevision] [--seeds 0 1 2]
        [--steps 200] [--pools user_turn prompt] [--variants joint head_only joint:head_warmup_steps=100]
        [--work .cache/bench_learning]
    .venv/bin/python -m bench.bench_learning --merge runA/results.json runB/results.json   # one table


A synthetic edit dataset (four edit kinds: recolour, move, remove, add; `bench.learning_setup`), split
with the package's split tool, targets from a fixed stand-in encoder through `training.build_targets`,
the tiny fixtures of each family, and `training.train` itself (fp32, batch 8, the preset's objective
CE + 2 (1 - cos)). Everything is reported on the held-out records: the trained head against the
baselines (mean target, source embedding, label oracle, ridge probe on frozen layer-m states), its
input dependence (spread = mean 1 - pairwise cos of the outputs, cos to the mean target, collapse
flag) and each variant against head_only paired by seed, mean +- standard error over the seeds. ``--pools prompt`` is the head
design before the fix (pooling over the whole prompt). Prints a Markdown table and writes
``<work>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.learning_setup import (  # noqa: E402
    FAMILIES,
    frozen_states,
    model_folder,
    prepare,
    ridge_probe,
    simple_baselines,
    train_head_frozen,
)

TRAIN_DEFAULTS = dict(
    data_format="jsonl",
    precision="fp32",
    batch_size=8,
    grad_accum=1,
    lr=5e-4,  # LoRA
    head_lr=3e-3,
    lambda_embed=2.0,
    lora_r=8,
    lora_alpha=16,
    lora_dropout=0.0,
    gradient_checkpointing=False,
    use_mask=False,
    max_side=None,
    warmup_ratio=0.05,
    scheduler="cosine",
    eval_every=0,
    save_every=100000,
    resume="never",
    log_every=50,
    progress=False,
    tensorboard=False,
)


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``joint`` or ``joint:head_warmup_steps=100,lr=1e-4`` -> (label, variant, its own options)."""
    from training.config import _coerce

    variant, _, options = text.partition(":")
    if variant not in ("joint", "head_only"):
        raise argparse.ArgumentTypeError(f"{text!r}: the variant must be joint or head_only")
    own = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{text!r}: options are KEY=VALUE, comma-separated")
        own[key] = _coerce(value)
    return text, variant, own


def train_once(
    bench, family: str, variant: str, pool: str, seed: int, steps: int, label: str | None = None, **overrides
) -> dict:
    """One `training.train` run; returns its final held-out check (cos, spread, collapse...)."""
    from training.config import build_config
    from training.train import train

    name = (label or variant).replace(":", "-").replace(",", "-").replace("=", "")
    out = bench.work / "runs" / f"{family}-{name}-{pool}-seed{seed}"
    values = dict(TRAIN_DEFAULTS)
    values.update(
        model=str(model_folder(family)),
        data=str(bench.data),
        split=str(bench.split),
        targets=str(bench.targets),
        output_dir=str(out),
        variant=variant,
        head_pool=pool,
        seed=seed,
        max_steps=steps,
        eval_records=len(bench.test_ids),
    )
    values.update(overrides)
    started = time.perf_counter()
    result = train(build_config(None, [], **values))
    check = dict(result.checks[-1])
    check["seed"] = seed
    check["seconds"] = time.perf_counter() - started
    check["on"] = result.eval_where
    return check


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def fmt(values: list[float], digits: int = 3) -> str:
    mean, se = mean_se(values)
    return f"{mean:+.{digits}f}" if math.isnan(se) else f"{mean:+.{digits}f} ± {se:.{digits}f}"


def fmt_small(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{mean:.2e}" if math.isnan(se) else f"{mean:.2e} ± {se:.1e}"


def _run_row(family: str, label: str, runs: list[dict]) -> str:
    ce = [r["ce"] for r in runs if r.get("ce") is not None]
    return (
        f"| {family} | {label}, {len(runs)} seeds | {fmt([r['cos'] for r in runs])} | "
        f"{fmt_small([r['spread'] for r in runs])} | {fmt([r['cos_to_mean_target'] for r in runs])} | "
        f"{sum(r['collapsed'] for r in runs)}/{len(runs)} | {fmt(ce).lstrip('+') if ce else ''} |"
    )


def table(results: dict) -> str:
    rows = [
        "| fixture | what (held out) | cos | spread | cos to mean target | collapsed | answer CE |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, res in results["families"].items():
        for name, value in res["baselines"].items():
            rows.append(f"| {family} | {name} | {value:+.3f} | | | | |")
        for pool, probe in res["probes"].items():
            rows.append(
                f"| {family} | ridge probe on frozen layer-m states, mean over {pool} "
                f"(λ={probe['strength']:g}) | {probe['cos']:+.3f} | | | | |"
            )
        for pool, runs in res.get("frozen", {}).items():
            before = " (before the fix)" if pool == "prompt" else ""
            rows.append(_run_row(family, f"head alone on frozen states, pool={pool}{before}", runs))
        end2end = res.get("end2end", {})
        for key, runs in end2end.items():
            label, pool = key.rsplit("/", 1)
            before = " (before the fix)" if pool == "prompt" else ""
            rows.append(_run_row(family, f"training.train {label}, pool={pool}{before}", runs))
        for key, runs in end2end.items():
            label, pool = key.rsplit("/", 1)
            alone = end2end.get(f"head_only/{pool}")
            if label != "head_only" and alone and len(runs) == len(alone):
                diffs = [a["cos"] - b["cos"] for a, b in zip(runs, alone)]
                rows.append(
                    f"| {family} | {label} − head_only, paired by seed, pool={pool} | {fmt(diffs)} | | | | |"
                )
    return "\n".join(rows)


def _with_set_options(key: str, train: dict) -> str:
    """``joint/user_turn`` -> ``joint:lr=0.0001/user_turn`` when that run's ``--set`` changed the lr."""
    label, pool = key.rsplit("/", 1)
    changed = ",".join(
        f"{k}={v}"
        for k, v in sorted(train.items())
        if TRAIN_DEFAULTS.get(k, v) != v or k not in TRAIN_DEFAULTS
    )
    if not changed:
        return key
    return f"{label}{',' if ':' in label else ':'}{changed}/{pool}"


def merge_results(paths: list[Path]) -> dict:
    """One report from several ``results.json`` (e.g. seeds run in parallel, one work folder each): the
    baselines and probes of the first, every tier's runs pooled by family and key, sorted by seed."""
    merged: dict | None = None
    for path in paths:
        results = json.loads(Path(path).read_text())
        if merged is None:
            merged = {**results, "families": {}, "merged_from": []}
        merged["merged_from"].append(
            {"path": str(path), "command": results.get("command"), "date": results.get("date")}
        )
        for family, res in results["families"].items():
            into = merged["families"].setdefault(
                family, {"baselines": res["baselines"], "probes": res["probes"]}
            )
            for tier in ("frozen", "end2end"):
                for key, runs in res.get(tier, {}).items():
                    if tier == "end2end":
                        key = _with_set_options(key, results.get("train", {}))
                    for index, run in enumerate(runs):
                        run = {
                            **run,
                            "seed": run.get("seed", results["seeds"][index % len(results["seeds"])]),
                        }
                        into.setdefault(tier, {}).setdefault(key, []).append(run)
    if merged is None:
        raise ValueError("--merge needs at least one results.json")
    for res in merged["families"].values():
        for tier in ("frozen", "end2end"):
            for runs in res.get(tier, {}).values():
                runs.sort(key=lambda run: run["seed"])
    merged["seeds"] = sorted(
        {
            run["seed"]
            for res in merged["families"].values()
            for tier in ("frozen", "end2end")
            for runs in res.get(tier, {}).values()
            for run in runs
        }
    )
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_learning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--tiers", nargs="+", default=["frozen", "end2end"], choices=("frozen", "end2end"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frozen-steps", type=int, default=600, help="head steps of the frozen tier")
    p.add_argument("--steps", type=int, default=200, help="training.train steps of the end2end tier")
    p.add_argument(
        "--pools",
        nargs="+",
        default=["user_turn", "prompt"],
        choices=("user_turn", "prompt"),
        help="frozen tier",
    )
    p.add_argument(
        "--end2end-pools",
        nargs="+",
        default=["user_turn"],
        choices=("user_turn", "prompt"),
        help="end2end tier",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=["joint", "head_only"],
        type=parse_variant,
        metavar="VARIANT[:KEY=VALUE,...]",
        help="end2end runs: joint | head_only, each optionally with its own training options, e.g. "
        "joint:head_warmup_steps=100 (applied after --set)",
    )
    p.add_argument("--work", default=str(REPO / ".cache" / "bench_learning"))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training option overrides")
    p.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="RESULTS_JSON",
        help="print one table from these results.json files (runs pooled by family and variant, sorted by "
        "seed) and write it to <work>/results.json; trains nothing",
    )
    args = p.parse_args(argv)
    if args.merge:
        merged = merge_results(args.merge)
        Path(args.work).mkdir(parents=True, exist_ok=True)
        (Path(args.work) / "results.json").write_text(json.dumps(merged, indent=1))
        print(table(merged))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from training.config import _coerce

    overrides = {k: _coerce(v) for k, _, v in (item.partition("=") for item in args.set)}
    bench = prepare(args.work)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m bench.bench_learning " + " ".join(argv if argv is not None else sys.argv[1:]),
        "frozen_steps": args.frozen_steps,
        "steps": args.steps,
        "seeds": args.seeds,
        "train": {**TRAIN_DEFAULTS, **overrides},
        "records": {"train": len(bench.train_ids), "test": len(bench.test_ids)},
        "families": {},
    }
    baselines = simple_baselines(bench)
    out = Path(args.work) / "results.json"
    for family in args.families:
        states = cached_states(bench, family)
        res = results["families"][family] = {
            "baselines": baselines,
            "probes": {pool: ridge_probe(bench, states.pooled(pool)) for pool in ("user_turn", "prompt")},
        }
        if "frozen" in args.tiers:
            for pool in args.pools:
                for seed in args.seeds:
                    started = time.perf_counter()
                    check = train_head_frozen(bench, states, pool=pool, seed=seed, steps=args.frozen_steps)
                    check["seconds"] = time.perf_counter() - started
                    res.setdefault("frozen", {}).setdefault(pool, []).append(check)
                    _say(family, f"frozen pool={pool} seed={seed}", check)
                    out.write_text(json.dumps(results, indent=1))
        if "end2end" in args.tiers:
            for pool in args.end2end_pools:
                for label, variant, own in args.variants:
                    for seed in args.seeds:
                        check = train_once(
                            bench,
                            family,
                            variant,
                            pool,
                            seed,
                            args.steps,
                            label=label,
                            **{**overrides, **own},
                        )
                        res.setdefault("end2end", {}).setdefault(f"{label}/{pool}", []).append(check)
                        _say(family, f"{label} pool={pool} seed={seed}", check)
                        out.write_text(json.dumps(results, indent=1))
    out.write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def cached_states(bench, family: str):
    """The frozen layer-m states of ``family``, computed once per work folder."""
    import torch

    path = bench.work / f"states-{family}.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    states = frozen_states(bench, family)
    torch.save(states, path)
    return states


def _say(family: str, what: str, check: dict) -> None:
    print(
        f"{family} {what}: cos {check['cos']:+.3f} spread {check['spread']:.2e} "
        f"collapsed={check['collapsed']} ({check['seconds']:.0f} s)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
