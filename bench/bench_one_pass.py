"""Benchmark: refine + embed in one ``generate`` vs refine alone vs two separate passes.

Question: what does predicting ``v_insight`` add to prompt refinement? With the layer-m hook it should
add almost nothing (goal: one pass / refine alone <= 1.05), while separate passes (a forward for the
embedding + a generate for the text) pay the prompt's prefill twice.

Model: a random ~24 M-param LLaVA-OneVision (Qwen2 hidden 512, 8 layers; SigLIP with real 384 px
tiles, patch 14), so a 384 px image costs the real 1,485 image tokens (the tiny tokenizer makes the
text part longer than Qwen2's would). Each round runs the three variants in a rotating order; ratios
are per round, within one run, in wall time and in process CPU time (less sensitive to other load
on a shared machine).

Run:  .venv/bin/python bench/bench_one_pass.py [--rounds 7] [--new-tokens 32] [--side 384]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from datetime import datetime, timezone

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--side", type=int, default=384)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    logging.getLogger("mindedit_core").setLevel(logging.ERROR)  # the random model's fallback warning

    from devkit.fixtures import cache_root
    from devkit.fixtures.llava_onevision import small_llava_onevision
    from mindedit_core.mllm import MindEditMLLM, load_mllm
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    model_dir = small_llava_onevision(cache_root())
    base = load_mllm(model_dir, device="cpu", dtype="fp32", max_side=args.side)
    torch.manual_seed(0)
    head = VisionHead(
        VisionHeadConfig.for_kind("plus", hidden_size=512, layer=default_layer(base.num_layers))
    ).eval()
    mllm = MindEditMLLM(base.model, base.processor, head, max_side=args.side)
    params = sum(p.numel() for p in mllm.model.parameters())

    rng = np.random.default_rng(0)
    image = rng.random((args.side, args.side, 3)).astype(np.float32)
    instruction = "replace the red car with a blue bicycle"
    kwargs = dict(max_new_tokens=args.new_tokens)

    def one_pass():
        return mllm.refine_and_embed(image, instruction, **kwargs)

    def refine_only():
        return mllm.refine_full(image, instruction, **kwargs)

    def two_passes():
        v = mllm.embed(image, instruction)
        return mllm.refine_full(image, instruction, **kwargs), v

    variants = {"one_pass": one_pass, "refine_only": refine_only, "two_passes": two_passes}
    first = one_pass()  # warm-up (and the token counts)
    refine_only()
    two_passes()
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.rounds):
        order = names[round_index % 3 :] + names[: round_index % 3]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            variants[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    def ratios(times: dict[str, list[float]], a: str, b: str) -> str:
        values = [x / y for x, y in zip(times[a], times[b])]
        return (
            f"median {statistics.median(values):.3f} (per-round min {min(values):.3f}, max {max(values):.3f})"
        )

    lines = [
        f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        f"model: random LLaVA-OneVision, {params / 1e6:.1f} M params, {base.num_layers} layers, head layer "
        f"{mllm.layer} (plus head, {head.num_parameters() / 1e6:.2f} M params)",
        f"input: {args.side}x{args.side} image, prompt {first.prompt_tokens} tokens, "
        f"{first.new_tokens} new tokens (max {args.new_tokens}), {args.rounds} rounds",
        "median wall seconds: " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in wall.items()),
        "median process CPU seconds: " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in cpu.items()),
        f"one_pass / refine_only, wall: {ratios(wall, 'one_pass', 'refine_only')}",
        f"one_pass / refine_only, CPU:  {ratios(cpu, 'one_pass', 'refine_only')}",
        f"one_pass / two_passes, wall:  {ratios(wall, 'one_pass', 'two_passes')}",
        f"one_pass / two_passes, CPU:   {ratios(cpu, 'one_pass', 'two_passes')}",
        f"refined text parsed: {first.refined.parsed} (random weights: the visible fallback fires)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
