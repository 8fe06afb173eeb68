"""GPU proving script: the pack's real-shape costs on CUDA, one command, one table (+ JSON).

    python bench/gpu_check.py [--dtype bf16|fp16] [--json gpu_check.json] [--only NAME,...]
    python bench/gpu_check.py --tiny            # CPU mode on the tiny fixtures (what the tests run)

Random weights at the released shapes (`devkit.fixtures.real_shapes`), built directly on the device;
nothing is downloaded or installed. Checks (each row says ok / skipped, with why / failed, with the
error; one failing check never stops the others):

- ``one_pass_0.5b``: LLaVA-OneVision 0.5B, 384 px (1,485 image tokens): ``refine_and_embed`` (plain
  and plus heads) vs ``refine_full``, median of ``--repeats``; the ratio is the goal (<= 1.02);
- ``prefill_7b``: the 7B shape, one prefill of the same prompt (1,485 image tokens): time, peak memory;
- ``train_0.5b_lora``, ``train_0.5b_full``, ``train_7b_lora``: one optimizer step of the joint
  training module (`training.joint_model.JointModel`: CE + 2 (1 - cos), plain head on layer m) at
  batch ``--train-batch`` with gradient checkpointing; tokens/s, samples/s, peak memory;
- ``sd15_comfyui``: ComfyUI (``$COMFYUI_PATH`` or the repo's extracted tree; never downloaded), the
  real-shape SD1.5, 512 px, ``--steps`` (20) steps, unpatched vs patched (plain, plus);
- ``sd15_diffusers``: the same with diffusers' UNet (none / diffusers' IP-Adapter / ours): skipped
  where diffusers is not installed (the GPU machines here have none);
- ``offload``: the MLLM under ComfyUI's memory manager (the pack's own wrapper), then SD1.5 asks
  for more memory than is free: ComfyUI must offload the MLLM, and bring it back unchanged.

Prompts are built without the image processor (torchvision may be missing): the tiny fixture
tokenizer renders the real chat template and the ``<image>`` placeholder is expanded to the
number of image tokens the model's config implies, which is what the processor does.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CHECKS = (
    "one_pass_0.5b",
    "prefill_7b",
    "train_0.5b_lora",
    "train_0.5b_full",
    "train_7b_lora",
    "sd15_comfyui",
    "sd15_diffusers",
    "offload",
)
INSTRUCTION = "replace the red car with a blue bicycle"


class Skip(Exception):
    """A check cannot run here (missing package, no ComfyUI tree); the message says what is missing."""


@dataclass
class Row:
    name: str
    status: str = "ok"
    seconds: float | None = None
    peak_mem_gib: float | None = None
    metrics: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class Env:
    device: torch.device
    dtype: torch.dtype
    tiny: bool
    steps: int
    repeats: int
    train_batch: int
    new_tokens: int

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float:
        """Peak CUDA memory allocated since `reset_peak`; on the CPU the process's peak RSS so far."""
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**30
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
        return float("nan")

    def timed(self, fn: Callable[[], object]) -> float:
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - start

    def size(self, real: str) -> str:
        """The fixture standing in for a real size: the real one, or a tiny one in --tiny mode."""
        return f"tiny-{real}" if self.tiny else real


# -- models ------------------------------------------------------------------------------------------

TINY_SHAPES = {  # `build_llava_onevision` defaults (0.5B-like, tied) and an untied 7B-like one
    "tiny-0.5b": dict(tie_word_embeddings=True),
    "tiny-7b": dict(tie_word_embeddings=False, hidden_size=96, num_layers=4, num_heads=4, num_kv_heads=2),
}


def build_mllm(env: Env, size: str, device: torch.device | None = None):
    """``(model, tokenizer)`` on ``device`` (default: the check's device), random weights."""
    from devkit.fixtures import real_shapes as rs
    from devkit.fixtures.llava_onevision import llava_onevision_config, random_llava_onevision

    device = device or env.device
    if size in TINY_SHAPES:
        config, tokenizer = llava_onevision_config(**TINY_SHAPES[size])
        torch.manual_seed(0)
        with torch.device(device), rs.default_dtype(env.dtype):
            return random_llava_onevision(config), tokenizer
    return rs.real_llava_onevision_model(size, device=device, dtype=env.dtype, with_processor=False)


