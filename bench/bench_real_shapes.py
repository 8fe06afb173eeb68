"""Benchmark at real shapes (random weights, CPU): what v_insight and the IP-Adapter patch cost at the
sizes users run.

    .venv/bin/python bench/bench_real_shapes.py [--rounds 3] [--steps 1] [--latent 64] [--new-tokens 16]
        [--sections mllm,comfy,sites,diffusers] [--threads 1] [--json out.json]
    .venv/bin/python bench/bench_real_shapes.py --sections sdxl_comfy,sdxl_diffusers,sdxl_sites --latent 64 --threads 1

Sections, each in its own subprocess (so each one's peak RSS is its own and memory is freed between
them), variants interleaved in a rotating order each round, medians and per-round ratios within the
run, in wall and process CPU time (CPU time is less sensitive to other jobs on a shared machine):

- ``mllm``: LLaVA-OneVision at the real 0.5B shape (`devkit.fixtures.real_shapes`), a 384 px image
  (1,485 image tokens): ``refine_and_embed`` with a plain head and with a plus head (layer 18 of 24)
  vs ``refine_full`` (the same generate, no hook, no head);
- ``comfy``: ComfyUI 0.3.75 in-process (``--cpu``), the real-shape SD1.5 (859.5 M UNet),
  ``comfy.sample`` at ``--latent`` (64 = 512 px), CFG 5 (cond + uncond batch): unpatched vs patched by
  `apply_ipadapter` with a real-width plain and a plus adapter, ComfyUI's own attention function;
- ``sites``: one attn2 site of each width (320 at 64x64 tokens, 640 at 32x32, 1280 at 16x16 for a
  512 px image, CFG batch 2): our replacement (plain, plus) vs ComfyUI's attention alone;
- ``diffusers``: diffusers' ``UNet2DConditionModel`` with SD1.5's real config, one UNet forward
  (CFG batch 2): no IP-Adapter, diffusers' own IP-Adapter (plain, plus; loaded by diffusers from our
  files' sections) and our `MindEditIPAttnProcessor` (plain, plus).

Opt-in (not in the default ``--sections``; ~10 GB each, one UNet in memory at a time):

- ``sdxl_comfy``: SDXL base's UNet at its real width (2.57 B params, fp32; ComfyUI's own model class,
  its config detected by ComfyUI from the real key layout, weights `devkit.fixtures.sd15.init_tensor`
  of each key), ``comfy.sample`` at ``--latent`` with cfg 1 (one UNet forward per step, batch 1, the
  conditional pass only): unpatched vs patched by `apply_ipadapter` with real-width SDXL ViT-H plain
  and plus adapters (70 sites), ComfyUI's own attention function;
- ``sdxl_diffusers``: diffusers' ``UNet2DConditionModel`` with SDXL base's config holding the same
  weights (each diffusers key filled from its ComfyUI key's value), one UNet forward, batch 1: no
  IP-Adapter, diffusers' own SDXL IP-Adapter (plain, plus) and our `MindEditIPAttnProcessor`;
- ``sdxl_sites`` (cheap: the UNet stays on the meta device, only the real-width adapters are loaded):
  one attn2 site of each SDXL width (640 at (latent/2)^2 tokens, 1280 at (latent/4)^2), batch 1: our
  replacement (plain, plus) vs ComfyUI's attention alone, many calls per timing; the time the patch
  adds to one UNet forward is then 10 x the 640-wide difference + 60 x the 1280-wide one (SDXL has 10
  and 60 such sites), to set beside ``sdxl_comfy``'s forward time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SECTIONS = ("mllm", "comfy", "sites", "diffusers")
SDXL_SECTIONS = ("sdxl_comfy", "sdxl_diffusers", "sdxl_sites")  # opt-in: real-width SDXL


def peak_rss_gib() -> float:
    """This process's peak resident set size (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def interleaved(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Run every variant once per round, in an order rotated each round; wall and CPU seconds."""
    return interleaved_prepared({name: (lambda fn=fn: fn) for name, fn in variants.items()}, rounds)


