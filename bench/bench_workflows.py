"""How much a re-queue costs compared with the first run of the same shipped workflow.

    .venv/bin/python bench/bench_workflows.py [--size 64] [--steps 2] [--repeats 3]

One headless ComfyUI with the tiny generated models. For each shipped workflow:
1. first run (cold: loads the checkpoint, the MLLM, the IP-Adapter);
2. re-queues with only a new KSampler seed (ComfyUI serves the loaders and the MLLM node from its
   cache, so only sampling, decoding and saving run);
3. re-queues with a new MLLM seed too (the MLLM runs again; models stay loaded): what the cache saves.

Ratios are taken within one run (the machine is shared and noisy); the server's peak RSS (VmHWM)
is read at the end. Times are medians over ``--repeats``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from devkit import build_workflows as wf  # noqa: E402
from devkit.comfyui_runtime import ComfyUIServer  # noqa: E402
from devkit.demo import prepare_prompt, sample_inputs, tiny_models  # noqa: E402
from devkit.workflow_api import find_node_ids  # noqa: E402


def timed_run(client, prompt) -> tuple[float, list[str]]:
    started = time.perf_counter()
    result = client.run(prompt, timeout=900).raise_for_error()
    return time.perf_counter() - started, result.cached_nodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="sample image side in px")
    parser.add_argument("--steps", type=int, default=2, help="KSampler steps")
    parser.add_argument("--repeats", type=int, default=3, help="re-queues per measurement")
    args = parser.parse_args()

    models = tiny_models(sdxl=True)
    lines = []
    with (
        tempfile.TemporaryDirectory(prefix="mindedit-bench-") as tmp,
        ComfyUIServer(models=models.comfy_models()) as server,
    ):
        client = server.client
        source, mask = sample_inputs(Path(tmp), args.size)
        source_name, mask_name = client.upload_image(source), client.upload_image(mask)
        info = client.object_info()
        seed = 100
        for name in wf.SD_WORKFLOWS:  # the editor workflows need the editors' weights

            def prompt(ksampler_seed: int, mllm_seed: int = 0, name: str = name) -> dict:
                return prepare_prompt(
                    name,
                    info,
                    models,
                    source_name=source_name,
                    mask_name=mask_name if name in (wf.MASKED_WORKFLOW, wf.SDXL_MASKED_WORKFLOW) else None,
                    steps=args.steps,
                    seed=ksampler_seed,
                    mllm_seed=mllm_seed,
                    max_new_tokens=24,
                    filename_prefix=f"bench/{name}",
                    working_size=args.size,  # the SDXL graphs: at the tiny source's size, not 1024 px
                )

            # A fresh MLLM seed per workflow: the first run really computes everything.
            seed += 1
            first_mllm_seed = seed
            first, _ = timed_run(client, prompt(seed, mllm_seed=first_mllm_seed))
            requeues, mllm_reruns = [], []
            for _ in range(args.repeats):
                seed += 1
                requeue_prompt = prompt(seed, mllm_seed=first_mllm_seed)
                elapsed, cached = timed_run(client, requeue_prompt)
                mllm_ids = find_node_ids(requeue_prompt, wf.REFINE_TITLE)
                if not set(mllm_ids) <= set(cached):
                    raise SystemExit(
                        f"the MLLM node re-ran on a re-queue (cached: {cached}): not a valid measurement"
                    )
                requeues.append(elapsed)
            mllm_seed = 10_000
            for _ in range(args.repeats):
                seed += 1
                mllm_seed += 1
                elapsed, _ = timed_run(client, prompt(seed, mllm_seed=mllm_seed))
                mllm_reruns.append(elapsed)
            requeue = statistics.median(requeues)
            rerun = statistics.median(mllm_reruns)
            lines.append(
                f"| {name} | {first:.2f} | {requeue:.2f} | {requeue / first:.3f} | {rerun:.2f} | {requeue / rerun:.3f} |"
            )
            print(lines[-1], flush=True)
        rss = server.peak_rss_bytes()
    header = [
        f"Workflow re-queue cost (bench/bench_workflows.py, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {platform.system()}, tiny models, {args.size}px, {args.steps} steps, "
        f"median of {args.repeats})",
        "",
        "| workflow | first run s | re-queue (new KSampler seed) s | re-queue / first | warm run with MLLM re-run s "
        "| re-queue / MLLM re-run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    print("\n".join(header + lines))
    print(f"\nComfyUI server peak RSS: {rss / 2**30:.2f} GiB" if rss else "\npeak RSS unknown")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