def prompt_inputs(model, tokenizer, env: Env, *, batch: int = 1, answer: int = 0) -> dict:
    """Processor-equivalent inputs for a one-tile (384 px) image + the refinement request."""
    from devkit.fixtures.real_shapes import image_token_count
    from mindedit_core.prompting import build_messages

    config = model.config
    text = tokenizer.apply_chat_template(
        build_messages(INSTRUCTION), add_generation_prompt=True, tokenize=False
    )
    before, after = text.split("<image>", 1)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    ids = (
        tokenizer(before)["input_ids"]
        + [image_id] * image_token_count(config)
        + tokenizer(after)["input_ids"]
    )
    prompt_len = len(ids)
    gen = torch.Generator().manual_seed(0)
    answer_ids = torch.randint(0, len(tokenizer) - 8, (answer,), generator=gen).tolist()
    input_ids = torch.tensor([ids + answer_ids] * batch, device=env.device)
    tile = config.vision_config.image_size
    pixel_values = torch.randn(batch, 2, 3, tile, tile, generator=gen).to(env.device, env.dtype)
    out = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": pixel_values,
        "image_sizes": torch.tensor([[tile, tile]] * batch, device=env.device),
    }
    if answer:
        labels = torch.full_like(input_ids, -100)
        labels[:, prompt_len:] = input_ids[:, prompt_len:]
        prompt_mask = torch.zeros_like(input_ids)
        prompt_mask[:, :prompt_len] = 1
        out.update(labels=labels, prompt_mask=prompt_mask)
    return out


def _head(kind: str, model, env: Env):
    from mindedit_core.mllm import find_decoder_layers
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    layer = default_layer(len(find_decoder_layers(model)))
    hidden = model.config.text_config.hidden_size
    torch.manual_seed(1)
    return VisionHead(VisionHeadConfig.for_kind(kind, hidden_size=hidden, layer=layer)).to(env.device).eval()


# -- checks ------------------------------------------------------------------------------------------


def check_one_pass(env: Env, row: Row) -> None:
    from mindedit_core.mllm import MindEditMLLM

    model, tokenizer = build_mllm(env, env.size("0.5b"))
    inputs = prompt_inputs(model, tokenizer, env)
    mllms = {}
    for kind in ("plain", "plus"):
        mllm = MindEditMLLM(model, tokenizer, _head(kind, model, env).to(env.dtype))
        mllm.prepare_inputs = lambda *a, **k: inputs  # the processor's work, done once above
        mllms[kind] = mllm
    n = env.new_tokens
    variants = {
        "one_pass_plain": lambda: mllms["plain"].refine_and_embed(None, INSTRUCTION, max_new_tokens=n),
        "one_pass_plus": lambda: mllms["plus"].refine_and_embed(None, INSTRUCTION, max_new_tokens=n),
        "refine_only": lambda: mllms["plain"].refine_full(None, INSTRUCTION, max_new_tokens=n),
    }
    env.reset_peak()
    result = variants["one_pass_plus"]()
    times = interleaved_times(env, variants)
    row.seconds = statistics.median(times["one_pass_plus"])
    row.peak_mem_gib = env.peak_gib()
    row.metrics = {f"{k}_s": statistics.median(v) for k, v in times.items()}
    for kind in ("plain", "plus"):
        ratios = [a / b for a, b in zip(times[f"one_pass_{kind}"], times["refine_only"])]
        row.metrics[f"ratio_{kind}"] = statistics.median(ratios)
    row.metrics.update(prompt_tokens=result.prompt_tokens, new_tokens=result.new_tokens)
    row.note = f"one pass / refine-only: plain {row.metrics['ratio_plain']:.3f}, plus {row.metrics['ratio_plus']:.3f} (goal <= 1.02)"


