"""The SD1.5 checks of `bench/gpu_check.py`: ComfyUI sampling with and without the patch, diffusers,
and the MLLM offloaded by ComfyUI's memory manager."""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from gpu_check_core import Env, Row, Skip, build_mllm, interleaved_times, prompt_inputs  # noqa: E402


def comfy_tree() -> Path:
    """ComfyUI's tree without any download: ``$COMFYUI_PATH`` or the repo's extracted copy."""
    env_path = os.environ.get("COMFYUI_PATH")
    candidates = [Path(env_path)] if env_path else sorted((REPO / ".cache" / "comfyui").glob("*/"))
    for tree in candidates:
        if (tree / "main.py").is_file() and (tree / "comfy").is_dir():
            return tree
    raise Skip("no ComfyUI tree: set COMFYUI_PATH (or bring the repo's .cache/comfyui along)")


def import_comfy(env: Env):
    tree = str(comfy_tree())
    if tree not in sys.path:
        sys.path.append(tree)
    try:
        import comfy.cli_args

        comfy.cli_args.args.cpu = not env.cuda
        import comfy.model_management
        import comfy.sample
        import comfy.sd
    except ImportError as err:
        raise Skip(f"ComfyUI cannot import here: {err} (its packages are not installed)") from err
    return comfy


def comfy_sd15(env: Env):
    """The SD1.5 MODEL (real shape, or the tiny sites16) loaded by ComfyUI from an in-memory state dict."""
    from devkit.fixtures.sd15 import UNET_PREFIX, init_tensor, unet_layout

    comfy = import_comfy(env)
    variant = "sites16" if env.tiny else "real"
    keys, _ = unet_layout(variant)  # the UNet part of the fixture checkpoint, value for value
    unet = {UNET_PREFIX + k: init_tensor(UNET_PREFIX + k, shape, 0) for k, shape in keys}
    return comfy.sd.load_state_dict_guess_config(unet, output_vae=False, output_clip=False)[0], variant


def adapter_widths(env: Env) -> tuple[int, ...]:
    from devkit.fixtures.ipadapter_files import SD15_WIDTHS, SITES16_TINY_WIDTHS

    return SITES16_TINY_WIDTHS if env.tiny else SD15_WIDTHS


def check_sd15_comfyui(env: Env, row: Row) -> None:
    from bench_real_shapes import comfy_attention_fn

    from devkit.fixtures.ipadapter_files import ipadapter_sections
    from mindedit_core.ipadapter import apply_ipadapter, build_ipadapter

    model, variant = comfy_sd15(env)
    comfy = import_comfy(env)
    attention = comfy_attention_fn()
    patched = {}
    for kind in ("plain", "plus"):
        adapter = build_ipadapter(ipadapter_sections(kind, site_widths=adapter_widths(env)), source=kind)
        embeds = torch.randn(1, *adapter.embed_spec.sample_shape, generator=torch.Generator().manual_seed(0))
        patched[kind] = apply_ipadapter(model, adapter, embeds, attention_fn=attention)
    latent = 8 if env.tiny else 64
    gen = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    noise = torch.randn(1, 4, latent, latent, generator=gen)

    def sampler(m, steps):
        return lambda: comfy.sample.sample(
            m, noise, steps, 5.0, "euler", "normal", positive, negative, torch.zeros_like(noise),
            disable_pbar=True, seed=0,
        )  # fmt: skip

    env.reset_peak()
    for m in (model, *patched.values()):
        sampler(m, 1)()  # warm-up: loads the model onto the device
    variants = {"unpatched": sampler(model, env.steps)}
    variants.update({f"patched_{k}": sampler(m, env.steps) for k, m in patched.items()})
    times = interleaved_times(env, variants)
    row.seconds = statistics.median(times["unpatched"])
    row.peak_mem_gib = env.peak_gib()
    row.metrics = {f"{k}_s": statistics.median(v) for k, v in times.items()}
    for kind in ("plain", "plus"):
        row.metrics[f"ratio_{kind}"] = statistics.median(
            [a / b for a, b in zip(times[f"patched_{kind}"], times["unpatched"])]
        )
    row.metrics.update(variant=variant, latent=latent, steps=env.steps)
    row.note = (
        f"{latent * 8} px, {env.steps} steps; patched / unpatched: plain {row.metrics['ratio_plain']:.3f}, "
        f"plus {row.metrics['ratio_plus']:.3f} (goal <= 1.03)"
    )


