"""One MLLM pass shared by the refine and embed nodes, with ComfyUI's Cancel and progress bar.

The method gets the refined prompts and ``v_insight`` from the same ``generate`` call (the vision
head reads the prefill's hidden states). When a graph uses the separate refine and embed nodes on
the same model, image, instruction and settings, the second node must not pay for the MLLM again:
results are kept in a small LRU keyed by everything that determines them. ComfyUI's own output
cache does the rest (a re-queue with unchanged MLLM inputs skips both nodes entirely).

The cache holds CPU tensors and strings only, never the model, so dropping ComfyUI's caches
(``/free``) still releases the MLLM.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import comfy.model_management
import comfy.utils
import torch

from ..mindedit_core.images import mask_is_empty
from ..mindedit_core.mllm import GenerationInterrupted
from .comfy_mllm_patcher import MLLMHandle, load_for_use

LOG = logging.getLogger("MIND-Edit")

CACHE_SIZE = 8
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class PassSettings:
    """Everything besides the inputs' content that changes a pass's result."""

    instruction: str
    seed: int
    max_new_tokens: int
    max_image_side: int


@dataclass
class PassOutcome:
    """What both nodes read: prompts, the raw answer, the embeddings (CPU) and a status line.

    ``batch_note`` belongs to the call, not to the cached result: the key holds the first image only,
    so the same result serves a single image and a batch starting with it.
    """

    positive: str
    negative: str
    raw: str
    v_insight: torch.Tensor | None
    warning: str | None
    description: str
    batch_note: str | None = None

    @property
    def status(self) -> str:
        """The parser's warning (or "ok"), the batch note, and the model used."""
        parts = [f"WARNING: {self.warning}" if self.warning else "ok: the MLLM answer was parsed"]
        if self.batch_note:
            parts.append(self.batch_note)
        parts.append(f"model: {self.description}")
        return " | ".join(parts)


def tensor_digest(value: torch.Tensor | None) -> str | None:
    """A content hash of a tensor (shape, dtype and bytes): same pixels -> same key."""
    if value is None:
        return None
    data = value.detach().to("cpu").contiguous()
    if data.dtype == torch.bfloat16:
        data = data.float()
    digest = hashlib.sha256()
    digest.update(f"{tuple(data.shape)}|{data.dtype}".encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


class PassCache:
    """A thread-safe LRU of `PassOutcome` by key; counts real computations for tests and logs."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._entries: OrderedDict[tuple, PassOutcome] = OrderedDict()
        self._lock = threading.Lock()
        self.computations = 0

    def get(self, key: tuple) -> PassOutcome | None:
        with self._lock:
            outcome = self._entries.get(key)
            if outcome is not None:
                self._entries.move_to_end(key)
            return outcome

    def put(self, key: tuple, outcome: PassOutcome) -> None:
        with self._lock:
            self.computations += 1
            self._entries[key] = outcome
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PASS_CACHE = PassCache()


def pass_key(
    handle: MLLMHandle, image: torch.Tensor, mask: torch.Tensor | None, settings: PassSettings
) -> tuple:
    return (handle.uid, tensor_digest(image), tensor_digest(mask), settings)


def first_of_batch(image: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any, str | None]:
    """The MLLM reads one image: the first of a batch, said visibly in the status line."""
    note = None
    if image.ndim == 4 and image.shape[0] > 1:
        note = f"batch of {image.shape[0]} images: the MLLM read image 0 only"
        LOG.warning("MIND-Edit: %s.", note)
    single = image[:1] if image.ndim == 4 else image.unsqueeze(0)
    single_mask = None
    if mask is not None:
        single_mask = mask[:1] if mask.ndim == 3 else mask.unsqueeze(0)
        if mask_is_empty(single_mask):
            single_mask = None  # an empty mask means a mask-free edit
    return single, single_mask, note


class _TokenProgress:
    """ComfyUI progress bar over generated tokens (the UI's bar on the node)."""

    def __init__(self, total: int):
        self.bar = comfy.utils.ProgressBar(total)
        self.count = 0

    def __call__(self, step: int | None = None, *_args: Any, **_kwargs: Any) -> None:
        self.count = step if step is not None else self.count + 1
        self.bar.update_absolute(self.count)

    def finish(self) -> None:
        self.bar.update_absolute(self.bar.total)


def compute_pass(
    handle: MLLMHandle,
    image: torch.Tensor,
    mask: torch.Tensor | None,
    settings: PassSettings,
    *,
    cache: PassCache = PASS_CACHE,
) -> PassOutcome:
    """Run (or reuse) the one MLLM pass for these inputs.

    Cancel in ComfyUI stops generation between tokens (``should_stop`` reads ComfyUI's interrupt
    flag) and raises ComfyUI's own interrupt exception, so the queue reports "interrupted" and
    nothing half-finished is cached.
    """
    single, single_mask, note = first_of_batch(image, mask)
    key = pass_key(handle, single, single_mask, settings)
    cached = cache.get(key)
    if cached is not None:
        return replace(cached, batch_note=note)

    load_for_use(handle)
    progress = _TokenProgress(settings.max_new_tokens)
    with _RUN_LOCK:
        # The image budget is a property of the loaded MLLM; set per call (calls are serialised).
        handle.mllm.max_side = settings.max_image_side
        try:
            # Without a vision head only the prompts can be made (the embed nodes refuse earlier).
            run = (
                handle.mllm.refine_and_embed
                if getattr(handle.mllm, "has_head", True)
                else handle.mllm.refine_full
            )
            result = run(
                single,
                settings.instruction,
                mask=single_mask,
                seed=settings.seed,
                max_new_tokens=settings.max_new_tokens,
                should_stop=comfy.model_management.processing_interrupted,
                on_token=progress,
            )
        except Exception as exc:
            if comfy.model_management.processing_interrupted() or isinstance(exc, GenerationInterrupted):
                # Report Cancel the way ComfyUI expects (status "interrupted", not an error).
                comfy.model_management.throw_exception_if_processing_interrupted()
                raise comfy.model_management.InterruptProcessingException() from exc
            raise
    progress.finish()
    refined = result.refined
    v_insight = result.v_insight
    if v_insight is not None:
        v_insight = v_insight.detach().to("cpu", torch.float32)
    outcome = PassOutcome(
        positive=refined.positive,
        negative=refined.negative,
        raw=getattr(result, "text", None) or refined.raw,
        v_insight=v_insight,
        warning=getattr(refined, "warning", None),
        description=handle.description,
    )
    cache.put(key, outcome)
    return replace(outcome, batch_note=note)
