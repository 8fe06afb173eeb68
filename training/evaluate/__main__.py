"""Command line: ``python -m training.evaluate generate|score|report`` (see docs/EVALUATION.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

from .conditioning import IMAGE_EMBED_SOURCES, PRESETS, PROMPT_SOURCES


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="edit every item of a split with one method (resumable)")
    d = p.add_argument_group("data")
    d.add_argument(
        "--data", required=True, help="local dataset: HumanEdit snapshot, parquet, or JSONL/folder"
    )
    d.add_argument("--format", default="humanedit", choices=("humanedit", "complex_multistep", "jsonl"))
    d.add_argument("--split-manifest", help="split manifest JSON (training/splits/humanedit.json)")
    d.add_argument("--split", default="test", choices=("train", "test", "unused"))
    d.add_argument("--ids", nargs="*", help="only these item ids")
    d.add_argument("--limit", type=int, help="only the first N selected items")
    d.add_argument("--mask-polarity", choices=("white_is_edit", "black_is_edit", "auto"))
    d.add_argument("--column-map", nargs="*", help="role=column entries (complex_multistep)")
    d.add_argument("--no-masks", action="store_true", help="ignore masks: every edit mask-free (img2img)")
    m = p.add_argument_group("method")
    m.add_argument("--out", required=True, help="run folder (one method); reused to resume")
    m.add_argument(
        "--method", default="mind_edit", choices=sorted(PRESETS), help="preset (default mind_edit)"
    )
    m.add_argument("--prompt", choices=PROMPT_SOURCES, help="override the preset's prompt source")
    m.add_argument("--image-embed", choices=IMAGE_EMBED_SOURCES, help="override the preset's image embedding")
    m.add_argument("--name", help="method label in the report (default: the preset name)")
    m.add_argument("--seed", type=int, default=0, help="base seed; each item's seed also depends on its id")
    s = p.add_argument_group("diffusion")
    s.add_argument("--sd-model", required=True, help="SD1.5 diffusers folder, or a single .safetensors file")
    s.add_argument(
        "--single-file-config", help="local diffusers SD1.5 folder used as config= for a single file"
    )
    s.add_argument("--ipadapter", help="IP-Adapter file (ip-adapter_sd15 / ip-adapter-plus_sd15)")
    s.add_argument("--ipadapter-scale", type=float, default=1.0)
    s.add_argument(
        "--ipadapter-backend",
        default="mindedit",
        choices=("mindedit", "diffusers"),
        help="our IP-Adapter processors (the nodes' math, default) or diffusers' own",
    )
    s.add_argument("--steps", type=int, default=50)
    s.add_argument("--guidance-scale", type=float, default=7.5)
    s.add_argument("--strength", type=float, default=0.75, help="img2img strength (mask-free items)")
    s.add_argument("--inpaint-strength", type=float, default=1.0, help="inpainting strength (masked items)")
    s.add_argument("--resolution", type=int, default=512)
    s.add_argument("--device", help="default: accelerate's device, else cuda if available, else cpu")
    s.add_argument("--dtype", default=None, help="float16 on CUDA by default, float32 on the CPU")
    g = p.add_argument_group("MLLM / encoders")
    g.add_argument("--mllm", help="local LLaVA-OneVision folder")
    g.add_argument("--checkpoint", help="MIND-Edit checkpoint folder (vision head, optional LoRA)")
    g.add_argument("--max-new-tokens", type=int)
    g.add_argument("--image-encoder", help="CLIP vision encoder folder (ipadapter baseline)")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failing item")


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="compute CLIP-I / LPIPS / PSNR / SSIM for generated runs")
    p.add_argument("--run", nargs="+", required=True, help="run folder(s) written by generate")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--metrics", nargs="+", default=["clip_i", "lpips", "psnr", "ssim"])
    p.add_argument("--clip-model", help="local CLIP folder (default model: openai/clip-vit-base-patch32)")
    p.add_argument("--lpips-backbone", default="alex", choices=("alex", "vgg"))
    p.add_argument("--lpips-backbone-file", help="torchvision alexnet/vgg16 state dict (.pth/.safetensors)")
    p.add_argument("--lpips-heads-file", help="LPIPS linear heads (default: the lpips package's copy)")
    p.add_argument("--masked", action="store_true", help="also PSNR/SSIM inside and outside the edit mask")
    p.add_argument("--thumbs", type=int, default=6, help="items to keep thumbnails of for the report grid")
    p.add_argument("--data", help="override the dataset path recorded in run.json (moved dataset)")
    p.add_argument("--device", default="cpu")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="Markdown report + plots from scored runs")
    p.add_argument("--runs", nargs="+", required=True, help="scored run folders")
    p.add_argument("--out", required=True, help="report folder (report.md, plots/)")
    p.add_argument("--title", default="MIND-Edit evaluation")
    p.add_argument("--grid-items", type=int, default=4)


def cmd_generate(args) -> int:
    import torch

    from training.data import parse_column_map

    from .conditioning import Conditioner, MethodSpec, SourceClipEncoder
    from .generate import make_run_info, run_generate, shard_from_environment
    from .pipelines import DiffusionSettings, EditPipelines
    from .selection import DatasetSelection, load_selection

    base = PRESETS[args.method]
    method = MethodSpec(
        name=args.name or (args.method if not (args.prompt or args.image_embed) else "custom"),
        prompt=args.prompt or base.prompt,
        image_embed=args.image_embed or base.image_embed,
    )
    shard, accel_device = shard_from_environment()
    device = args.device or accel_device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("float16" if device.startswith("cuda") else "float32")
    if method.needs_adapter and not args.ipadapter:
        print(
            f"error: method {method.name!r} uses an image embedding: pass --ipadapter FILE.", file=sys.stderr
        )
        return 2
    diffusion = DiffusionSettings(
        model=args.sd_model,
        single_file_config=args.single_file_config,
        ipadapter=args.ipadapter if method.needs_adapter else None,
        ipadapter_scale=args.ipadapter_scale,
        ipadapter_backend=args.ipadapter_backend,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        strength=args.strength,
        inpaint_strength=args.inpaint_strength,
        resolution=args.resolution,
        device=device,
        dtype=dtype,
    )
    selection = DatasetSelection(
        format=args.format,
        path=args.data,
        split_manifest=args.split_manifest,
        split=args.split,
        ids=args.ids,
        limit=args.limit,
        mask_polarity=args.mask_polarity,
        column_map=parse_column_map(args.column_map),
        use_masks=not args.no_masks,
    )
    records = load_selection(selection)
    mllm = None
    if args.mllm and (method.prompt == "refined" or method.image_embed == "insight"):
        from mindedit_core.mllm import load_mllm

        mllm = load_mllm(args.mllm, checkpoint_dir=args.checkpoint, device=device)
    encoder = None
    if method.image_embed == "source_clip":
        if not args.image_encoder:
            print("error: the ipadapter baseline needs --image-encoder DIR (CLIP vision).", file=sys.stderr)
            return 2
        from mindedit_core.ipadapter import load_ipadapter

        encoder = SourceClipEncoder(
            args.image_encoder, kind=load_ipadapter(args.ipadapter).kind, device=device
        )
    conditioner = Conditioner(method, mllm=mllm, source_encoder=encoder, max_new_tokens=args.max_new_tokens)
    edit = EditPipelines(diffusion)
    run_info = make_run_info(
        method,
        diffusion.to_json(),
        selection.to_json(),
        args.seed,
        extra={"pipelines": edit.describe(), "mllm": args.mllm, "checkpoint": args.checkpoint},
    )
    stats = run_generate(
        records,
        edit,
        conditioner,
        args.out,
        run_info=run_info,
        seed=args.seed,
        shard=shard,
        stop_on_error=args.stop_on_error,
    )
    print(
        f"[rank {shard.index}/{shard.count}] {len(stats.done)} edited, {len(stats.skipped)} already done, "
        f"{len(stats.failed)} failed -> {args.out}"
    )
    if stats.failed:
        print(f"Failed items are listed in {args.out}/failures.rank{shard.index}.jsonl", file=sys.stderr)
        return 1
    return 0


def cmd_score(args) -> int:
    from .run_files import read_run
    from .score import ScoreSettings, score_run
    from .selection import DatasetSelection

    settings = ScoreSettings(
        resolution=args.resolution,
        metrics=tuple(args.metrics),
        clip_model=args.clip_model,
        lpips_backbone=args.lpips_backbone,
        lpips_backbone_file=args.lpips_backbone_file,
        lpips_heads_file=args.lpips_heads_file,
        masked=args.masked,
        thumbs=args.thumbs,
        device=args.device,
    )
    lpips_model = clip_scorer = None
    for run in args.run:
        selection = DatasetSelection.from_json(read_run(run)["dataset"])
        if args.data:
            selection = replace(selection, path=args.data)
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
        print(f"{run}: {summary['scored']}/{summary['selected']} scored; {overall}")
    return 0


def cmd_report(args) -> int:
    from .report import build_report

    path = build_report(args.runs, args.out, title=args.title, grid_items=args.grid_items)
    print(f"Report written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_score(sub)
    _add_report(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    handlers = {"generate": cmd_generate, "score": cmd_score, "report": cmd_report}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        # Errors users can fix (missing files, wrong options, a run folder with other settings): one
        # clear line instead of a traceback; -v shows the traceback too.
        if args.verbose:
            raise
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