def check_sd15_diffusers(env: Env, row: Row) -> None:
    if importlib.util.find_spec("diffusers") is None:
        raise Skip("diffusers is not installed here (install nothing: skipped)")
    from bench_real_shapes import diffusers_modes

    latent = 8 if env.tiny else 64
    channels = (320,) * 4 if env.tiny else (320, 640, 1280, 1280)
    modes, _ = diffusers_modes(latent, channels, adapter_widths(env), device=env.device, dtype=env.dtype)
    env.reset_peak()
    with torch.no_grad():
        for set_mode in modes.values():
            set_mode()()  # warm-up
        times: dict[str, list[float]] = {n: [] for n in modes}
        for r in range(env.repeats):
            names = list(modes)
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                run = modes[name]()

                def steps(run=run):
                    for _ in range(env.steps):
                        run()

                times[name].append(env.timed(steps))
    row.seconds = statistics.median(times["none"])
    row.peak_mem_gib = env.peak_gib()
    row.metrics = {f"{k}_s": statistics.median(v) for k, v in times.items()}
    for kind in ("plain", "plus"):
        for a, b in ((f"diffusers_{kind}", "none"), (f"ours_{kind}", f"diffusers_{kind}")):
            row.metrics[f"{a}/{b}"] = statistics.median([x / y for x, y in zip(times[a], times[b])])
    row.note = (
        f"{env.steps} UNet forwards (CFG batch 2); diffusers IP / none plain {row.metrics['diffusers_plain/none']:.3f}; "
        f"ours / diffusers' plain {row.metrics['ours_plain/diffusers_plain']:.3f}, plus {row.metrics['ours_plus/diffusers_plus']:.3f}"
    )


def _pack_patcher_module():
    """The pack's `nodes/comfy_mllm_patcher.py`, imported the way ComfyUI imports the pack (under a
    folder-like name, so its relative imports resolve)."""
    name = "ComfyUI_MIND_Edit_gpu_check"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.nodes.comfy_mllm_patcher")


def check_offload(env: Env, row: Row) -> None:
    comfy = import_comfy(env)
    mm = comfy.model_management
    patcher_mod = _pack_patcher_module()
    offload_device = mm.unet_offload_device()
    model, tokenizer = build_mllm(env, env.size("0.5b"), device=offload_device)
    handle = patcher_mod.wrap_mllm(model, {"model": model}, description="gpu-check MLLM", quantization=None)
    device = patcher_mod.load_for_use(handle)
    inputs = prompt_inputs(model, tokenizer, env)
    with torch.no_grad():
        before = model(**inputs, use_cache=False, logits_to_keep=1).logits.float().cpu()
    loaded_before = patcher_mod.is_loaded(handle)
    sd15, _ = comfy_sd15(env)
    # SD1.5 asks for more than is free now (more than the whole MLLM, so that ComfyUI unloads it
    # entirely rather than trying a partial unload): ComfyUI has to offload the MLLM to make room.
    demand = mm.get_free_memory(device) + int(mm.module_size(model) * 1.5)
    start = time.perf_counter()
    if env.cuda:
        mm.load_models_gpu([sd15], memory_required=demand)
    else:  # ComfyUI never frees memory for a CPU load: call the function it calls on a GPU
        mm.free_memory(demand, device)
        mm.load_models_gpu([sd15])
    offload_s = time.perf_counter() - start
    loaded_after = patcher_mod.is_loaded(handle)
    devices_after = sorted({str(p.device) for p in model.parameters()})
    where_after = devices_after[0] if len(devices_after) == 1 else "+".join(devices_after)
    start = time.perf_counter()
    patcher_mod.load_for_use(handle)
    reload_s = time.perf_counter() - start
    inputs = prompt_inputs(model, tokenizer, env)
    with torch.no_grad():
        again = model(**inputs, use_cache=False, logits_to_keep=1).logits.float().cpu()
    same = bool(torch.allclose(before, again, atol=1e-3, rtol=1e-3))
    row.seconds = offload_s
    row.metrics = {
        "mllm_loaded_before": loaded_before,
        "mllm_loaded_after_sd15": loaded_after,
        "mllm_device_after_sd15": str(where_after),
        "reload_s": reload_s,
        "same_output_after_reload": same,
        "load_device": str(device),
    }
    offloaded = loaded_before and not loaded_after
    if not (offloaded and same):
        row.status = "failed"
    row.note = (
        f"MLLM {'offloaded' if offloaded else 'NOT offloaded'} when SD1.5 needed the memory (now on {where_after}); "
        f"reloaded in {reload_s:.2f} s, output {'unchanged' if same else 'CHANGED'}"
    )
    if not env.cuda:
        row.note += " (CPU: load and offload device are the same; the memory manager's calls are what ran)"
    mm.unload_all_models()
