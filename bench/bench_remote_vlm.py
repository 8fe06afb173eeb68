"""The remote VLM backend's cost over the server's own answer time, and the bytes it sends per image.

1. Overhead: the stdlib stand-in server (devkit/openai_standin.py, 127.0.0.1) answers after a fixed
   delay; one `RemoteVLM.refine_full` call (image preparation at the budget, PNG encoding, JSON,
   HTTP, waiting, parsing) minus that delay, for a 1024x768 source at a 384 px budget, median of
   ``--repeats`` calls (each a fresh request: the pass cache is a node-level cache, not used here).
2. Bytes: the request body and the PNG inside it at max_image_side 384 / 768 / 1024 for a
   2048x1536 source: the bundled sample (smooth, compresses well) and uniform noise (the worst case
   for PNG; real photographs fall between).

    .venv/bin/python bench/bench_remote_vlm.py [--repeats 20] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from devkit.demo import SAMPLE_SOURCE  # noqa: E402
from devkit.openai_standin import StandInServer  # noqa: E402
from mindedit_core.mllm import PassOptions  # noqa: E402
from mindedit_core.remote.vlm import RemoteVLM  # noqa: E402


def as_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]


def overhead(repeats: int, delay: float) -> None:
    server = StandInServer(delay_s=delay)
    try:
        vlm = RemoteVLM(server.base_url, "bench")
        image = as_tensor(Image.open(SAMPLE_SOURCE).resize((1024, 768), Image.BICUBIC))
        options = PassOptions(max_image_side=384)
        vlm.refine_full(image, "make the sky a sunset", options=options)  # warm-up
        walls, prepares = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            result = vlm.refine_full(image, "make the sky a sunset", options=options)
            walls.append(time.perf_counter() - start)
            prepares.append(result.timings["prepare"])
        wall = statistics.median(walls)
        print(f"server delay {delay * 1000:.0f} ms; median call {wall * 1000:.1f} ms over {repeats} calls")
        print(
            f"overhead {(wall - delay) * 1000:.1f} ms (of which image prep + PNG + JSON "
            f"{statistics.median(prepares) * 1000:.1f} ms); min {(min(walls) - delay) * 1000:.1f} ms, "
            f"max {(max(walls) - delay) * 1000:.1f} ms"
        )
    finally:
        server.close()


def bytes_sent() -> None:
    server = StandInServer()
    try:
        vlm = RemoteVLM(server.base_url, "bench")
        sources = {
            "sample (smooth)": Image.open(SAMPLE_SOURCE).resize((2048, 1536), Image.BICUBIC),
            "uniform noise": Image.fromarray(
                np.random.default_rng(0).integers(0, 256, (1536, 2048, 3), dtype=np.uint8)
            ),
        }
        print("| source | max_image_side | image sent | PNG bytes | request body bytes |")
        print("| --- | --- | --- | --- | --- |")
        for label, source in sources.items():
            tensor = as_tensor(source)
            for side in (384, 768, 1024):
                result = vlm.refine_full(
                    tensor, "make the sky a sunset", options=PassOptions(max_image_side=side)
                )
                sent = Image.open(__import__("io").BytesIO(server.requests[-1].images[0]))
                print(
                    f"| {label} | {side} | {sent.width}x{sent.height} | {result.image_bytes:,} | "
                    f"{result.request_bytes:,} |"
                )
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5, help="the stand-in's answer time (s)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    overhead(args.repeats, args.delay)
    bytes_sent()


if __name__ == "__main__":
    main()