def interleaved_prepared(
    set_ups: dict[str, Callable[[], Callable[[], object]]], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """`interleaved` where each variant needs an untimed set-up before each run (e.g. installing its
    attention processors): ``set_ups[name]()`` returns the call that is timed."""
    names = list(set_ups)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            run = set_ups[name]()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {"wall": wall, "cpu": cpu}


# -- sections ----------------------------------------------------------------------------------------


def section_mllm(opts) -> dict:
    import logging

    import numpy as np

    from devkit.fixtures import cache_root
    from devkit.fixtures.real_shapes import real_llava_onevision
    from mindedit_core.mllm import MindEditMLLM, load_mllm
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    logging.getLogger("mindedit_core").setLevel(logging.ERROR)  # the random model's parser fallback
    base = load_mllm(real_llava_onevision(cache_root()), device="cpu", dtype="fp32")
    layer = default_layer(base.num_layers)
    hidden = base.model.config.text_config.hidden_size
    torch.manual_seed(0)
    heads = {
        k: VisionHead(VisionHeadConfig.for_kind(k, hidden_size=hidden, layer=layer)).eval()
        for k in ("plain", "plus")
    }
    mllms = {k: MindEditMLLM(base.model, base.processor, h) for k, h in heads.items()}
    image = np.random.default_rng(0).random((384, 384, 3)).astype(np.float32)
    instruction = "replace the red car with a blue bicycle"
    n = opts.new_tokens
    variants = {
        "one_pass_plain": lambda: mllms["plain"].refine_and_embed(image, instruction, max_new_tokens=n),
        "one_pass_plus": lambda: mllms["plus"].refine_and_embed(image, instruction, max_new_tokens=n),
        "refine_only": lambda: mllms["plain"].refine_full(image, instruction, max_new_tokens=n),
    }
    first = variants["one_pass_plus"]()
    for fn in variants.values():  # warm-up
        fn()
    times = interleaved(variants, opts.rounds)
    info = {
        "model": f"LLaVA-OneVision 0.5B shape, {sum(p.numel() for p in base.model.parameters()) / 1e9:.3f} B params, fp32",
        "head_layer": layer,
        "head_params_m": {k: h.num_parameters() / 1e6 for k, h in heads.items()},
        "prompt_tokens": first.prompt_tokens,
        "new_tokens": first.new_tokens,
    }
    ratios = [("one_pass_plain", "refine_only"), ("one_pass_plus", "refine_only")]
    return {"info": info, "times": times, "ratios": ratios}


def _comfy_model():
    from devkit.comfyui_runtime import comfyui_root
    from devkit.fixtures import cache_root
    from devkit.fixtures.real_shapes import real_ipadapter_file, real_sd15_checkpoint

    tree = str(comfyui_root())
    if tree not in sys.path:
        sys.path.append(tree)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy.sd

    from mindedit_core.ipadapter import apply_ipadapter, load_ipadapter

    model = comfy.sd.load_checkpoint_guess_config(
        str(real_sd15_checkpoint(cache_root())), output_vae=False, output_clip=False
    )[0]
    attention = comfy_attention_fn()
    patched = {}
    for kind in ("plain", "plus"):
        adapter = load_ipadapter(real_ipadapter_file(cache_root(), kind))
        embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
        patched[kind] = apply_ipadapter(model, adapter, embeds, weight=1.0, attention_fn=attention)
    return model, patched, attention


def section_comfy(opts) -> dict:
    model, patched, _ = _comfy_model()
    import comfy.sample  # importable once _comfy_model has put ComfyUI's tree on sys.path

    gen = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    noise = torch.randn(1, 4, opts.latent, opts.latent, generator=gen)

    def sampler(m):
        return lambda: comfy.sample.sample(
            m, noise, opts.steps, 5.0, "euler", "normal", positive, negative, torch.zeros_like(noise),
            disable_pbar=True, seed=0,
        )  # fmt: skip

    variants = {
        "unpatched": sampler(model),
        "patched_plain": sampler(patched["plain"]),
        "patched_plus": sampler(patched["plus"]),
    }
    for fn in variants.values():
        fn()
    times = interleaved(variants, opts.rounds)
    info = {
        "model": "real-shape SD1.5 (859.5 M UNet), ComfyUI 0.3.75 --cpu, fp32",
        "attention": comfy_attention_name(),
        "latent": opts.latent,
        "steps": opts.steps,
    }
    ratios = [("patched_plain", "unpatched"), ("patched_plus", "unpatched")]
    return {"info": info, "times": times, "ratios": ratios}


def comfy_attention_fn():
    """ComfyUI's own attention in our ``attention_fn`` signature: what the pack's apply node passes."""
    from comfy.ldm.modules import attention as comfy_attention

    def attention(q, k, v, heads, extra=None):
        extra = extra or {}
        return comfy_attention.optimized_attention(
            q, k, v, heads, attn_precision=extra.get("attn_precision"), transformer_options=extra
        )

    return attention


def comfy_attention_name() -> str:
    from comfy.ldm.modules import attention as comfy_attention

    return comfy_attention.optimized_attention.__name__


def site_variants(
    sites: list[tuple[tuple, int, int]],
    patches: dict[str, dict],
    attention,
    *,
    side: int,
    cond_or_uncond: list[int],
    heads_of,
    calls: int,
) -> tuple[dict[str, Callable[[], None]], list[tuple[str, str]]]:
    """Per attn2 site ``(key, width, query tokens)``: ComfyUI's attention alone (``w{width}_comfy``)
    and our replacement of each kind (``w{width}_{kind}``, from ``patches[kind][key]``), ``calls``
    calls per timing on seeded q/k/v of batch ``len(cond_or_uncond)``; and the ratios to report."""
    batch = len(cond_or_uncond)
    variants, ratios = {}, []
    for key, width, tokens in sites:
        g = torch.Generator().manual_seed(width)
        q = torch.randn(batch, tokens, width, generator=g)
        k, v = torch.randn(batch, 77, width, generator=g), torch.randn(batch, 77, width, generator=g)
        heads = heads_of(width)
        extra = {"n_heads": heads, "cond_or_uncond": cond_or_uncond, "sigmas": torch.full((batch,), 5.0),
                 "original_shape": [batch, 4, side, side]}  # fmt: skip

        def repeated(fn, q=q, k=k, v=v, extra=extra):
            def run():
                with torch.no_grad():
                    for _ in range(calls):
                        fn(q, k, v, extra)

            return run

        variants[f"w{width}_comfy"] = repeated(lambda q, k, v, e, h=heads: attention(q, k, v, h, e))
        for kind in patches:
            variants[f"w{width}_{kind}"] = repeated(patches[kind][key])
            ratios.append((f"w{width}_{kind}", f"w{width}_comfy"))
    return variants, ratios


def section_sites(opts) -> dict:
    model, patched, attention = _comfy_model()
    side = opts.latent
    sites = [(("input", 1, 0), 320, side * side), (("input", 4, 0), 640, (side // 2) ** 2),
             (("input", 7, 0), 1280, (side // 4) ** 2)]  # fmt: skip
    patches = {
        kind: patched[kind].model_options["transformer_options"]["patches_replace"]["attn2"]
        for kind in ("plain", "plus")
    }
    variants, ratios = site_variants(
        sites,
        patches,
        attention,
        side=side,
        cond_or_uncond=[1, 0],
        heads_of=lambda w: 8,
        calls=opts.site_calls,
    )
    for fn in variants.values():
        fn()
    times = interleaved(variants, opts.rounds)
    info = {"calls_per_timing": opts.site_calls, "attention": comfy_attention_name(), "latent": side}
    return {"info": info, "times": times, "ratios": ratios}


def clear_ip_adapter(unet, original_processors: dict) -> None:
    """A diffusers UNet back to no IP-Adapter: its image projection and its original processors."""
    unet.encoder_hid_proj = None  # first: a plus projection holds attention layers too
    unet.config.encoder_hid_dim_type = None
    unet.set_attn_processor(dict(original_processors))


def diffusers_modes(
    latent: int,
    channels: tuple[int, ...] = (320, 640, 1280, 1280),
    site_widths: tuple[int, ...] | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
):
    """A random diffusers SD1.5 UNet and, per mode (``none``, ``diffusers_{plain,plus}``,
    ``ours_{plain,plus}``), a set-up function (not timed) that returns one UNet forward (CFG batch 2)."""
    from diffusers import UNet2DConditionModel

    from devkit.fixtures.ipadapter_files import SD15_WIDTHS, ipadapter_sections
    from mindedit_core.ipadapter import build_ipadapter
    from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=latent,
        block_out_channels=channels,
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
    )  # fmt: skip  (the default block types are SD1.5's)
    unet = unet.to(device=device, dtype=dtype).eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, latent, latent, generator=gen).to(device, dtype)
    text = torch.randn(2, 77, 768, generator=gen).to(device, dtype)
    t = torch.tensor([500.0, 500.0], device=device)
    original = dict(unet.attn_processors)
    sections = {
        kind: {n: {k: v.float() for k, v in sec.items()} for n, sec in ipadapter_sections(kind, site_widths=site_widths or SD15_WIDTHS).items()}
        for kind in ("plain", "plus")
    }  # fmt: skip
    embeds = {
        "plain": torch.randn(2, 1, 1024, generator=gen),
        "plus": torch.randn(2, 1, 257, 1280, generator=gen),
    }

    def mode(name: str):
        def set_up():
            clear_ip_adapter(unet, original)
            kwargs = {}
            kind = name.split("_")[-1]
            if name.startswith("diffusers_"):
                unet._load_ip_adapter_weights([sections[kind]], low_cpu_mem_usage=False)
                unet.to(device=device, dtype=dtype)
                kwargs = {"added_cond_kwargs": {"image_embeds": [embeds[kind].to(device, dtype)]}}
            elif name.startswith("ours_"):
                adapter = build_ipadapter(sections[kind], source="bench").to(device)
                state = install_ipadapter_processors(unet, adapter)
                e = embeds[kind][:, 0].to(device)
                state.set_embeds(adapter, e[1:], e[:1], cfg=True)
            return lambda: unet(x, t, encoder_hidden_states=text, **kwargs)

        return set_up

    names = ("none", "diffusers_plain", "ours_plain", "diffusers_plus", "ours_plus")
    return {name: mode(name) for name in names}, sum(p.numel() for p in unet.parameters())


def section_diffusers(opts) -> dict:
    modes, params = diffusers_modes(opts.latent)
    with torch.no_grad():
        for set_up in modes.values():  # warm-up
            set_up()()
        times = interleaved_prepared(modes, opts.rounds)  # processor set-up is not timed
    info = {
        "model": f"diffusers UNet2DConditionModel, SD1.5 config, {params / 1e6:.1f} M params, fp32",
        "latent": opts.latent,
    }
    ratios = [
        ("diffusers_plain", "none"),
        ("diffusers_plus", "none"),
        ("ours_plain", "diffusers_plain"),
        ("ours_plus", "diffusers_plus"),
        ("ours_plain", "none"),
        ("ours_plus", "none"),
    ]
    return {"info": info, "times": times, "ratios": ratios}


# -- SDXL at its real width ------------------------------------------------------------------------


def _comfy_importable() -> None:
    from devkit.comfyui_runtime import comfyui_root

    tree = str(comfyui_root())
    if tree not in sys.path:
        sys.path.append(tree)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True


def _fill(module: torch.nn.Module, key_of: Callable[[str], str], seed: int = 0) -> int:
    """Every parameter of ``module`` set to `init_tensor` of its key in the single-file (LDM) layout;
    returns how many parameters were filled."""
    from devkit.fixtures.sd15 import init_tensor

    filled = 0
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(init_tensor(key_of(name), tuple(param.shape), seed))
            filled += param.numel()
    return filled


def real_sdxl_comfy_model():
    """ComfyUI's ``ModelPatcher`` around SDXL base's UNet at its real width, fp32 on the CPU, built
    uninitialised (ComfyUI's ops skip the init) from the config ComfyUI detects and filled with the
    fixture's deterministic values."""
    _comfy_importable()
    import comfy.model_detection
    import comfy.model_patcher

    from devkit.fixtures.sdxl import REAL_SDXL_UNET_PARAMS, UNET_PREFIX
    from devkit.fixtures.sdxl import unet_layout as sdxl_unet_layout

    layout = {UNET_PREFIX + key: torch.empty(shape, device="meta") for key, shape in sdxl_unet_layout("real")}
    config = comfy.model_detection.model_config_from_unet(layout, UNET_PREFIX)
    config.set_inference_dtype(torch.float32, torch.float32)
    model = config.get_model(layout, UNET_PREFIX, device=torch.device("cpu"))
    filled = _fill(model.diffusion_model, lambda name: name)
    if filled != REAL_SDXL_UNET_PARAMS:
        raise RuntimeError(f"filled {filled:,} UNet parameters, SDXL base has {REAL_SDXL_UNET_PARAMS:,}")
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model.eval(), load_device=cpu, offload_device=cpu), config


def section_sdxl_comfy(opts) -> dict:
    from devkit.fixtures import cache_root
    from devkit.fixtures.real_shapes import real_sdxl_ipadapter_file
    from mindedit_core.ipadapter import apply_ipadapter, load_ipadapter

    started = time.perf_counter()
    model, _ = real_sdxl_comfy_model()
    built = time.perf_counter() - started
    import comfy.model_management
    import comfy.sample

    attention = comfy_attention_fn()
    patched = {}
    for kind in ("plain", "plus"):  # the adapter is dropped after apply: each site keeps its image k/v
        adapter = load_ipadapter(real_sdxl_ipadapter_file(cache_root(), kind))
        embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
        patched[kind] = apply_ipadapter(model, adapter, embeds, weight=1.0, attention_fn=attention)
        sites = len(patched[kind].model_options["transformer_options"]["patches_replace"]["attn2"])
        del adapter
    gen = torch.Generator().manual_seed(1)
    positive = [
        [torch.randn(1, 77, 2048, generator=gen), {"pooled_output": torch.randn(1, 1280, generator=gen)}]
    ]
    negative = [[torch.zeros(1, 77, 2048), {"pooled_output": torch.zeros(1, 1280)}]]
    noise = torch.randn(1, 4, opts.latent, opts.latent, generator=gen)

    def sampler(m):
        return lambda: comfy.sample.sample(
            m,
            noise,
            opts.steps,
            1.0,
            "euler",
            "normal",
            positive,
            negative,
            torch.zeros_like(noise),
            disable_pbar=True,
            seed=0,
        )  # fmt: skip  (cfg 1: ComfyUI skips the unconditional pass)

    variants = {
        "unpatched": sampler(model),
        "patched_plain": sampler(patched["plain"]),
        "patched_plus": sampler(patched["plus"]),
    }
    with torch.no_grad():
        for fn in variants.values():
            fn()
        times = interleaved(variants, opts.rounds)
    info = {
        "model": "SDXL base's UNet at real width (2,567,463,684 params), ComfyUI --cpu, fp32, random weights",
        "comfyui": comfy_tree_name(),
        "attention": comfy_attention_name(),
        "latent": opts.latent,
        "steps": opts.steps,
        "batch": "1 (cfg 1: conditional pass only)",
        "sites_patched": sites,
        "build_s": round(built, 1),
        "loadavg_end": os.getloadavg(),
    }
    ratios = [("patched_plain", "unpatched"), ("patched_plus", "unpatched")]
    return {"info": info, "times": times, "ratios": ratios}


def section_sdxl_sites(opts) -> dict:
    _comfy_importable()
    from devkit.fixtures import cache_root
    from devkit.fixtures.real_shapes import real_sdxl_ipadapter_file, real_sdxl_model_on_meta
    from mindedit_core.ipadapter import apply_ipadapter, load_ipadapter

    model = real_sdxl_model_on_meta()  # the sites are read off it; nothing of it runs
    attention = comfy_attention_fn()
    patches = {}
    for kind in ("plain", "plus"):
        adapter = load_ipadapter(real_sdxl_ipadapter_file(cache_root(), kind))
        embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
        patched = apply_ipadapter(model, adapter, embeds, weight=1.0, attention_fn=attention)
        patches[kind] = patched.model_options["transformer_options"]["patches_replace"]["attn2"]
        del adapter, patched
    side = opts.latent
    counts = {640: 10, 1280: 60}  # SDXL base's sites per width
    sites = [(("input", 4, 0), 640, (side // 2) ** 2), (("input", 7, 0), 1280, (side // 4) ** 2)]
    variants, ratios = site_variants(
        sites,
        patches,
        attention,
        side=side,
        cond_or_uncond=[0],
        heads_of=lambda w: w // 64,
        calls=opts.site_calls,
    )
    for fn in variants.values():
        fn()
    times = interleaved(variants, opts.rounds)
    added = {}
    for kind in ("plain", "plus"):
        per_call = {
            w: (
                statistics.median(times["cpu"][f"w{w}_{kind}"])
                - statistics.median(times["cpu"][f"w{w}_comfy"])
            )
            / opts.site_calls
            for w in counts
        }
        added[kind] = round(sum(counts[w] * per_call[w] for w in counts), 4)
    info = {
        "calls_per_timing": opts.site_calls,
        "attention": comfy_attention_name(),
        "latent": side,
        "batch": 1,
        "added_cpu_s_per_unet_forward": added,  # 10 x (640-wide site) + 60 x (1280-wide site), medians
    }
    return {"info": info, "times": times, "ratios": ratios}


def comfy_tree_name() -> str:
    from devkit.comfyui_runtime import comfyui_root

    return comfyui_root().name


def real_sdxl_diffusers_unet():
    """diffusers' SDXL base UNet (fp32, CPU) holding the same values as `real_sdxl_comfy_model`'s
    (each diffusers key filled from the value of its single-file key, ComfyUI's key map)."""
    _comfy_importable()
    import comfy.model_detection
    import comfy.utils
    from diffusers import UNet2DConditionModel

    from devkit.fixtures.sdxl import REAL_SDXL_UNET_PARAMS, UNET_PREFIX
    from devkit.fixtures.sdxl import unet_layout as sdxl_unet_layout

    layout = {UNET_PREFIX + key: torch.empty(shape, device="meta") for key, shape in sdxl_unet_layout("real")}
    unet_config = comfy.model_detection.model_config_from_unet(layout, UNET_PREFIX).unet_config
    key_map = comfy.utils.unet_to_diffusers(unet_config)
    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )  # SDXL base's unet/config.json
    unet = unet.to_empty(device="cpu")
    if list(unet.buffers()):
        raise RuntimeError("diffusers' UNet has buffers now: they would stay uninitialised here")
    unmapped = [n for n, _ in unet.named_parameters() if n not in key_map]
    if unmapped:
        raise RuntimeError(f"no single-file key for diffusers' {unmapped[:5]}")
    filled = _fill(unet, lambda name: key_map[name])
    if filled != REAL_SDXL_UNET_PARAMS:
        raise RuntimeError(f"filled {filled:,} UNet parameters, SDXL base has {REAL_SDXL_UNET_PARAMS:,}")
    return unet.eval()


def section_sdxl_diffusers(opts) -> dict:
    from devkit.fixtures.ipadapter_files import SDXL_WIDTHS, sdxl_ipadapter_sections
    from mindedit_core.ipadapter import build_ipadapter
    from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors

    started = time.perf_counter()
    unet = real_sdxl_diffusers_unet()
    built = time.perf_counter() - started
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, opts.latent, opts.latent, generator=gen)
    text = torch.randn(1, 77, 2048, generator=gen)
    added = {
        "text_embeds": torch.randn(1, 1280, generator=gen),
        "time_ids": torch.tensor([[1024.0, 1024, 0, 0, 1024, 1024]]),
    }
    t = torch.tensor([500.0])
    original = dict(unet.attn_processors)
    sections = {
        kind: sdxl_ipadapter_sections(kind, site_widths=SDXL_WIDTHS) for kind in ("plain", "plus")
    }  # fp16
    embeds = {
        "plain": torch.randn(1, 1, 1024, generator=gen),
        "plus": torch.randn(1, 1, 257, 1280, generator=gen),
    }

    def as_float(kind):
        return {n: {k: v.float() for k, v in sec.items()} for n, sec in sections[kind].items()}

    def mode(name: str):
        def set_up():
            clear_ip_adapter(unet, original)
            kwargs = {}
            kind = name.split("_")[-1]
            if name.startswith("diffusers_"):
                unet._load_ip_adapter_weights([as_float(kind)], low_cpu_mem_usage=False)
                unet.to(torch.float32)
                kwargs = {"image_embeds": [embeds[kind]]}
            elif name.startswith("ours_"):
                adapter = build_ipadapter(as_float(kind), source="bench")
                state = install_ipadapter_processors(unet, adapter)
                state.set_embeds(adapter, embeds[kind][:, 0], cfg=False)
            return lambda: unet(x, t, encoder_hidden_states=text, added_cond_kwargs={**added, **kwargs})

        return set_up

    modes = {
        name: mode(name) for name in ("none", "diffusers_plain", "ours_plain", "diffusers_plus", "ours_plus")
    }
    with torch.no_grad():
        for set_up in modes.values():  # warm-up
            set_up()()
        times = interleaved_prepared(modes, opts.rounds)  # processor set-up is not timed
    info = {
        "model": "diffusers UNet2DConditionModel, SDXL base config (2,567,463,684 params), fp32, the same values",
        "latent": opts.latent,
        "batch": 1,
        "build_s": round(built, 1),
        "loadavg_end": os.getloadavg(),
    }
    ratios = [
        ("diffusers_plain", "none"),
        ("diffusers_plus", "none"),
        ("ours_plain", "none"),
        ("ours_plus", "none"),
        ("ours_plain", "diffusers_plain"),
        ("ours_plus", "diffusers_plus"),
    ]
    return {"info": info, "times": times, "ratios": ratios}


# -- orchestration -----------------------------------------------------------------------------------


def summarize(result: dict) -> dict:
    times = result["times"]
    out = {"info": result["info"], "peak_rss_gib": result["peak_rss_gib"], "median_s": {}, "ratios": {}}
    for clock in ("wall", "cpu"):
        out["median_s"][clock] = {k: statistics.median(v) for k, v in times[clock].items()}
    for a, b in result["ratios"]:
        entry = {}
        for clock in ("wall", "cpu"):
            per_round = [x / y for x, y in zip(times[clock][a], times[clock][b])]
            entry[clock] = {
                "median": statistics.median(per_round),
                "min": min(per_round),
                "max": max(per_round),
            }
        out["ratios"][f"{a} / {b}"] = entry
    out["raw"] = times
    return out


def run_section(name: str, opts) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        out = Path(tmp) / "section.json"
        cmd = [sys.executable, __file__, "--section", name, "--section-out", str(out)] + opts.passthrough
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


def markdown(results: dict[str, dict], header: str) -> str:
    lines = [header, ""]
    for name, res in results.items():
        lines += [
            f"#### {name} (peak RSS {res['peak_rss_gib']:.2f} GiB)",
            "",
            f"`{json.dumps(res['info'])}`",
            "",
        ]
        lines += ["| variant | median wall s | median CPU s |", "| --- | --- | --- |"]
        for k, wall in res["median_s"]["wall"].items():
            lines.append(f"| {k} | {wall:.3f} | {res['median_s']['cpu'][k]:.3f} |")
        lines += [
            "",
            "| ratio (per round) | wall: median (min-max) | CPU: median (min-max) |",
            "| --- | --- | --- |",
        ]
        for label, r in res["ratios"].items():
            w, c = r["wall"], r["cpu"]
            lines.append(
                f"| {label} | {w['median']:.3f} ({w['min']:.3f}-{w['max']:.3f}) | {c['median']:.3f} ({c['min']:.3f}-{c['max']:.3f}) |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1, help="ComfyUI sampling steps")
    parser.add_argument("--latent", type=int, default=64, help="latent side (image side / 8)")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--site-calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--json", default="", help="write all results here")
    parser.add_argument("--section", default="", help=argparse.SUPPRESS)
    parser.add_argument("--section-out", default="", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.section:
        result = globals()[f"section_{opts.section}"](opts)
        result["peak_rss_gib"] = peak_rss_gib()
        Path(opts.section_out).write_text(json.dumps(summarize(result)))
        return 0
    opts.passthrough = [
        f"--rounds={opts.rounds}", f"--steps={opts.steps}", f"--latent={opts.latent}",
        f"--new-tokens={opts.new_tokens}", f"--site-calls={opts.site_calls}", f"--threads={opts.threads}",
    ]  # fmt: skip
    started = datetime.now(timezone.utc)
    results = {}
    for name in opts.sections.split(","):
        if name not in SECTIONS + SDXL_SECTIONS:
            raise SystemExit(f"unknown section {name!r}; choose from {', '.join(SECTIONS + SDXL_SECTIONS)}")
        results[name] = run_section(name, opts)
        print(markdown({name: results[name]}, f"## {name}"), flush=True)
    header = (
        f"Real shapes (bench/bench_real_shapes.py {' '.join(sys.argv[1:])}), {started:%Y-%m-%d %H:%M}-"
        f"{datetime.now(timezone.utc):%H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{opts.threads or 'default'} torch threads, torch {torch.__version__}, {opts.rounds} rounds, "
        f"load average at the end {os.getloadavg()[0]:.1f} (1 min)"
    )
    print(markdown(results, header))
    if opts.json:
        Path(opts.json).write_text(json.dumps({"header": header, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
