"""``python -m training.evaluate score``: its arguments and the scoring of several runs with the
metric models loaded once. The resolution defaults to the one each run was generated at (recorded in
its ``run.json``); another one is allowed but warned about, since it resizes the results."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def add_score_arguments(p: argparse.ArgumentParser, *, standalone: bool = False) -> None:
    """The scoring options; ``standalone`` (the ``score`` command) also spells them ``--resolution`` and
    ``--device`` (in ``table2`` those name the generation's)."""
    p.add_argument(
        *(("--resolution", "--score-resolution") if standalone else ("--score-resolution",)),
        dest="score_resolution",
        type=int,
        default=None,
        help="px both images are resized to (default: the resolution the run was generated at)",
    )
    p.add_argument("--metrics", nargs="+", default=["clip_i", "lpips", "psnr", "ssim"])
    p.add_argument("--clip-model", help="local CLIP folder (default model: openai/clip-vit-base-patch32)")
    p.add_argument("--lpips-backbone", default="alex", choices=("alex", "vgg"))
    p.add_argument("--lpips-backbone-file", help="torchvision alexnet/vgg16 state dict (.pth/.safetensors)")
    p.add_argument("--lpips-heads-file", help="LPIPS linear heads (default: the lpips package's copy)")
    p.add_argument("--masked", action="store_true", help="also PSNR/SSIM inside and outside the edit mask")
    p.add_argument("--thumbs", type=int, default=6, help="items to keep thumbnails of for the report grid")
    p.add_argument(
        *(("--device", "--score-device") if standalone else ("--score-device",)),
        dest="score_device",
        default="cpu",
        help="device of the metric models (default cpu)",
    )


def add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="compute CLIP-I / LPIPS / PSNR / SSIM for generated runs")
    p.add_argument("--run", nargs="+", required=True, help="run folder(s) written by generate")
    p.add_argument("--data", help="override the dataset path recorded in run.json (moved dataset)")
    add_score_arguments(p, standalone=True)


def score_resolution(run_info: dict, requested: int | None, run: str) -> int:
    """The resolution to score ``run`` at: the generation's unless told otherwise (then a warning)."""
    from .metrics import DEFAULT_RESOLUTION

    generated = (run_info.get("diffusion") or {}).get("resolution")
    if requested is None:
        return int(generated or DEFAULT_RESOLUTION)
    if generated is not None and int(generated) != requested:
        print(
            f"warning: {run} was generated at {generated} px; scoring it at {requested} px resizes its "
            f"results and targets (leave --resolution unset to score at {generated} px).",
            file=sys.stderr,
        )
    return requested


def score_runs(args: argparse.Namespace, runs: list, data: str | None = None) -> list[dict]:
    """Score every run folder; returns their summaries."""
    from .run_files import read_run
    from .score import ScoreSettings, score_run
    from .selection import DatasetSelection

    base = ScoreSettings(
        metrics=tuple(args.metrics),
        clip_model=args.clip_model,
        lpips_backbone=args.lpips_backbone,
        lpips_backbone_file=args.lpips_backbone_file,
        lpips_heads_file=args.lpips_heads_file,
        masked=args.masked,
        thumbs=args.thumbs,
        device=args.score_device or "cpu",
    )
    lpips_model = clip_scorer = None
    summaries = []
    for run in runs:
        info = read_run(run)
        settings = replace(base, resolution=score_resolution(info, args.score_resolution, str(run)))
        selection = DatasetSelection.from_json(info["dataset"])
        if data:
            selection = replace(selection, path=data)
        if lpips_model is None and "lpips" in settings.metrics:
            from .metrics import load_lpips

            lpips_model = load_lpips(
                settings.lpips_backbone,
                backbone_file=settings.lpips_backbone_file,
                heads_file=settings.lpips_heads_file,
                device=settings.device,
            )
        if clip_scorer is None and "clip_i" in settings.metrics:
            from .metrics import ClipImageScorer

            clip_scorer = ClipImageScorer.from_folder(settings.clip_model, device=settings.device)
        summary = score_run(
            run, settings, selection=selection, lpips_model=lpips_model, clip_scorer=clip_scorer
        )
        overall = ", ".join(f"{k}={v:.4f}" for k, v in summary["overall"].items() if isinstance(v, float))
        print(
            f"{run}: {summary['scored']}/{summary['selected']} scored at {settings.resolution} px; {overall}"
        )
        summaries.append(summary)
    return summaries


def cmd_score(args: argparse.Namespace) -> int:
    score_runs(args, args.run, data=args.data)
    return 0
