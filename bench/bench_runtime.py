"""Headless ComfyUI costs: server start, the tiny txt2img graph (first run = loading + sampling,
second run = sampling only, identical re-queue = cache), and the server's peak RSS.

    .venv/bin/python bench/bench_runtime.py [--variant small|sites16] [--repeats 3] [--threads N]
    .venv/bin/python bench/bench_runtime.py --compare-threads 1,0 --repeats 3

Prints a Markdown table; the absolute seconds depend on the machine's load, the ratios less so.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devkit.comfyui_runtime import ComfyUIServer, txt2img_graph  # noqa: E402
from devkit.fixtures import cache_root  # noqa: E402
from devkit.fixtures.sd15 import tiny_sd15_checkpoint  # noqa: E402


def txt2img(ckpt_name: str, seed: int) -> dict:
    return txt2img_graph(ckpt_name, seed, positive="a red ball", negative="", prefix="bench")


def timed_run(server: ComfyUIServer, graph: dict) -> float:
    start = time.perf_counter()
    server.client.run(graph, timeout=600).raise_for_error()
    return time.perf_counter() - start


def compare_threads(ckpt: Path, settings: list[int], repeats: int) -> None:
    """Warm servers side by side, one per thread setting, timed alternately (same load for all)."""
    servers = {t: ComfyUIServer(models={"checkpoints": [ckpt]}, threads=t or None) for t in settings}
    try:
        for server in servers.values():
            server.start()
            timed_run(server, txt2img(ckpt.name, seed=1))
        times: dict[int, list[float]] = {t: [] for t in settings}
        for repeat in range(repeats):
            for t, server in servers.items():
                times[t].append(timed_run(server, txt2img(ckpt.name, seed=3000 + repeat)))
    finally:
        for server in servers.values():
            server.stop()
    print("| torch threads in server | warm run, new seed, median s (range) |")
    print("| --- | --- |")
    for t, values in times.items():
        print(f"| {t or 'default'} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="small", choices=["small", "sites16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads in the server (0: torch default)"
    )
    parser.add_argument(
        "--compare-threads", default="", help="e.g. '1,0': time warm runs per thread setting, interleaved"
    )
    args = parser.parse_args()
    ckpt = tiny_sd15_checkpoint(cache_root(), args.variant, seed=0)
    if args.compare_threads:
        compare_threads(ckpt, [int(t) for t in args.compare_threads.split(",")], args.repeats)
        return
    starts, firsts, seconds, cached, rss = [], [], [], [], []
    for repeat in range(args.repeats):
        with ComfyUIServer(models={"checkpoints": [ckpt]}, threads=args.threads or None) as server:
            starts.append(server.startup_s)
            firsts.append(timed_run(server, txt2img(ckpt.name, seed=1000 + repeat)))
            seconds.append(timed_run(server, txt2img(ckpt.name, seed=2000 + repeat)))
            cached.append(timed_run(server, txt2img(ckpt.name, seed=2000 + repeat)))
            rss.append(server.peak_rss_bytes() / 2**30)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"

    threads = args.threads or "default"
    print(
        f"tiny txt2img (`{args.variant}` checkpoint, 64x64, 2 euler steps), {args.repeats} fresh servers, threads {threads}"
    )
    print(
        f"machine: {platform.machine()}, python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print()
    print("| measure | median s (range) |")
    print("| --- | --- |")
    print(f"| server start to /object_info | {cell(starts)} |")
    print(f"| first run (load checkpoint + sample + decode) | {cell(firsts)} |")
    print(f"| second run, new seed (sample + decode) | {cell(seconds)} |")
    print(f"| identical re-queue (served from cache) | {cell(cached)} |")
    print(f"| server peak RSS, GiB | {cell(rss)} |")
    print()
    print(f"ratio first/second run: {statistics.median(firsts) / statistics.median(seconds):.1f}x")


if __name__ == "__main__":
    main()
