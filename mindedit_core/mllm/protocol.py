"""What core and the nodes need of an MLLM (`MindEditMLLMLike`), and the errors every implementation
raises: the contract the real `MindEditMLLM` and the tests' fakes share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import nn


class GenerationInterrupted(RuntimeError):
    """``should_stop`` returned True during generation (e.g. ComfyUI's Cancel)."""


class MissingVisionHeadError(ValueError):
    """``v_insight`` was requested from an MLLM loaded without a vision head (a configuration error:
    load a checkpoint with a head)."""


class PassResult(Protocol):
    """The result of one pass: ``refined`` (a `RefinedPrompt`), ``v_insight`` (tensor or None), ``text``."""

    refined: Any
    v_insight: Any
    text: str


@runtime_checkable
class MindEditMLLMLike(Protocol):
    """The MLLM as the pass cache, the nodes and the evaluation use it."""

    @property
    def has_head(self) -> bool: ...

    @property
    def negative_embeds(self) -> Any:
        """The stored unconditional embedding paired with ``v_insight`` (a plus checkpoint's
        blank-image output), or None for zeros."""
        ...

    def torch_modules(self) -> dict[str, nn.Module]: ...

    def refine_and_embed(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        options: Any = None,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
    ) -> PassResult: ...

    def refine_full(
        self,
        image: Any,
        instruction: str,
        *,
        mask: Any = None,
        options: Any = None,
        should_stop: Callable[[], bool] | None = None,
        on_token: Callable[[int, int], None] | None = None,
    ) -> PassResult: ...


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
