"""The one pass contract: a `PassRequest` in, a `PassResult` out, through `MindEditMLLMLike.run`.

Every MLLM implementation satisfies `MindEditMLLMLike`: the local runner (`MindEditMLLM`), a remote
backend, and every fake in the tests and the evaluation (tests/test_mllm_protocol.py checks them
all). The nodes (`nodes/mllm_pass.py`), the evaluation (`training/evaluate/conditioning.py`) and
training-data construction call ``mllm.run(PassRequest(...))``; `PassCalls` adds the shorthands
``refine_and_embed`` / ``refine_full`` / ``refine`` / ``embed`` on top of ``run`` for scripts and tests
(keyword arguments: the request's fields, or any `PassOptions` field as an override).

An implementation must:

- produce what ``request.outputs`` asks: ``"prompts"`` (the refined prompts and the raw answer, no
  head needed), ``"embeds"`` (``v_insight`` only) or ``"both"`` (one pass); raise
  `MissingVisionHeadError` for embeddings without a head (`require_vision_head`);
- run with ``request.options`` (all per-call settings), or with its ``default_options`` when None;
- call ``request.on_token(step, max_new_tokens)`` as tokens arrive, and raise `GenerationInterrupted`
  when ``request.should_stop()`` returns True (checked before starting and between tokens);
- answer ``has_head``, ``negative_embeds`` (a plus checkpoint's stored blank-image embedding, or None
  for zeros) and ``torch_modules()`` (the modules a memory manager moves; ``{}`` for a remote one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from torch import nn

from .options import PassOptions

PASS_OUTPUTS = ("prompts", "embeds", "both")


class GenerationInterrupted(RuntimeError):
    """``should_stop`` returned True during generation (e.g. ComfyUI's Cancel)."""


class MissingVisionHeadError(ValueError):
    """``v_insight`` was requested from an MLLM loaded without a vision head (a configuration error:
    load a checkpoint with a head)."""


@dataclass(frozen=True)
class PassRequest:
    """One MLLM pass: the source ``image`` (PIL, or a ComfyUI ``IMAGE`` / numpy ``[H,W,C]`` in 0..1),
    the user's ``instruction``, an optional ``mask`` (edit region, shown to the MLLM as an outline;
    an empty one means mask-free), what to produce (``outputs``, see `PASS_OUTPUTS`), the per-call
    ``options`` (None: the MLLM's ``default_options``), and the caller's ``should_stop`` (Cancel) and
    ``on_token(step, max_new_tokens)`` (progress) callbacks."""

    image: Any
    instruction: str
    mask: Any = None
    outputs: str = "prompts"
    options: PassOptions | None = None
    should_stop: Callable[[], bool] | None = None
    on_token: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.outputs not in PASS_OUTPUTS:
            raise ValueError(f"PassRequest.outputs must be one of {PASS_OUTPUTS}, got {self.outputs!r}.")

    @property
    def wants_prompts(self) -> bool:
        return self.outputs != "embeds"

    @property
    def wants_embeds(self) -> bool:
        return self.outputs != "prompts"

    @classmethod
    def build(
        cls,
        image: Any,
        instruction: str,
        *,
        outputs: str = "prompts",
        defaults: PassOptions | None = None,
        mask: Any = None,
        options: PassOptions | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
        **overrides: Any,
    ) -> PassRequest:
        """A request whose options are ``options`` (else ``defaults``) with `PassOptions` field
        ``overrides`` applied (``seed=3``, ``max_new_tokens=64``; unknown names are refused)."""
        if overrides:
            options = (options or defaults or PassOptions()).with_overrides(**overrides)
        return cls(image, instruction, mask, outputs, options, should_stop, on_token)


@dataclass
class PassResult:
    """What a pass produced: ``refined`` (a `RefinedPrompt`; check ``refined.warning``; None for
    ``outputs="embeds"``), ``v_insight`` (the head's output, or None), ``text`` (the raw answer),
    token counts and timings (seconds) for logs and benchmarks."""

    refined: Any
    v_insight: Any
    text: str
    prompt_tokens: int = 0
    new_tokens: int = 0
    timings: dict = field(default_factory=dict)


@runtime_checkable
class MindEditMLLMLike(Protocol):
    """The MLLM as the nodes, the pass cache, the evaluation and training-data construction use it."""

    @property
    def has_head(self) -> bool: ...

    @property
    def negative_embeds(self) -> Any:
        """The stored unconditional embedding paired with ``v_insight`` (a plus checkpoint's
        blank-image output), or None for zeros."""
        ...

    @property
    def default_options(self) -> PassOptions:
        """The options of a request that carries none."""
        ...

    def torch_modules(self) -> dict[str, nn.Module]: ...

    def run(self, request: PassRequest) -> PassResult: ...


class PassCalls:
    """Shorthands over ``run`` for any `MindEditMLLMLike` (scripts, benchmarks, tests). Keyword
    arguments: ``mask``, ``options``, ``should_stop``, ``on_token`` and `PassOptions` overrides."""

    def pass_request(self, image: Any, instruction: str, outputs: str, **request: Any) -> PassRequest:
        return PassRequest.build(
            image, instruction, outputs=outputs, defaults=self.default_options, **request
        )

    def refine_and_embed(self, image: Any, instruction: str, **request: Any) -> PassResult:
        """Refined prompts and ``v_insight`` from one pass (needs a head)."""
        return self.run(self.pass_request(image, instruction, "both", **request))

    def refine_full(self, image: Any, instruction: str, **request: Any) -> PassResult:
        """Refined prompts only (works without a head), with the raw text and token counts."""
        return self.run(self.pass_request(image, instruction, "prompts", **request))

    def refine(self, image: Any, instruction: str, **request: Any) -> Any:
        """The `RefinedPrompt` of `refine_full`."""
        return self.refine_full(image, instruction, **request).refined

    def embed(self, image: Any, instruction: str, **request: Any) -> Any:
        """``v_insight`` only (needs a head)."""
        return self.run(self.pass_request(image, instruction, "embeds", **request)).v_insight


def require_vision_head(mllm: Any, *, described_as: str = "") -> None:
    """Raise `MissingVisionHeadError` (saying how to get a head) unless ``mllm.has_head``: the one
    "head required" check. The runner and the nodes call it, the nodes before the MLLM runs (it reads
    only ``has_head``, which an unloaded MLLM's stand-in still answers)."""
    if getattr(mllm, "has_head", False):
        return
    reason = getattr(mllm, "no_head_reason", None)  # an MLLM that can never have one says why
    if reason:
        raise MissingVisionHeadError(reason)
    which = f" ({described_as})" if described_as else ""
    raise MissingVisionHeadError(
        f"MIND-Edit: this MLLM{which} has no vision head, so it cannot predict v_insight (the IP-Adapter "
        "embedding). In 'MIND-Edit MLLM Loader' pick a MIND-Edit checkpoint from models/mindedit instead of "
        "'none' (or pass checkpoint_dir= to load_mllm), or train one with `python -m training.train ...`. "
        "Prompt refinement alone (the 'MIND-Edit Refine Instruction' node) works without a head."
    )
