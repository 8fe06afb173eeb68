"""`MindEditMLLM`: refine an instruction and predict ``v_insight`` with one ``generate``.

One pass: the prompt's prefill is a single forward over image + instruction tokens; a hook on
decoder layer m keeps that call's output (`mindedit_core.mllm.hooks`), the generation continues
normally, and the vision head turns the kept hidden states into ``v_insight``. The text is exactly what
a plain ``generate`` produces (the hook only reads), and ``v_insight`` equals a separate forward + head.

`MindEditMLLM.run` takes a `PassRequest` and returns a `PassResult` (`mindedit_core.mllm.protocol`,
the contract every MLLM implementation shares); ``request.outputs`` says what to produce:

- ``"both"``: text + ``v_insight`` from one ``generate`` (needs a head);
- ``"prompts"``: text only (works with the base model alone);
- ``"embeds"``: ``v_insight`` only: one forward, cut short after layer m.

The shorthands ``refine_and_embed`` / ``refine_full`` / ``refine`` / ``embed`` (`PassCalls`) build the
request from keyword arguments.

Inputs: a PIL image, or a numpy/torch ``[H,W,C]`` / ``[1,H,W,C]`` float image in 0..1 (ComfyUI
``IMAGE``); an optional mask ``[H,W]`` / ``[1,H,W]`` (ComfyUI ``MASK``), shown to the MLLM as a magenta
outline (see `mindedit_core.images`). Per-call settings (seed, max new tokens, the image budget
``max_image_side``, sampling) travel in the request's `PassOptions` (None: the model's
``default_options``). Nothing per-call is stored on the shared object.

The family (`mindedit_core.mllm.families`) encodes the prompt (`MLLMFamily.encode_prompt`: image
preparation, chat messages, template, processor), the same function training's collate calls; the
processor applies the family's own image budget to the resized image.

Device handling: ``mllm.model`` and ``mllm.head`` are plain ``torch.nn.Module`` objects that a
memory manager (ComfyUI's ModelPatcher) may move at any time; nothing device-bound is cached, every
call reads the current device from the model's parameters. `MindEditMLLM.to` moves both.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import nn

from ..prompting import PROMPT_VERSION, parse_refinement
from ..vision_head import VisionHead
from .families import MLLMFamily, family_of
from .hooks import capture_layer, find_decoder_layers, run_until_captured
from .options import PassOptions
from .protocol import GenerationInterrupted, PassCalls, PassRequest, PassResult, require_vision_head

log = logging.getLogger(__name__)


# The result of a pass (`mindedit_core.mllm.protocol.PassResult`), under its older name.
MindEditResult = PassResult


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


class MindEditMLLM(PassCalls):
    """A supported VLM + processor, an optional vision head, and the layer it reads: a local
    `MindEditMLLMLike` (``run``; the `PassCalls` shorthands on top)."""

    def __init__(
        self,
        model: nn.Module,
        processor: Any,
        head: VisionHead | None = None,
        *,
        layer: int | None = None,
        default_options: PassOptions | None = None,
        model_dir: str = "",
        checkpoint: Any = None,
        family: MLLMFamily | None = None,
        negative_embeds: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.head = head
        self.family = family or family_of(model)
        self.default_options = default_options or PassOptions()
        self.model_dir = model_dir
        self.checkpoint = checkpoint
        # A plus checkpoint's stored blank-image negative (`mindedit_core.checkpoint.negative`), or None.
        self.negative_embeds = negative_embeds
        self.num_layers = len(find_decoder_layers(model))
        self.layer = layer or (
            head.config.layer if head is not None else self.family.model_default_layer(model)
        )
        self.family.check_layer(model, self.layer)
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
    def prepare_inputs(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        max_image_side: int | None = None,
        style: str | None = None,
    ):
        """Processor outputs (token ids, attention mask and the family's image tensors) on the model's
        device; ``max_image_side`` and ``style`` default to the model's default options. The encoding is the
        family's `MLLMFamily.encode_prompt`, the one training's collate uses too."""
        side = self.default_options.max_image_side if max_image_side is None else max_image_side
        inputs = self.family.encode_prompt(
            self.processor,
            image,
            instruction,
            mask=mask,
            max_side=side,
            style=style or self.default_options.style,
        )
        device, dtype = self.device, self.dtype
        moved = {}
        for key, value in inputs.items():
            if torch.is_tensor(value):
                value = value.to(device)
                if value.is_floating_point():
                    value = value.to(dtype)
            moved[key] = value
        return moved

    # -- the pass ------------------------------------------------------------------------------
    def run(self, request: PassRequest) -> PassResult:
        """One pass (`mindedit_core.mllm.protocol`): the refined prompts and/or ``v_insight`` that
        ``request.outputs`` asks for, with ``request.options`` (else ``default_options``). Raises
        `MissingVisionHeadError` for embeddings without a head, `GenerationInterrupted` when
        ``should_stop`` fires."""
        if request.wants_embeds:
            require_vision_head(self)
        if request.should_stop is not None and request.should_stop():
            raise GenerationInterrupted("MLLM generation was cancelled before it started.")
        opts = request.options or self.default_options
        if not request.wants_prompts:
            return self._embed_only(request, opts)
        return self._generate(request, opts, embed=request.wants_embeds)

    def options(self, options: PassOptions | None = None, **overrides) -> PassOptions:
        """The options of one call: ``options`` (or the defaults) with keyword overrides applied."""
        return (options or self.default_options).with_overrides(**overrides)

    # -- internals -------------------------------------------------------------------------------
    def _apply_head(self, head: VisionHead, hidden: torch.Tensor, inputs: dict) -> torch.Tensor:
        """The head on the captured states; it gets the prompt's ids too (user-turn pooling)."""
        head_device = next(head.parameters()).device
        with torch.no_grad():
            return head(
                hidden.to(head_device),
                inputs["attention_mask"].to(head_device),
                input_ids=inputs["input_ids"].to(head_device),
            )

    @torch.no_grad()
    def _embed_only(self, request: PassRequest, opts: PassOptions) -> PassResult:
        """``v_insight`` only: one forward over the prompt, stopped right after layer m."""
        started = time.perf_counter()
        inputs = self.prepare_inputs(
            request.image,
            request.instruction,
            mask=request.mask,
            max_image_side=opts.max_image_side,
            style=opts.style,
        )
        with capture_layer(self.model, self.layer, stop_after=True) as capture:
            hidden = run_until_captured(lambda: self.model(**inputs, use_cache=False), capture)
        v_insight = self._apply_head(self.head, hidden, inputs)
        return PassResult(
            refined=None,
            v_insight=v_insight,
            text="",
            prompt_tokens=int(inputs["input_ids"].shape[1]),
            timings={"forward": time.perf_counter() - started},
        )

    @torch.no_grad()
    def _generate(self, request: PassRequest, opts: PassOptions, *, embed: bool) -> PassResult:
        started = time.perf_counter()
        instruction = request.instruction
        inputs = self.prepare_inputs(
            request.image,
            instruction,
            mask=request.mask,
            max_image_side=opts.max_image_side,
            style=opts.style,
        )
        prepared = time.perf_counter()
        stopper = _CallbackStopper(opts.max_new_tokens, request.should_stop, request.on_token)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        gen_kwargs = dict(
            max_new_tokens=opts.max_new_tokens,
            do_sample=opts.do_sample,
            stopping_criteria=_stopping_criteria(stopper),
            pad_token_id=tokenizer.pad_token_id,
        )
        if opts.do_sample:
            gen_kwargs["temperature"] = opts.temperature
        else:  # silence "temperature is set but do_sample=False" from generation configs that set one
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        prompt_len = inputs["input_ids"].shape[1]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(opts.seed)
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
                f"MLLM generation was cancelled after {stopper.step} of {opts.max_new_tokens} tokens."
            )
        new_ids = output_ids[0, prompt_len:]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        refined = parse_refinement(text, instruction, style=opts.style)
        if refined.warning:
            log.warning("MIND-Edit: %s", refined.warning)
        v_insight = None
        if embed:
            if hidden is None:
                raise RuntimeError("The layer hook did not capture the prefill hidden states.")
            v_insight = self._apply_head(self.head, hidden, inputs)
        done = time.perf_counter()
        return PassResult(
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
