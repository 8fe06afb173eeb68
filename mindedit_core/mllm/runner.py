"""`MindEditMLLM`: refine an instruction and predict ``v_insight`` with one ``generate``.

One pass: the prompt's prefill is a single forward over image + instruction tokens; a hook on
decoder layer m keeps that call's output (`mindedit_core.mllm.hooks`), the generation continues
normally, and the vision head turns the kept hidden states into ``v_insight``. The text is exactly what
a plain ``generate`` produces (the hook only reads), and ``v_insight`` equals a separate forward + head.

- `MindEditMLLM.refine_and_embed`: text + ``v_insight`` (needs a head);
- `MindEditMLLM.refine`: text only (works with the base model alone);
- `MindEditMLLM.embed`: ``v_insight`` only: one forward, cut short after layer m.

Inputs: a PIL image, or a numpy/torch ``[H,W,C]`` / ``[1,H,W,C]`` float image in 0..1 (ComfyUI
``IMAGE``); an optional mask ``[H,W]`` / ``[1,H,W]`` (ComfyUI ``MASK``), shown to the MLLM as a magenta
outline (see `mindedit_core.images`). Images are resized to ``max_side`` (default 384 px).

Device handling: ``mllm.model`` and ``mllm.head`` are plain ``torch.nn.Module`` objects that a
memory manager (ComfyUI's ModelPatcher) may move at any time; nothing device-bound is cached, every
call reads the current device from the model's parameters. `MindEditMLLM.to` moves both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..images import DEFAULT_MAX_SIDE, mask_is_empty, prepare_mllm_image
from ..prompting import PROMPT_VERSION, RefinedPrompt, build_messages, parse_refinement
from ..vision_head import VisionHead, default_layer
from .hooks import capture_layer, find_decoder_layers, run_until_captured

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 160


class GenerationInterrupted(RuntimeError):
    """``should_stop`` returned True during generation (e.g. ComfyUI's Cancel)."""


class MissingVisionHeadError(RuntimeError):
    """``v_insight`` was requested from an MLLM loaded without a vision head."""


@dataclass
class MindEditResult:
    """``refined``: parsed prompts (check ``refined.warning``); ``v_insight``: the head's output or None;
    ``text``: the raw generated answer; token counts for logging and benchmarks."""

    refined: RefinedPrompt
    v_insight: torch.Tensor | None
    text: str
    prompt_tokens: int
    new_tokens: int
    timings: dict = field(default_factory=dict)


class _CallbackStopper:
    """A transformers StoppingCriteria (duck-typed) that reports progress and honours ``should_stop``."""

    def __init__(self, max_new_tokens: int, should_stop, on_token) -> None:
        self.max_new_tokens = max_new_tokens
        self.should_stop = should_stop
        self.on_token = on_token
        self.step = 0
        self.interrupted = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.step += 1
        if self.on_token is not None:
            self.on_token(self.step, self.max_new_tokens)
        stop = bool(self.should_stop is not None and self.should_stop())
        self.interrupted = self.interrupted or stop
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _stopping_criteria(stopper: _CallbackStopper):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Criteria(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return stopper(input_ids, scores, **kwargs)

    return StoppingCriteriaList([_Criteria()])


def _first_float_parameter(module: nn.Module) -> torch.Tensor:
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter
    raise TypeError(f"{type(module).__name__} has no floating-point weights.")


class MindEditMLLM:
    """A LLaVA-OneVision model + processor, an optional vision head, and the layer it reads."""

    def __init__(
        self,
        model: nn.Module,
        processor: Any,
        head: VisionHead | None = None,
        *,
        layer: int | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        model_dir: str = "",
        checkpoint: Any = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.head = head
        self.max_side = max_side
        self.model_dir = model_dir
        self.checkpoint = checkpoint
        num_layers = len(find_decoder_layers(model))
        self.num_layers = num_layers
        self.layer = layer or (head.config.layer if head is not None else default_layer(num_layers))
        if head is not None and head.config.layer != self.layer:
            raise ValueError(f"The head reads layer {head.config.layer}, but layer={self.layer} was given.")
        self.prompt_version = PROMPT_VERSION

    # -- device ----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model's weights are now (read live: a memory manager may have moved them)."""
        return _first_float_parameter(self.model).device

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype: that of the first floating-point weight (quantized weights are skipped)."""
        return _first_float_parameter(self.model).dtype

    def torch_modules(self) -> dict[str, nn.Module]:
        """The modules a memory manager must move together: ``{"model": ..., "head": ...}``."""
        modules = {"model": self.model}
        if self.head is not None:
            modules["head"] = self.head
        return modules

    def to(self, device: Any) -> MindEditMLLM:
        self.model.to(device)
        if self.head is not None:
            self.head.to(device)
        return self

    @property
    def has_head(self) -> bool:
        return self.head is not None

    # -- inputs ----------------------------------------------------------------------------------
    def prepare_inputs(self, image: Any, instruction: str, *, mask: Any = None):
        """Processor outputs (input_ids, attention_mask, pixel_values, image_sizes) on the model's device."""
        with_mask = not mask_is_empty(mask)
        pil = prepare_mllm_image(image, mask=mask if with_mask else None, max_side=self.max_side)
        messages = build_messages(instruction, with_mask=with_mask)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=pil, text=text, return_tensors="pt")
        device, dtype = self.device, self.dtype
        moved = {}
        for key, value in inputs.items():
            if torch.is_tensor(value):
                value = value.to(device)
                if value.is_floating_point():
                    value = value.to(dtype)
            moved[key] = value
        return moved

    # -- public calls ----------------------------------------------------------------------------
    def refine_and_embed(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        seed: int = 0,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 0.7,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
    ) -> MindEditResult:
        """Refined prompts and ``v_insight`` from one ``generate`` (raises `MissingVisionHeadError`
        without a head, `GenerationInterrupted` when ``should_stop`` fires)."""
        self._require_head()
        return self._generate(
            image,
            instruction,
            mask,
            seed,
            max_new_tokens,
            do_sample,
            temperature,
            should_stop,
            on_token,
            True,
        )

    def refine(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        seed: int = 0,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 0.7,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
    ) -> RefinedPrompt:
        """Refined prompts only; works with the base model and no head."""
        return self.refine_full(
            image,
            instruction,
            mask=mask,
            seed=seed,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            should_stop=should_stop,
            on_token=on_token,
        ).refined

    def refine_full(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        seed: int = 0,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 0.7,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
    ) -> MindEditResult:
        """Like `refine`, returning the whole `MindEditResult` (raw text, token counts; ``v_insight`` None)."""
        return self._generate(
            image,
            instruction,
            mask,
            seed,
            max_new_tokens,
            do_sample,
            temperature,
            should_stop,
            on_token,
            False,
        )

    @torch.no_grad()
    def embed(self, image: Any, instruction: str, *, mask: Any = None) -> torch.Tensor:
        """``v_insight`` only: one forward over the prompt, stopped right after layer m."""
        head = self._require_head()
        inputs = self.prepare_inputs(image, instruction, mask=mask)
        with capture_layer(self.model, self.layer, stop_after=True) as capture:
            hidden = run_until_captured(lambda: self.model(**inputs, use_cache=False), capture)
        return self._apply_head(head, hidden, inputs["attention_mask"])

    # -- internals -------------------------------------------------------------------------------
    def _require_head(self) -> VisionHead:
        if self.head is None:
            raise MissingVisionHeadError(
                "This MLLM has no vision head, so it cannot predict v_insight (the IP-Adapter embedding). "
                "Load a MIND-Edit checkpoint that contains vision_head.safetensors (put it in ComfyUI's "
                "models/mindedit/ and select it in the loader, or pass checkpoint_dir= to load_mllm), or "
                "train one with `python -m training.train ...`. Prompt refinement alone works without a head."
            )
        return self.head

    def _apply_head(
        self, head: VisionHead, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        head_device = next(head.parameters()).device
        with torch.no_grad():
            return head(hidden.to(head_device), attention_mask.to(head_device))

    @torch.no_grad()
    def _generate(
        self,
        image,
        instruction,
        mask,
        seed,
        max_new_tokens,
        do_sample,
        temperature,
        should_stop,
        on_token,
        embed,
    ) -> MindEditResult:
        if should_stop is not None and should_stop():
            raise GenerationInterrupted("MLLM generation was cancelled before it started.")
        started = time.perf_counter()
        inputs = self.prepare_inputs(image, instruction, mask=mask)
        prepared = time.perf_counter()
        stopper = _CallbackStopper(max_new_tokens, should_stop, on_token)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        gen_kwargs = dict(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            stopping_criteria=_stopping_criteria(stopper),
            pad_token_id=tokenizer.pad_token_id,
        )
        if do_sample:
            gen_kwargs["temperature"] = temperature
        else:  # silence "temperature is set but do_sample=False" from generation configs that set one
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        prompt_len = inputs["input_ids"].shape[1]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if embed:
                with capture_layer(self.model, self.layer) as capture:
                    output_ids = self.model.generate(**inputs, **gen_kwargs)
                hidden = capture.hidden
            else:
                output_ids = self.model.generate(**inputs, **gen_kwargs)
                hidden = None
        generated = time.perf_counter()
        if stopper.interrupted:
            raise GenerationInterrupted(
                f"MLLM generation was cancelled after {stopper.step} of {max_new_tokens} tokens."
            )
        new_ids = output_ids[0, prompt_len:]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        refined = parse_refinement(text, instruction)
        if refined.warning:
            log.warning("MIND-Edit: %s", refined.warning)
        v_insight = None
        if embed:
            if hidden is None:
                raise RuntimeError("The layer hook did not capture the prefill hidden states.")
            v_insight = self._apply_head(self.head, hidden, inputs["attention_mask"])
        done = time.perf_counter()
        return MindEditResult(
            refined=refined,
            v_insight=v_insight,
            text=text,
            prompt_tokens=int(prompt_len),
            new_tokens=int(new_ids.shape[0]),
            timings={
                "prepare": prepared - started,
                "generate": generated - prepared,
                "head": done - generated,
            },
        )
