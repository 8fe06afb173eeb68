"""``python -m training.evaluate generate``: its arguments, the quick CPU preset, and one run.

The prompts and ``v_insight`` can come from different MLLM sources (``--prompt-checkpoint`` /
``--insight-checkpoint``, default ``--checkpoint``): Table 2's #3-#5 pair independently and jointly
trained checkpoints. `generate_one` is shared with the ``table2`` command, which passes its caches
so a model is loaded once for all rows.
"""

from __future__ import annotations

import argparse
import sys

from .conditioning import IMAGE_EMBED_SOURCES, PRESETS, PROMPT_SOURCES, MethodSpec
from .sources import MLLMCache, resolve_source

# Settings a preset may choose; an explicit flag always wins.
DEFAULTS = {"steps": 50, "resolution": 512, "max_new_tokens": None}
SPEED_PRESETS = {
    # Smoke runs on a CPU: the tiny test models edit an item in seconds instead of minutes. Not for
    # numbers to compare with the paper (it evaluates at 512 px with 50 steps).
    "quick": {"steps": 4, "resolution": 128, "max_new_tokens": 48},
}


def add_data_arguments(p: argparse.ArgumentParser) -> None:
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
    d.add_argument(
        "--allow-split-overlap",
        action="store_true",
        help="evaluate even when a checkpoint was trained on some of the selected items (refused by "
        "default); every report table then marks the run",
    )


def add_diffusion_arguments(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("diffusion")
    s.add_argument(
        "--sd-model",
        required=True,
        help="SD1.5 or SDXL diffusers folder (the family is read from its model_index.json), or a single .safetensors file",
    )
    s.add_argument(
        "--single-file-config",
        help="local diffusers SD1.5 / SDXL folder used as config= for a single file (its family decides the pipelines)",
    )
    s.add_argument(
        "--ipadapter",
        help="IP-Adapter file of the model's family: ip-adapter_sd15 / ip-adapter-plus_sd15, or for SDXL ip-adapter_sdxl_vit-h / ip-adapter-plus_sdxl_vit-h",
    )
    s.add_argument("--ipadapter-scale", type=float, default=1.0)
    s.add_argument(
        "--ipadapter-backend",
        default="mindedit",
        choices=("mindedit", "diffusers"),
        help="our IP-Adapter processors (the nodes' math, default) or diffusers' own",
    )
    s.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; quick preset 4)")
    s.add_argument("--guidance-scale", type=float, default=7.5)
    s.add_argument("--strength", type=float, default=0.75, help="img2img strength (mask-free items)")
    s.add_argument("--inpaint-strength", type=float, default=1.0, help="inpainting strength (masked items)")
    s.add_argument("--resolution", type=int, default=None, help="edit size, px (default 512; quick 128)")
    s.add_argument("--device", help="default: accelerate's device, else cuda if available, else cpu")
    s.add_argument("--dtype", default=None, help="float16 on CUDA by default, float32 on the CPU")
    s.add_argument(
        "--preset",
        choices=sorted(SPEED_PRESETS),
        help="quick: 4 steps, 128 px, 48 new tokens (CPU smoke runs; explicit flags still win)",
    )
    s.add_argument("--seed", type=int, default=0, help="base seed; each item's seed also depends on its id")
    s.add_argument("--stop-on-error", action="store_true", help="stop at the first failing item")
    s.add_argument("--no-progress", action="store_true", help="no progress bar / per-item lines")


def add_mllm_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MLLM / encoders")
    g.add_argument("--mllm", help="local LLaVA-OneVision folder (the base model)")
    g.add_argument("--checkpoint", help="MIND-Edit checkpoint (or training output) folder for both outputs")
    g.add_argument("--max-new-tokens", type=int)
    g.add_argument("--image-encoder", help="CLIP vision encoder folder (ipadapter baseline)")


def add_generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="edit every item of a split with one method (resumable)")
    add_data_arguments(p)
    m = p.add_argument_group("method")
    m.add_argument("--out", required=True, help="run folder (one method); reused to resume")
    m.add_argument(
        "--method", default="mind_edit", choices=sorted(PRESETS), help="preset (default mind_edit)"
    )
    m.add_argument("--prompt", choices=PROMPT_SOURCES, help="override the preset's prompt source")
    m.add_argument("--image-embed", choices=IMAGE_EMBED_SOURCES, help="override the preset's image embedding")
    m.add_argument("--name", help="method label in the report (default: the preset name)")
    add_diffusion_arguments(p)
    add_mllm_arguments(p)
    g = p.add_argument_group("separate sources (Table 2 #3-#5)")
    g.add_argument(
        "--prompt-checkpoint", help="checkpoint that writes the refined prompts (default --checkpoint)"
    )
    g.add_argument(
        "--insight-checkpoint", help="checkpoint whose head gives v_insight (default --checkpoint)"
    )


