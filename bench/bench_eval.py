"""Evaluation-harness timings, as ratios measured within one run (the machine is shared and noisy).

1. Metrics at 512x512 on one image pair: our SSIM vs scikit-image's, our LPIPS vs the `lpips` package
   (same random AlexNet weights, so the values must agree too), PSNR.
2. The tiny SD1.5 diffusers pipeline (64 px, 2 steps): one edit with our IP-Adapter processors vs
   diffusers' own, and img2img vs inpainting, with 1 torch thread.

    .venv/bin/python bench/bench_eval.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_metrics(repeats: int) -> list[str]:
    from skimage.metrics import structural_similarity

    from training.evaluate.metrics import LPIPS, psnr, ssim

    generator = torch.Generator().manual_seed(0)
    a = torch.rand(3, 512, 512, generator=generator)
    b = (a + 0.1 * torch.randn(3, 512, 512, generator=generator)).clamp(0, 1)
    a_np, b_np = a.permute(1, 2, 0).double().numpy(), b.permute(1, 2, 0).double().numpy()
    ours_ssim = best_of(lambda: ssim(a, b), repeats)
    sk_ssim = best_of(
        lambda: structural_similarity(
            a_np, b_np, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        ),
        repeats,
    )  # fmt: skip
    t_psnr = best_of(lambda: psnr(a, b), repeats)
    lines = [
        f"PSNR 512x512: {t_psnr * 1e3:.1f} ms",
        f"SSIM 512x512: ours {ours_ssim * 1e3:.1f} ms, scikit-image {sk_ssim * 1e3:.1f} ms "
        f"(ours/skimage = {ours_ssim / sk_ssim:.2f})",
    ]
    try:
        import lpips as lpips_pkg
    except ImportError:
        return lines + ["LPIPS: lpips package not installed, comparison skipped"]
    torch.manual_seed(1)
    reference = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    ours = LPIPS("alex")
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    backbone = {}
    for index, number in slices.items():
        for part in ("weight", "bias"):
            backbone[f"features.{index}.{part}"] = reference.state_dict()[f"net.slice{number}.{index}.{part}"]
    ours.load_backbone_state(backbone)
    ours.load_heads_state({k: v for k, v in reference.state_dict().items() if k.startswith("lin")})
    x, y = a.unsqueeze(0) * 2 - 1, b.unsqueeze(0) * 2 - 1
    with torch.no_grad():
        t_ours = best_of(lambda: ours(x, y), repeats)
        t_ref = best_of(lambda: reference(x, y), repeats)
        diff = abs(float(ours(x, y)[0]) - float(reference(x, y).flatten()[0]))
    return lines + [
        f"LPIPS alex 512x512: ours {t_ours * 1e3:.1f} ms, lpips package {t_ref * 1e3:.1f} ms "
        f"(ours/package = {t_ours / t_ref:.2f}; |difference| = {diff:.1e})"
    ]


def bench_pipeline(repeats: int) -> list[str]:
    from PIL import Image

    from devkit.fixtures import cache_root
    from devkit.fixtures.sd15_diffusers import build_sd15_diffusers, build_tiny_ipadapter
    from training.evaluate.pipelines import DiffusionSettings, EditPipelines

    cache = cache_root() / "eval"
    model, adapter = build_sd15_diffusers(cache), build_tiny_ipadapter(cache, image_embed_dim=1024)
    source = Image.new("RGB", (64, 64), (120, 80, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    embeds = torch.randn(1, 1024)
    timings = {}
    for backend in ("mindedit", "diffusers"):
        editor = EditPipelines(
            DiffusionSettings(model=str(model), ipadapter=str(adapter), ipadapter_backend=backend, steps=2,
                              resolution=64)
        )  # fmt: skip
        editor.edit(source, "warm up", image_embeds=embeds)
        timings[(backend, "img2img")] = best_of(
            lambda e=editor: e.edit(source, "a cat", image_embeds=embeds), repeats
        )
        timings[(backend, "inpaint")] = best_of(
            lambda e=editor: e.edit(source, "a cat", mask=mask, image_embeds=embeds), repeats
        )
    ours, theirs = timings[("mindedit", "img2img")], timings[("diffusers", "img2img")]
    return [
        "tiny SD1.5 (64 px, 2 steps, 1 thread), one edit: "
        + ", ".join(f"{b}/{k} {t * 1e3:.0f} ms" for (b, k), t in timings.items()),
        f"IP-Adapter back ends, img2img: mindedit/diffusers = {ours / theirs:.2f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.random.seed(0)
    print(f"bench_eval {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, 1 torch thread, best of {args.repeats}")  # fmt: skip
    with tempfile.TemporaryDirectory():
        for line in bench_metrics(args.repeats) + bench_pipeline(args.repeats):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
