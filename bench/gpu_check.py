"""GPU proving script: the pack's real-shape costs on CUDA, one command, one table (+ JSON).

    python bench/gpu_check.py [--dtype bf16|fp16] [--json gpu_check.json] [--only NAME,...]
    python bench/gpu_check.py --tiny            # CPU mode on the tiny fixtures (what the tests run)

Random weights at the released shapes (`devkit.fixtures.real_shapes`), built directly on the device;
nothing is downloaded or installed. Checks (each row says ok / skipped, with why / failed, with the
error; one failing check never stops the others):

- ``one_pass_0.5b``: LLaVA-OneVision 0.5B, 384 px (1,485 image tokens): ``refine_and_embed`` (plain
  and plus heads) vs ``refine_full``, median of ``--repeats``; the ratio is the goal (<= 1.02);
- ``prefill_7b``: the 7B shape, one prefill of the same prompt (1,485 image tokens): time, peak memory;
- ``train_0.5b_lora``, ``train_0.5b_full``, ``train_7b_lora``: one optimizer step of the joint
  training module (`training.joint_model.JointModel`: CE + 2 (1 - cos), plain head on layer m) at
  batch ``--train-batch`` with gradient checkpointing; tokens/s, samples/s, peak memory;
- ``sd15_comfyui``: ComfyUI (``$COMFYUI_PATH`` or the repo's extracted tree; never downloaded), the
  real-shape SD1.5, 512 px, ``--steps`` (20) steps, unpatched vs patched (plain, plus);
- ``sd15_diffusers``: the same with diffusers' UNet (none / diffusers' IP-Adapter / ours): skipped
  where diffusers is not installed (the GPU machines here have none);
- ``offload``: the MLLM under ComfyUI's memory manager (the pack's own wrapper), then SD1.5 asks
  for more memory than is free: ComfyUI must offload the MLLM, and bring it back unchanged.

Prompts are built without the image processor (torchvision may be missing): the tiny fixture
tokenizer renders the real chat template and the ``<image>`` placeholder is expanded to the
number of image tokens the model's config implies, which is what the processor does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CHECKS = (
    "one_pass_0.5b",
    "prefill_7b",
    "train_0.5b_lora",
    "train_0.5b_full",
    "train_7b_lora",
    "sd15_comfyui",
    "sd15_diffusers",
    "offload",
)

from gpu_check_core import (  # noqa: E402
    INSTRUCTION,
    Env,
    Row,
    Skip,
    build_mllm,
    interleaved_times,
    prompt_inputs,
    random_head,
)
from gpu_check_sd15 import check_offload, check_sd15_comfyui, check_sd15_diffusers  # noqa: E402

# -- checks ------------------------------------------------------------------------------------------


def check_one_pass(env: Env, row: Row) -> None:
    from mindedit_core.mllm import MindEditMLLM

    model, tokenizer = build_mllm(env, env.size("0.5b"))
    inputs = prompt_inputs(model, tokenizer, env)
    mllms = {}
    for kind in ("plain", "plus"):
        mllm = MindEditMLLM(model, tokenizer, random_head(kind, model, env).to(env.dtype))
        mllm.prepare_inputs = lambda *a, **k: inputs  # the processor's work, done once above
        mllms[kind] = mllm
    n = env.new_tokens
    variants = {
        "one_pass_plain": lambda: mllms["plain"].refine_and_embed(None, INSTRUCTION, max_new_tokens=n),
        "one_pass_plus": lambda: mllms["plus"].refine_and_embed(None, INSTRUCTION, max_new_tokens=n),
        "refine_only": lambda: mllms["plain"].refine_full(None, INSTRUCTION, max_new_tokens=n),
    }
    env.reset_peak()
    result = variants["one_pass_plus"]()
    times = interleaved_times(env, variants)
    row.seconds = statistics.median(times["one_pass_plus"])
    row.peak_mem_gib = env.peak_gib()
    row.metrics = {f"{k}_s": statistics.median(v) for k, v in times.items()}
    for kind in ("plain", "plus"):
        ratios = [a / b for a, b in zip(times[f"one_pass_{kind}"], times["refine_only"])]
        row.metrics[f"ratio_{kind}"] = statistics.median(ratios)
    row.metrics.update(prompt_tokens=result.prompt_tokens, new_tokens=result.new_tokens)
    row.note = f"one pass / refine-only: plain {row.metrics['ratio_plain']:.3f}, plus {row.metrics['ratio_plus']:.3f} (goal <= 1.02)"


def check_prefill_7b(env: Env, row: Row) -> None:
    model, tokenizer = build_mllm(env, env.size("7b"))
    inputs = prompt_inputs(model, tokenizer, env)
    env.reset_peak()

    def prefill():
        with torch.no_grad():
            model(**inputs, use_cache=True, logits_to_keep=1)

    prefill()  # warm-up
    times = [env.timed(prefill) for _ in range(env.repeats)]
    row.seconds = statistics.median(times)
    row.peak_mem_gib = env.peak_gib()
    tokens = inputs["input_ids"].shape[1]
    row.metrics = {"prompt_tokens": tokens, "tokens_per_s": tokens / row.seconds}
    row.note = f"{tokens} prompt tokens"


def check_train(env: Env, row: Row, size: str, finetune: str) -> None:
    from training.joint_model import JointModel
    from training.model_setup import add_lora, enable_gradient_checkpointing, prepare_full_finetune

    model, tokenizer = build_mllm(env, env.size(size))
    if finetune == "lora":
        model = add_lora(model, r=16, alpha=32, dropout=0.05)
    else:
        prepare_full_finetune(model, train_vision_tower=False)
    enable_gradient_checkpointing(model)
    model.train()
    head = random_head("plain", model, env).train()
    joint = JointModel(model, head, layer=head.config.layer, text_loss=True, lambda_embed=2.0)
    params = [p for p in joint.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    batch = prompt_inputs(model, tokenizer, env, batch=env.train_batch, answer=48)
    batch["target"] = torch.randn(env.train_batch, 1024, device=env.device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        joint(**batch)["loss"].backward()
        optimizer.step()

    env.reset_peak()
    step()  # warm-up (optimizer states are created here)
    times = [env.timed(step) for _ in range(max(1, env.repeats - 1))]
    row.seconds = statistics.median(times)
    row.peak_mem_gib = env.peak_gib()
    tokens = batch["input_ids"].numel()
    row.metrics = {
        "batch": env.train_batch,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / row.seconds,
        "samples_per_s": env.train_batch / row.seconds,
        "trainable_m": sum(p.numel() for p in params) / 1e6,
        "hours_5_epochs_5244": 5 * 5244 / (env.train_batch / row.seconds) / 3600,
    }
    row.note = f"{finetune}, gradient checkpointing, batch {env.train_batch}; 5 epochs x 5,244: {row.metrics['hours_5_epochs_5244']:.2f} h"


RUNNERS: dict[str, Callable[[Env, Row], None]] = {
    "one_pass_0.5b": check_one_pass,
    "prefill_7b": check_prefill_7b,
    "train_0.5b_lora": lambda env, row: check_train(env, row, "0.5b", "lora"),
    "train_0.5b_full": lambda env, row: check_train(env, row, "0.5b", "full"),
    "train_7b_lora": lambda env, row: check_train(env, row, "7b", "lora"),
    "sd15_comfyui": check_sd15_comfyui,
    "sd15_diffusers": check_sd15_diffusers,
    "offload": check_offload,
}


def run_checks(env: Env, names: list[str]) -> list[Row]:
    rows = []
    for name in names:
        row = Row(name)
        started = time.perf_counter()
        try:
            RUNNERS[name](env, row)
        except Skip as err:
            row.status, row.note = "skipped", str(err)
        except Exception as err:  # report and go on: one broken check must not hide the others
            row.status = "failed"
            row.note = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            row.metrics["traceback"] = traceback.format_exc()[-2000:]
        row.metrics["wall_s"] = time.perf_counter() - started
        rows.append(row)
        print(f"[gpu_check] {name}: {row.status} ({row.metrics['wall_s']:.1f} s) {row.note}", flush=True)
        gc.collect()
        if env.cuda:
            torch.cuda.empty_cache()
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| check | status | seconds | peak memory GiB | result |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        seconds = f"{r.seconds:.3f}" if r.seconds is not None else "-"
        mem = f"{r.peak_mem_gib:.2f}" if r.peak_mem_gib is not None else "-"
        lines.append(f"| {r.name} | {r.status} | {seconds} | {mem} | {r.note} |")
    return "\n".join(lines)


def describe_machine(env: Env) -> str:
    import transformers

    parts = [
        platform.machine(),
        f"{os.cpu_count()} CPUs",
        f"torch {torch.__version__}",
        f"transformers {transformers.__version__}",
    ]
    if env.cuda:
        props = torch.cuda.get_device_properties(env.device)
        parts.insert(0, f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU mode on the tiny fixtures (for tests)")
    parser.add_argument("--device", default="", help="default: cuda, or cpu with --tiny")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--steps", type=int, default=0, help="sampling steps (default 20; 2 with --tiny)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=0, help="default 8; 2 with --tiny")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    parser.add_argument("--json", default="gpu_check.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: run on a GPU machine, or use --tiny for the CPU mode.")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    if device.type == "cpu":
        dtype = torch.float32  # CPU kernels for half types are slow or missing
    env = Env(
        device=device,
        dtype=dtype,
        tiny=args.tiny,
        steps=args.steps or (2 if args.tiny else 20),
        repeats=args.repeats,
        train_batch=args.train_batch or (2 if args.tiny else 8),
        new_tokens=args.new_tokens if not args.tiny else min(args.new_tokens, 4),
    )
    names = [n for n in args.only.split(",") if n] or list(CHECKS)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise SystemExit(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    started = time.perf_counter()
    rows = run_checks(env, names)
    header = (
        f"GPU check ({'tiny CPU mode' if args.tiny else 'real shapes'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{describe_machine(env)}, {str(dtype).replace('torch.', '')}, {time.perf_counter() - started:.0f} s in all"
    )
    print(header + "\n\n" + table(rows))
    Path(args.json).write_text(json.dumps({"header": header, "rows": [asdict(r) for r in rows]}, indent=1))
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