def interleaved_times(env: Env, variants: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(env.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(env.timed(variants[name]))
    return times


def check_prefill_7b(env: Env, row: Row) -> None:
    model, tokenizer = build_mllm(env, env.size("7b"))
    inputs = prompt_inputs(model, tokenizer, env)
    env.reset_peak()

    def prefill():
        with torch.no_grad():
            model(**inputs, use_cache=True, logits_to_keep=1)

    prefill()  # warm-up
    times = [env.timed(prefill) for _ in range(env.repeats)]
    row.seconds = statistics.median(times)
    row.peak_mem_gib = env.peak_gib()
    tokens = inputs["input_ids"].shape[1]
    row.metrics = {"prompt_tokens": tokens, "tokens_per_s": tokens / row.seconds}
    row.note = f"{tokens} prompt tokens"


def check_train(env: Env, row: Row, size: str, finetune: str) -> None:
    from training.joint_model import JointModel
    from training.model_setup import add_lora, enable_gradient_checkpointing, prepare_full_finetune

    model, tokenizer = build_mllm(env, env.size(size))
    if finetune == "lora":
        model = add_lora(model, r=16, alpha=32, dropout=0.05)
    else:
        prepare_full_finetune(model, train_vision_tower=False)
    enable_gradient_checkpointing(model)
    model.train()
    head = _head("plain", model, env).train()
    joint = JointModel(model, head, layer=head.config.layer, text_loss=True, lambda_embed=2.0)
    params = [p for p in joint.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    batch = prompt_inputs(model, tokenizer, env, batch=env.train_batch, answer=48)
    batch["target"] = torch.randn(env.train_batch, 1024, device=env.device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        joint(**batch)["loss"].backward()
        optimizer.step()

    env.reset_peak()
    step()  # warm-up (optimizer states are created here)
    times = [env.timed(step) for _ in range(max(1, env.repeats - 1))]
    row.seconds = statistics.median(times)
    row.peak_mem_gib = env.peak_gib()
    tokens = batch["input_ids"].numel()
    row.metrics = {
        "batch": env.train_batch,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / row.seconds,
        "samples_per_s": env.train_batch / row.seconds,
        "trainable_m": sum(p.numel() for p in params) / 1e6,
        "hours_5_epochs_5244": 5 * 5244 / (env.train_batch / row.seconds) / 3600,
    }
    row.note = f"{finetune}, gradient checkpointing, batch {env.train_batch}; 5 epochs x 5,244: {row.metrics['hours_5_epochs_5244']:.2f} h"


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


RUNNERS: dict[str, Callable[[Env, Row], None]] = {
    "one_pass_0.5b": check_one_pass,
    "prefill_7b": check_prefill_7b,
    "train_0.5b_lora": lambda env, row: check_train(env, row, "0.5b", "lora"),
    "train_0.5b_full": lambda env, row: check_train(env, row, "0.5b", "full"),
    "train_7b_lora": lambda env, row: check_train(env, row, "7b", "lora"),
    "sd15_comfyui": check_sd15_comfyui,
    "sd15_diffusers": check_sd15_diffusers,
    "offload": check_offload,
}


def run_checks(env: Env, names: list[str]) -> list[Row]:
    rows = []
    for name in names:
        row = Row(name)
        started = time.perf_counter()
        try:
            RUNNERS[name](env, row)
        except Skip as err:
            row.status, row.note = "skipped", str(err)
        except Exception as err:  # report and go on: one broken check must not hide the others
            row.status = "failed"
            row.note = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            row.metrics["traceback"] = traceback.format_exc()[-2000:]
        row.metrics["wall_s"] = time.perf_counter() - started
        rows.append(row)
        print(f"[gpu_check] {name}: {row.status} ({row.metrics['wall_s']:.1f} s) {row.note}", flush=True)
        gc.collect()
        if env.cuda:
            torch.cuda.empty_cache()
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| check | status | seconds | peak memory GiB | result |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        seconds = f"{r.seconds:.3f}" if r.seconds is not None else "-"
        mem = f"{r.peak_mem_gib:.2f}" if r.peak_mem_gib is not None else "-"
        lines.append(f"| {r.name} | {r.status} | {seconds} | {mem} | {r.note} |")
    return "\n".join(lines)


def describe_machine(env: Env) -> str:
    import transformers

    parts = [
        platform.machine(),
        f"{os.cpu_count()} CPUs",
        f"torch {torch.__version__}",
        f"transformers {transformers.__version__}",
    ]
    if env.cuda:
        props = torch.cuda.get_device_properties(env.device)
        parts.insert(0, f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU mode on the tiny fixtures (for tests)")
    parser.add_argument("--device", default="", help="default: cuda, or cpu with --tiny")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--steps", type=int, default=0, help="sampling steps (default 20; 2 with --tiny)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=0, help="default 8; 2 with --tiny")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    parser.add_argument("--json", default="gpu_check.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: run on a GPU machine, or use --tiny for the CPU mode.")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    if device.type == "cpu":
        dtype = torch.float32  # CPU kernels for half types are slow or missing
    env = Env(
        device=device,
        dtype=dtype,
        tiny=args.tiny,
        steps=args.steps or (2 if args.tiny else 20),
        repeats=args.repeats,
        train_batch=args.train_batch or (2 if args.tiny else 8),
        new_tokens=args.new_tokens if not args.tiny else min(args.new_tokens, 4),
    )
    names = [n for n in args.only.split(",") if n] or list(CHECKS)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise SystemExit(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    started = time.perf_counter()
    rows = run_checks(env, names)
    header = (
        f"GPU check ({'tiny CPU mode' if args.tiny else 'real shapes'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{describe_machine(env)}, {str(dtype).replace('torch.', '')}, {time.perf_counter() - started:.0f} s in all"
    )
    print(header + "\n\n" + table(rows))
    Path(args.json).write_text(json.dumps({"header": header, "rows": [asdict(r) for r in rows]}, indent=1))
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
