"""RAM of a headless CPU ComfyUI around "Unload models" with a few-hundred-MB MLLM.

Starts the real server, runs the pack's MLLM once (loader -> refine -> PreviewAny), then presses
"Unload models" (`/free` with `unload_models` only), then "Free model and node cache"
(`unload_models` + `free_memory`), reading the server's RSS after each; then runs the MLLM again
(the reload). The model is a random LLaVA-OneVision with ~130 M parameters (~0.5 GB in fp32).

    .venv/bin/python bench/bench_unload.py [--old-pack PATH]

`--old-pack` adds a row for another checkout of the pack (e.g. the commit before the unload fix,
extracted with `git archive <commit> | tar -x -C /tmp/old/ComfyUI-MIND-Edit`), measured the same way
in the same run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devkit.comfyui_runtime import ComfyUIServer, mllm_refine_graph  # noqa: E402
from devkit.fixtures import cache_root  # noqa: E402
from devkit.fixtures.atomic import build_once  # noqa: E402

MiB = 1024 * 1024
SETTLE_S = 6.0  # ComfyUI handles /free between prompts, then collects garbage


def medium_llava_onevision() -> Path:
    from devkit.fixtures.llava_onevision import build_llava_onevision

    def write(out: Path) -> None:
        build_llava_onevision(
            out,
            hidden_size=1024,
            num_layers=12,
            num_heads=8,
            num_kv_heads=2,
            intermediate_size=2816,
            tie_word_embeddings=False,
        )
        (out / ".complete").write_text("1")

    return build_once(
        cache_root() / "llava_onevision_unload_bench_v1", write, done=lambda p: (p / ".complete").is_file()
    )


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 60, 30)).save(buf, format="PNG")
    return buf.getvalue()


def settled_rss(server: ComfyUIServer) -> int:
    time.sleep(SETTLE_S)
    return server.rss_bytes() or 0


def measure(model_dir: Path, pack: Path | None) -> dict[str, float]:
    kwargs = {"include_pack": False, "extra_packs": [pack]} if pack else {}
    with ComfyUIServer(threads=1, **kwargs) as server:
        client = server.client
        folder = server.add_model("LLM", model_dir, name="medium-llava")
        image = client.upload_image(png(), name="unload_bench.png")
        row = {"start": settled_rss(server) / MiB}
        t0 = time.perf_counter()
        client.run(mllm_refine_graph(image, folder, "add a red hat"), timeout=900).raise_for_error()
        row["first run s"] = time.perf_counter() - t0
        row["loaded"] = settled_rss(server) / MiB
        client.free(unload_models=True, free_memory=False)
        row["unload"] = settled_rss(server) / MiB
        client.free(unload_models=True, free_memory=True)
        row["unload + free"] = settled_rss(server) / MiB
        t0 = time.perf_counter()
        client.run(mllm_refine_graph(image, folder, "add a blue scarf"), timeout=900).raise_for_error()
        row["next run s"] = time.perf_counter() - t0
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-pack", type=Path, help="another checkout of the pack, measured first")
    args = parser.parse_args()
    model_dir = medium_llava_onevision()
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) / MiB
    rows = {}
    if args.old_pack:
        rows[f"pack at {args.old_pack}"] = measure(model_dir, args.old_pack.resolve())
    rows["this tree"] = measure(model_dir, None)
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d} {platform.processor() or platform.machine()}, "
        f"model weights {weights:.0f} MiB (fp32), RSS in MiB, {SETTLE_S:.0f} s settle after each step\n"
    )
    print(
        "| pack | start | after the MLLM ran | Unload models | + Free model and node cache | first run s | next run s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['start']:.0f} | {r['loaded']:.0f} | {r['unload']:.0f} "
            f"({r['unload'] - r['loaded']:+.0f}) | {r['unload + free']:.0f} ({r['unload + free'] - r['loaded']:+.0f}) "
            f"| {r['first run s']:.1f} | {r['next run s']:.1f} |"
        )


if __name__ == "__main__":
    main()
