"""What every `bench/gpu_check.py` check shares: the environment (device, dtype, timing, peak
memory), the result row, the skip signal, and the random MLLMs with processor-free prompts."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


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


def random_head(kind: str, model, env: Env):
    from mindedit_core.mllm import find_decoder_layers
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    layer = default_layer(len(find_decoder_layers(model)))
    hidden = model.config.text_config.hidden_size
    torch.manual_seed(1)
    return VisionHead(VisionHeadConfig.for_kind(kind, hidden_size=hidden, layer=layer)).to(env.device).eval()


def interleaved_times(env: Env, variants: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(env.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(env.timed(variants[name]))
    return times
