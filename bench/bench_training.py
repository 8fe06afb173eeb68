"""Training benchmarks: (1) visual tokens per sample with and without the 384-px input resize, using
the real LLaVA-OneVision processor settings (384 px tiles, patch 14 -> 729 tokens per tile,
anyres_max_9, the 6x6 grid of pinpoints); (2) training samples/s on the tiny model, per variant.

    .venv/bin/python bench/bench_training.py [--steps 6]

Ratios are measured within one run (the machine is shared and noisy). Writes nothing; paste the
printed table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REAL_TILE = 384
REAL_TOKENS_PER_TILE = 729  # (384 / 14) ** 2 = 27 ** 2
REAL_PINPOINTS = [[REAL_TILE * i, REAL_TILE * j] for i in range(1, 7) for j in range(1, 7)]


def real_processor():
    """LLaVA-OneVision's processor with the real image settings (the tokenizer is the tiny fixture's:
    it does not change how many image tokens are inserted)."""
    from transformers import AutoProcessor, LlavaOnevisionImageProcessor, LlavaOnevisionProcessor

    from devkit.fixtures import cache_root
    from devkit.fixtures.llava_onevision import tiny_llava_onevision

    tiny = AutoProcessor.from_pretrained(tiny_llava_onevision(cache_root()))
    image_processor = LlavaOnevisionImageProcessor(
        size={"height": REAL_TILE, "width": REAL_TILE},
        image_grid_pinpoints=REAL_PINPOINTS,
        do_pad=True,
    )
    return LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tiny.tokenizer,
        video_processor=tiny.video_processor,
        num_image_tokens=REAL_TOKENS_PER_TILE,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=tiny.chat_template,
    )


def image_tokens(processor, size: tuple[int, int], max_side: int | None) -> int:
    from PIL import Image

    from mindedit_core.images import prepare_mllm_image

    image = prepare_mllm_image(Image.new("RGB", size, (120, 90, 60)), max_side=max_side)
    ids = processor(images=image, text="<image>\nx", return_tensors="pt")["input_ids"][0]
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    return int((ids == image_id).sum())


def bench_tokens() -> list[str]:
    processor = real_processor()
    rows = [
        "| input (w x h) | image tokens, no resize | image tokens, max side 384 | ratio |",
        "|---|---|---|---|",
    ]
    for size in [(384, 384), (512, 512), (768, 768), (1024, 1024), (1024, 768), (2048, 2048)]:
        full = image_tokens(processor, size, None)
        small = image_tokens(processor, size, 384)
        rows.append(f"| {size[0]} x {size[1]} | {full:,} | {small:,} | {full / small:.2f}x |")
    return rows


def bench_training(steps: int, rounds: int) -> list[str]:
    from devkit.fixtures import cache_root
    from devkit.fixtures.clip_vision import build_tiny_clip_vision
    from devkit.fixtures.edit_dataset import build_humanedit_fixture
    from devkit.fixtures.llava_onevision import tiny_llava_onevision
    from devkit.fixtures.refined_cache import write_refined_cache
    from training.build_targets import build_targets
    from training.config import build_config
    from training.data import load_humanedit
    from training.train import train

    cache = cache_root()
    data = build_humanedit_fixture(cache / "datasets")
    clip = build_tiny_clip_vision(cache)
    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    records = load_humanedit(data, cache_dir=work / "hf")
    refined = write_refined_cache(work / "refined.jsonl", records)
    targets = cache / "training" / f"targets-{data.name}-{clip.name}"
    if not (targets / "targets.json").is_file():
        build_targets(records, clip, targets, progress=False)
    variants = [("joint", "lora"), ("text_only", "lora"), ("head_only", "lora"), ("joint", "full")]
    best: dict[tuple[str, str], float] = {}
    for round_index in range(rounds):  # interleaved rounds; the best rate of each variant is kept
        for variant, finetune in variants:
            cfg = build_config(
                "lora",
                ["layer=null"],
                model=str(tiny_llava_onevision(cache)),
                data=str(data),
                refined=str(refined),
                targets=str(targets),
                output_dir=str(work / f"{variant}-{finetune}-{round_index}"),
                split="all",
                variant=variant,
                finetune=finetune,
                precision="fp32",
                batch_size=4,
                grad_accum=1,
                max_steps=steps + 1,
                gradient_checkpointing=False,
                progress=False,
                tensorboard=False,
                save_every=10_000,
            )
            result = train(cfg)
            # Skip the first step (warm-up): rate over the remaining steps from the logged clock.
            first, last = result.history[0], result.history[-1]
            seen_first, seen_last = first["step"] * cfg.batch_size, last["step"] * cfg.batch_size
            elapsed = seen_last / last["samples_per_s"] - seen_first / first["samples_per_s"]
            rate = (seen_last - seen_first) / elapsed
            best[(variant, finetune)] = max(best.get((variant, finetune), 0.0), rate)
    rows = [
        "| variant | finetune | batch | steps x rounds | samples/s (best) | s/step | vs joint LoRA |",
        "|---|---|---|---|---|---|---|",
    ]
    base = best[("joint", "lora")]
    for (variant, finetune), rate in best.items():
        rows.append(
            f"| {variant} | {finetune} | 4 | {steps} x {rounds} | {rate:.2f} | {4 / rate:.2f} | {rate / base:.2f}x |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    import torch
    import transformers

    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}, transformers {transformers.__version__}"
    )
    print("\n## Visual tokens per sample (real LLaVA-OneVision processor settings)\n")
    print("\n".join(bench_tokens()))
    if not args.skip_training:
        print("\n## Training throughput, tiny LLaVA-OneVision fixture (CPU)\n")
        print("\n".join(bench_training(args.steps, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
