"""Benchmark: refine + embed in one ``generate`` vs refine alone vs two separate passes, per VLM family;
and the visual-token cost of an image per family at 384, 768 and 1024 px.

Question: what does predicting ``v_insight`` add to prompt refinement? With the layer-m hook it should
add almost nothing (goal: one pass / refine alone <= 1.05), while separate passes (a forward for the
embedding + a generate for the text) pay the prompt's prefill twice.

Models (random weights, the families' real vision settings, ~20-25 M params): LLaVA-OneVision (Qwen2
hidden 512, 8 layers; SigLIP with real 384 px tiles, patch 14: a 384 px image costs the real 1,485
image tokens), Qwen2.5-VL and Qwen3-VL (hidden 512, 8 layers; real patch 14 / 16, 2x2 merge and pixel
budgets: the real token counts). The tiny tokenizers make the text part longer than the real ones
would. Each round runs the three variants in a rotating order; ratios are per round, within one
run, in wall time and in process CPU time (less sensitive to other load on a shared machine).

Image tokens are counted by running each family's processor (real settings) on a square image of
that side with ``max_image_side`` equal to it, and counting the image placeholder tokens: exactly
what the model reads.

Run:  .venv/bin/python bench/bench_one_pass.py [--families llava_onevision qwen2_5_vl qwen3_vl qwen3_5 gemma4]
      [--rounds 7] [--new-tokens 32] [--side 384] [--tokens-only]
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

FAMILIES = ("llava_onevision", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "gemma4")
TOKEN_SIDES = (384, 768, 1024)


def proxy_model(family: str):
    from devkit.fixtures import cache_root
    from devkit.fixtures.gemma4 import small_gemma4
    from devkit.fixtures.llava_onevision import small_llava_onevision
    from devkit.fixtures.qwen3_5 import small_qwen3_5
    from devkit.fixtures.qwen_vl import small_qwen2_5_vl, small_qwen3_vl

    builders = {
        "llava_onevision": small_llava_onevision,
        "qwen2_5_vl": small_qwen2_5_vl,
        "qwen3_vl": small_qwen3_vl,
        "qwen3_5": small_qwen3_5,
        "gemma4": small_gemma4,
    }
    return builders[family](cache_root())


def image_tokens(mllm, side: int) -> int:
    """Visual placeholder tokens of a ``side`` x ``side`` image through the family's processor."""
    image = np.full((side, side, 3), 0.5, dtype=np.float32)
    inputs = mllm.prepare_inputs(image, "x", max_image_side=side)
    config = mllm.model.config
    token = getattr(config, "image_token_id", None)
    if token is None:
        token = config.image_token_index
    return int((inputs["input_ids"] == token).sum())


def bench_family(family: str, args) -> list[str]:
    from mindedit_core.mllm import MindEditMLLM, PassOptions, load_mllm
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig

    base = load_mllm(proxy_model(family), device="cpu", dtype="float32", max_side=args.side)
    tokens = {side: image_tokens(base, side) for side in TOKEN_SIDES}
    lines = [
        f"[{base.family.display_name}] image tokens: " + ", ".join(f"{s} px {n}" for s, n in tokens.items())
    ]
    if args.tokens_only:
        return lines
    hidden = base.model.config.get_text_config().hidden_size
    torch.manual_seed(0)
    head = VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=hidden, layer=base.layer))
    mllm = MindEditMLLM(base.model, base.processor, head.eval(), default_options=base.default_options)
    params = sum(p.numel() for p in mllm.model.parameters())
    rng = np.random.default_rng(0)
    image = rng.random((args.side, args.side, 3)).astype(np.float32)
    instruction = "replace the red car with a blue bicycle"
    options = PassOptions(max_new_tokens=args.new_tokens, max_image_side=args.side)

    def one_pass():
        return mllm.refine_and_embed(image, instruction, options=options)

    def refine_only():
        return mllm.refine_full(image, instruction, options=options)

    def two_passes():
        v = mllm.embed(image, instruction, options=options)
        return mllm.refine_full(image, instruction, options=options), v

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

    return lines + [
        f"model: random {base.family.display_name}, {params / 1e6:.1f} M params, {base.num_layers} layers, head "
        f"layer {mllm.layer} (plus head, {head.num_parameters() / 1e6:.2f} M params)",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--side", type=int, default=384)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--tokens-only", action="store_true", help="only count image tokens per family")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("mindedit_core").setLevel(logging.ERROR)  # the random models' fallback warning
    import transformers

    print(
        f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, transformers {transformers.__version__}"
    )
    for family in args.families:
        print("\n".join(bench_family(family, args)), flush=True)


if __name__ == "__main__":
    main()
