"""The main job: run the shipped workflows in a real headless ComfyUI and show what came out.

    bash scripts/demo.sh                 # = scripts/bootstrap.sh, then python -m devkit.demo
    .venv/bin/python -m devkit.demo --help

Models:
- real ones when ``MINDEDIT_MODELS_DIR`` names a ComfyUI ``models/`` folder holding
  ``LLM/<VLM folder>`` and ``checkpoints/<sd15 file>``, and for the MIND-Edit workflows also
  ``mindedit/<checkpoint folder>`` and ``ipadapter/<file>`` (pick among several with ``MINDEDIT_LLM``,
  ``MINDEDIT_CHECKPOINT``, ``MINDEDIT_IPADAPTER``, ``MINDEDIT_SD15``; see docs/MODELS.md). With only
  public weights (no MIND-Edit checkpoint) only the refine-only workflow runs, and the demo says so;
- otherwise tiny, randomly initialised models with the real architectures, generated locally
  (the pipeline runs for real, the pictures are noise: said loudly).

It starts ComfyUI with its base directory under ``demo_output/``, uploads the bundled sample
(``assets/sample_source.png`` + ``assets/sample_mask.png``, and the source with the mask "painted"
into its alpha, as ComfyUI's MaskEditor saves it), converts each UI workflow to an API prompt, runs
it (the refine-only one twice: mask-free, and with the painted mask; the SDXL masked one with the
same head on SDXL, unless ``--no-sdxl``; ``--sdxl`` runs all three SDXL workflows), prints the refined prompts
and the status lines (parser fallbacks, mask, size) and where the images are. Exit status 1 with
ComfyUI's node error when anything fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.demo_models import (  # noqa: F401  (re-exported: the demo's model setup)
    MODEL_FILE_SUFFIXES,
    DemoError,
    DemoModels,
    configured_models,
    tiny_models,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_OUTPUT = REPO_ROOT / "demo_output"
ASSETS = REPO_ROOT / "assets"
SAMPLE_SOURCE = ASSETS / "sample_source.png"
SAMPLE_MASK = ASSETS / "sample_mask.png"
TINY_SIZE = 64  # px: tiny models make noise at any size; small keeps the CPU demo short


def load_workflow(name: str) -> dict[str, Any]:
    from devkit.build_workflows import WORKFLOWS_DIR

    path = WORKFLOWS_DIR / f"{name}.json"
    return json.loads(path.read_text())


def prepare_prompt(
    workflow_name: str,
    object_info: dict[str, Any],
    models: DemoModels,
    *,
    source_name: str,
    mask_name: str | None = None,
    instruction: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    mllm_seed: int = 0,
    max_new_tokens: int | None = None,
    filename_prefix: str | None = None,
    api_prompt: dict[str, Any] | None = None,
    working_size: int | None = None,
) -> dict[str, Any]:
    """The shipped UI workflow as an API prompt, with this run's files and settings filled in.

    ``api_prompt``: fill this already converted prompt instead (e.g. one saved by an older version).
    ``working_size``: the longest side the SDXL workflows sample at (their default: 1024 px; tiny
    models run at the tiny source's own size); ignored by workflows that sample at the source's size.

    The refine-only workflow has no IP-Adapter and no MIND-Edit checkpoint: those are set only in
    the workflows that have them (which then need them in ``models``)."""
    from devkit import build_workflows as wf
    from devkit.workflow_api import find_node_ids, set_widget, ui_to_api

    prompt = api_prompt if api_prompt is not None else ui_to_api(load_workflow(workflow_name), object_info)
    family = wf.WORKFLOW_FAMILIES.get(workflow_name, wf.SD15).key
    checkpoint, ipadapter = models.for_family(family)
    if checkpoint is None:
        raise DemoError(
            f"{workflow_name} needs an SDXL checkpoint and ip-adapter_sdxl_vit-h (tiny models build them "
            "unless --no-sdxl; real ones: docs/MODELS.md)."
        )
    set_widget(prompt, "CheckpointLoaderSimple", "ckpt_name", checkpoint.name)
    set_widget(prompt, wf.MLLM_LOADER, "model_folder", models.llm_dir.name)
    if find_node_ids(prompt, wf.IPADAPTER_LOADER):
        needs = (
            ("a MIND-Edit checkpoint in models/mindedit", models.mindedit_dir),
            ("an IP-Adapter file in models/ipadapter", ipadapter),
        )
        missing = [what for what, path in needs if path is None]
        if missing:
            raise DemoError(f"{workflow_name} needs {' and '.join(missing)} (docs/MODELS.md).")
        set_widget(prompt, wf.MLLM_LOADER, "mindedit_checkpoint", models.mindedit_dir.name)
        set_widget(prompt, wf.IPADAPTER_LOADER, wf.IPADAPTER_FILE_INPUT, ipadapter.name)
    set_widget(prompt, wf.SOURCE_TITLE, "image", source_name)
    if mask_name is not None:
        set_widget(prompt, wf.MASK_TITLE, "image", mask_name)
    if instruction is not None:
        set_widget(prompt, wf.REFINE_TITLE, "instruction", instruction)
    if max_new_tokens is not None:
        set_widget(prompt, wf.REFINE_TITLE, "max_new_tokens", max_new_tokens)
    set_widget(prompt, wf.REFINE_TITLE, "seed", mllm_seed)
    set_widget(prompt, "KSampler", "seed", seed)
    if steps is not None:
        set_widget(prompt, "KSampler", "steps", steps)
    if filename_prefix is not None:
        set_widget(prompt, "SaveImage", "filename_prefix", filename_prefix)
    if working_size is not None and find_node_ids(prompt, wf.WORKING_SIZE_TITLE):
        set_widget(prompt, wf.WORKING_SIZE_TITLE, wf.WORKING_SIZE_INPUT, working_size)
    return prompt


def preview_texts(result: Any, prompt: dict[str, Any]) -> dict[str, str]:
    """Title -> text shown by each 'Preview as Text' node (refined prompts, status line)."""
    texts = {}
    for node_id, out in (result.outputs or {}).items():
        if "text" in out and node_id in prompt:
            title = (prompt[node_id].get("_meta") or {}).get("title", node_id)
            value = out["text"]
            texts[title] = value[0] if isinstance(value, list) and value else str(value)
    return texts


def _banner(models: DemoModels) -> None:
    if models.tiny:
        print(
            "\n[demo] No MINDEDIT_MODELS_DIR set: using TINY RANDOMLY INITIALISED models generated locally.\n"
            "[demo] The whole pipeline runs for real, but the refined prompts are gibberish and the images\n"
            "[demo] are noise. For real edits set MINDEDIT_MODELS_DIR to a ComfyUI models/ folder (docs/MODELS.md).\n"
        )
    else:
        print("\n[demo] Using the models in MINDEDIT_MODELS_DIR:")
        for label, path in (
            ("SD1.5", models.checkpoint),
            ("MLLM", models.llm_dir),
            ("MIND-Edit", models.mindedit_dir),
            ("IP-Adapter", models.ipadapter),
            ("SDXL", models.sdxl_checkpoint),
            ("SDXL IP-A.", models.sdxl_ipadapter),
        ):
            if path is not None or label in ("SD1.5", "MLLM"):
                print(f"[demo]   {label:<10} {path}")


def write_thumbnail(
    source: Path, result_png: bytes, target: Path, height: int = 256, badge: str | None = None
) -> Path:
    """Source | result side by side, as the template browser's thumbnail (JPEG); ``badge`` is written
    in the top-left corner (e.g. "SDXL")."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    left = Image.open(source).convert("RGB")
    right = Image.open(io.BytesIO(result_png)).convert("RGB")
    scale = height / left.height
    left = left.resize((round(left.width * scale), height))
    right = right.resize((round(right.width * height / right.height), height))
    canvas = Image.new("RGB", (left.width + right.width + 8, height), (32, 32, 32))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 8, 0))
    if badge:
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default(size=height // 8)
        x0, y0, x1, y1 = draw.textbbox((0, 0), badge, font=font)
        pad = height // 32
        draw.rectangle((0, 0, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), fill=(20, 20, 20))
        draw.text((pad - x0, pad - y0), badge, fill=(250, 250, 250), font=font)
    target.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(target, quality=88)
    return target


def sample_inputs(folder: Path, size: int | tuple[int, int]) -> tuple[Path, Path]:
    """The bundled sample source (RGB, bicubic) and mask (L, nearest), scaled to ``size`` px square or
    to ``(width, height)`` and written into ``folder`` (0 = the bundled files, as they are)."""
    if not size:
        return SAMPLE_SOURCE, SAMPLE_MASK
    from PIL import Image

    width, height = (size, size) if isinstance(size, int) else size
    tag = f"{size}" if isinstance(size, int) else f"{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"sample_source_{tag}.png"
    mask = folder / f"sample_mask_{tag}.png"
    Image.open(SAMPLE_SOURCE).convert("RGB").resize((width, height), Image.BICUBIC).save(source)
    Image.open(SAMPLE_MASK).convert("L").resize((width, height), Image.NEAREST).save(mask)
    return source, mask


def painted_source(folder: Path, source: Path, mask: Path) -> Path:
    """The source with the mask painted into its alpha, as ComfyUI's MaskEditor saves it
    (transparent = edit): what an artist gets after painting on the source Load Image."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.open(source).convert("RGB")
    alpha = Image.open(mask).convert("L").resize(rgb.size, Image.NEAREST).point(lambda v: 255 - v)
    rgb.putalpha(alpha)
    target = folder / f"{Path(source).stem}_painted.png"
    rgb.save(target)
    return target


@dataclass(frozen=True)
class DemoRun:
    workflow: str
    label: str
    source_name: str
    mask_name: str | None
    instruction: str


def demo_runs(
    models: DemoModels,
    source_name: str,
    mask_name: str,
    painted_name: str,
    instruction: str | None,
    *,
    all_sdxl: bool = False,
) -> tuple[list[DemoRun], str | None]:
    """What the demo runs, and why the MIND-Edit workflows are skipped (None when they run).

    With SDXL models the SDXL masked workflow runs too (the same head on SDXL); ``all_sdxl`` adds the
    SDXL mask-free and refine-only workflows."""
    from devkit import build_workflows as wf

    runs = []
    skipped = models.mindedit_missing
    if not skipped:
        runs += [
            DemoRun(wf.MASKED_WORKFLOW, "", source_name, mask_name, instruction or wf.MASKED_INSTRUCTION),
            DemoRun(wf.EDIT_WORKFLOW, "", source_name, None, instruction or wf.EDIT_INSTRUCTION),
        ]
    if not skipped and models.sdxl_checkpoint is not None and models.sdxl_ipadapter is not None:
        runs.append(
            DemoRun(
                wf.SDXL_MASKED_WORKFLOW,
                "the same head on SDXL",
                source_name,
                mask_name,
                instruction or wf.MASKED_INSTRUCTION,
            )
        )
        if all_sdxl:
            runs += [
                DemoRun(wf.SDXL_EDIT_WORKFLOW, "SDXL", source_name, None, instruction or wf.EDIT_INSTRUCTION),
                DemoRun(
                    wf.SDXL_REFINE_ONLY_WORKFLOW,
                    "SDXL, mask painted on the source",
                    painted_name,
                    None,
                    instruction or wf.REFINE_ONLY_INSTRUCTION,
                ),
            ]
    runs += [
        DemoRun(
            wf.REFINE_ONLY_WORKFLOW,
            "mask painted on the source",
            painted_name,
            None,
            instruction or wf.REFINE_ONLY_INSTRUCTION,
        ),
        DemoRun(
            wf.REFINE_ONLY_WORKFLOW,
            "no mask: mask-free",
            source_name,
            None,
            instruction or wf.EDIT_INSTRUCTION,
        ),
    ]
    return runs, skipped


def thumbnail_badge(workflow: str) -> str | None:
    """The family mark a workflow's thumbnail carries (SDXL), so look-alike graphs are told apart."""
    from devkit import build_workflows as wf

    return "SDXL" if workflow in wf.SDXL_COUNTERPARTS else None


def run_demo(args: argparse.Namespace) -> int:
    from PIL import Image

    from devkit import build_workflows as wf
    from devkit.comfyui_runtime import ComfyUIServer, PromptFailed, PromptRejected

    for asset in (SAMPLE_SOURCE, SAMPLE_MASK):
        if not asset.is_file():
            raise DemoError(
                f"the bundled sample {asset} is missing: restore it from git (git checkout -- assets/)."
            )
    models_dir = args.models_dir or os.environ.get("MINDEDIT_MODELS_DIR")
    models = configured_models(Path(models_dir)) if models_dir else tiny_models(sdxl=not args.no_sdxl)
    _banner(models)
    steps = args.steps if args.steps is not None else (4 if models.tiny else 25)

    base = Path(args.output).resolve() / "comfyui"
    print(f"[demo] starting headless ComfyUI (base directory {base}) ...")
    started = time.monotonic()
    failures = 0
    with ComfyUIServer(base_dir=base, models=models.comfy_models()) as server:
        print(f"[demo] ComfyUI is up at {server.url} after {time.monotonic() - started:.1f} s")
        client = server.client
        size = args.size if args.size is not None else (TINY_SIZE if models.tiny else 0)
        source_path, mask_path = sample_inputs(Path(args.output).resolve() / "inputs", size)
        if size:
            print(f"[demo] sample scaled to {size} px (tiny models; --size 0 keeps the original 512 px)")
        source_name = client.upload_image(source_path)
        mask_name = client.upload_image(mask_path)
        painted_path = painted_source(Path(args.output).resolve() / "inputs", source_path, mask_path)
        painted_name = client.upload_image(painted_path)
        object_info = client.object_info()
        # Tiny models: the SDXL workflows sample at the tiny source's own size, not at 1024 px.
        working_size = max(Image.open(source_path).size) if models.tiny else None
        runs, skipped = demo_runs(
            models, source_name, mask_name, painted_name, args.instruction, all_sdxl=args.sdxl
        )
        if skipped:
            print(
                f"[demo] skipping {wf.MASKED_WORKFLOW}.json and {wf.EDIT_WORKFLOW}.json: they need {skipped}. "
                f"{wf.REFINE_ONLY_WORKFLOW}.json needs only the VLM and the SD1.5 checkpoint."
            )
        thumbnails_done = set()
        for run in runs:
            label = f" ({run.label})" if run.label else ""
            print(f"\n[demo] === {run.workflow}.json{label}: {run.instruction!r} ===")
            try:
                prompt = prepare_prompt(
                    run.workflow,
                    object_info,
                    models,
                    source_name=run.source_name,
                    mask_name=run.mask_name,
                    instruction=run.instruction,
                    steps=steps,
                    seed=args.seed,
                    filename_prefix=f"mindedit_demo/{run.workflow}",
                    working_size=working_size,
                )
                t0 = time.monotonic()
                result = client.run(prompt, timeout=args.timeout).raise_for_error()
            except PromptRejected as exc:
                print(f"[demo] ComfyUI rejected {run.workflow}:\n{exc}", file=sys.stderr)
                failures += 1
                continue
            except PromptFailed as exc:
                print(f"[demo] {run.workflow} failed:\n{exc}", file=sys.stderr)
                failures += 1
                continue
            print(f"[demo] finished in {time.monotonic() - t0:.1f} s")
            texts = preview_texts(result, prompt)
            order = [wf.POSITIVE_PREVIEW_TITLE, wf.NEGATIVE_PREVIEW_TITLE, wf.STATUS_PREVIEW_TITLE]
            for title, text in sorted(
                texts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
            ):
                print(f"[demo] {title}: {text}".replace("\n", "\n[demo]     "))
            for image in result.images:
                path = server.output_dir / image.subfolder / image.filename
                print(f"[demo] image: {path}")
            if args.thumbnails and result.images and run.workflow not in thumbnails_done:
                thumbnails_done.add(run.workflow)
                thumb = write_thumbnail(
                    SAMPLE_SOURCE,
                    result.images[-1].data,
                    wf.WORKFLOWS_DIR / f"{run.workflow}.jpg",
                    badge=thumbnail_badge(run.workflow),
                )
                print(f"[demo] thumbnail: {thumb}")
        if failures:
            print(
                f"\n[demo] {failures} workflow(s) failed; ComfyUI's log: {server.log_path}", file=sys.stderr
            )
            return 1
    print(f"\n[demo] done: {len(runs)} workflow runs. Outputs are under {base / 'output'}.")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.demo", description="Run the shipped MIND-Edit workflows in a headless ComfyUI."
    )
    parser.add_argument(
        "--models-dir",
        help="a ComfyUI models/ folder with real models (default: $MINDEDIT_MODELS_DIR, else tiny models)",
    )
    parser.add_argument(
        "--output",
        default=str(DEMO_OUTPUT),
        help="where ComfyUI's base directory goes (default: demo_output/)",
    )
    parser.add_argument("--instruction", help="override the sample instruction for every workflow")
    parser.add_argument(
        "--steps", type=int, help="KSampler steps (default: 4 for tiny models, 25 for real ones)"
    )
    parser.add_argument(
        "--size",
        type=int,
        help="scale the sample to this many px (default: 64 for tiny models, 0 = original 512 px)",
    )
    parser.add_argument("--seed", type=int, default=0, help="KSampler seed")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each workflow")
    parser.add_argument(
        "--thumbnails",
        action="store_true",
        help="also write workflows/<name>.jpg from the results (with --sdxl: every SDXL one, marked SDXL)",
    )
    sdxl = parser.add_mutually_exclusive_group()
    sdxl.add_argument(
        "--sdxl",
        action="store_true",
        help="run all three SDXL workflows, not only the SDXL masked one that runs by default",
    )
    sdxl.add_argument(
        "--no-sdxl",
        action="store_true",
        help="tiny models: skip the SDXL masked workflow (and the ~2.2 GiB tiny SDXL checkpoint it builds once)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from devkit.comfyui_runtime import ComfyUIError

    args = parse_args(argv)
    try:
        return run_demo(args)
    except DemoError as exc:
        print(f"[demo] {exc}", file=sys.stderr)
        return 2
    except ComfyUIError as exc:  # could not start ComfyUI, or lost it mid-run
        print(f"[demo] ComfyUI problem: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