def apply_speed_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the settings left unset from ``--preset`` (or the full defaults)."""
    chosen = SPEED_PRESETS.get(getattr(args, "preset", None) or "", {})
    for key, default in DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, chosen.get(key, default))
    return args


def method_of(args: argparse.Namespace) -> MethodSpec:
    base = PRESETS[args.method]
    return MethodSpec(
        name=args.name or (args.method if not (args.prompt or args.image_embed) else "custom"),
        prompt=args.prompt or base.prompt,
        image_embed=args.image_embed or base.image_embed,
    )


def generate_one(
    args: argparse.Namespace,
    method: MethodSpec,
    *,
    mllms: MLLMCache | None = None,
    pipelines: dict | None = None,
    extra: dict | None = None,
) -> int:
    """One run folder for ``method`` (resumable). ``mllms`` / ``pipelines`` are caches shared across runs."""
    import torch

    from training.data import parse_column_map
    from training.data.synthetic import is_synthetic

    from .conditioning import Conditioner, SourceClipEncoder
    from .generate import make_run_info, run_generate, shard_from_environment
    from .pipelines import DiffusionSettings, EditPipelines
    from .provenance import check_split_overlap, dataset_provenance, decoding_of, training_summary
    from .selection import DatasetSelection, load_selection

    apply_speed_preset(args)
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
    data_stats: dict = {}
    records = load_selection(selection, data_stats)
    prompt_src = insight_src = None
    if args.mllm or getattr(args, "prompt_checkpoint", None) or getattr(args, "insight_checkpoint", None):
        if method.prompt == "refined":
            prompt_src = resolve_source(
                getattr(args, "prompt_checkpoint", None) or args.checkpoint, args.mllm
            )
        if method.image_embed == "insight":
            insight_src = resolve_source(
                getattr(args, "insight_checkpoint", None) or args.checkpoint, args.mllm
            )
    source_json = {
        "prompt": prompt_src.to_json() if prompt_src else None,
        "insight": insight_src.to_json() if insight_src else None,
    }
    allow_overlap = bool(getattr(args, "allow_split_overlap", False))
    overlaps = check_split_overlap(
        source_json, [r.id for r in records], args.format, args.data, allow=allow_overlap
    )
    mllms = mllms or MLLMCache(device=device)
    prompt_mllm = mllms.get(prompt_src) if prompt_src else None
    insight_mllm = mllms.get(insight_src) if insight_src else None
    encoder = None
    if method.image_embed == "source_clip":
        if not args.image_encoder:
            print("error: the ipadapter baseline needs --image-encoder DIR (CLIP vision).", file=sys.stderr)
            return 2
        from mindedit_core.ipadapter import load_ipadapter

        encoder = SourceClipEncoder(
            args.image_encoder, kind=load_ipadapter(args.ipadapter).kind, device=device
        )
    conditioner = Conditioner(
        method,
        mllm=prompt_mllm,
        insight_mllm=insight_mllm,
        source_encoder=encoder,
        max_new_tokens=args.max_new_tokens,
    )
    key = repr(sorted(diffusion.to_json().items()))
    pipelines = {} if pipelines is None else pipelines
    edit = pipelines.get(key)
    if edit is None:
        edit = pipelines[key] = EditPipelines(diffusion)
    provenance = {
        "dataset": dataset_provenance(selection.to_json(), data_stats["num_records"], len(records)),
        "decoding": decoding_of(prompt_mllm or insight_mllm, args.max_new_tokens),
        "training": {role: training_summary(source) for role, source in source_json.items()},
        "sd_model_synthetic": is_synthetic(args.sd_model),
    }
    run_info = make_run_info(
        method,
        diffusion.to_json(),
        selection.to_json(),
        args.seed,
        extra={
            "pipelines": edit.describe(),
            "max_new_tokens": args.max_new_tokens,
            "provenance": provenance,
            "split_overlap": overlaps or None,
            "allow_split_overlap": allow_overlap,
            **(extra or {}),
        },
        sources=source_json,
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
        progress=not args.no_progress,
    )
    print(
        f"[rank {shard.index}/{shard.count}] {method.name}: {len(stats.done)} edited, {len(stats.skipped)} "
        f"already done, {len(stats.failed)} failed -> {args.out}"
    )
    if stats.failed:
        print(f"Failed items are listed in {args.out}/failures.rank{shard.index}.jsonl", file=sys.stderr)
        return 1
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    return generate_one(args, method_of(args))
