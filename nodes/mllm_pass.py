"""The shared MLLM pass under ComfyUI: progress bar, Cancel translation and memory management.

The pure logic (the result cache keyed by content hashes, the first-image-of-a-batch rule, the
outcome and its status line) lives in `mindedit_core.mllm.pass_cache`; this module only adds what
needs ComfyUI. ComfyUI's own output cache does the rest (a re-queue with unchanged MLLM inputs skips
the nodes entirely).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import comfy.model_management
import comfy.utils
import torch

from ..mindedit_core.mllm import GenerationInterrupted, PassOptions, PassRequest
from ..mindedit_core.mllm.pass_cache import PassCache, PassOutcome, first_of_batch, pass_key
from ..mindedit_core.prompt_styles import SD_TAGS
from .comfy_mllm_patcher import MLLMHandle, load_for_use

PASS_CACHE = PassCache()
_RUN_LOCK = threading.Lock()

__all__ = ["PASS_CACHE", "PassCache", "PassOutcome", "PassOptions", "compute_pass"]


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
    instruction: str,
    options: PassOptions,
    *,
    cache: PassCache = PASS_CACHE,
) -> PassOutcome:
    """Run (or reuse) the one MLLM pass for these inputs. ``handle``: a local MLLM's `MLLMHandle` (put
    on the compute device first) or a remote VLM's handle (`nodes.remote_vlm.RemoteHandle`).

    Cancel in ComfyUI stops generation between tokens (``should_stop`` reads ComfyUI's interrupt
    flag) and raises ComfyUI's own interrupt exception, so the queue reports "interrupted" and
    nothing half-finished is cached.
    """
    single, single_mask, note = first_of_batch(image, mask)
    key = pass_key(handle.uid, single, single_mask, instruction, options)
    cached = cache.lookup(key, note)
    if cached is not None:
        return cached

    if isinstance(handle, MLLMHandle):  # a remote VLM's handle has no weights to manage
        load_for_use(handle)
    progress = _TokenProgress(options.max_new_tokens)
    with _RUN_LOCK:
        try:
            # Without a vision head only the prompts can be made (the embed nodes refuse earlier). The
            # head reads the hidden states of the SD-tag prompt it was trained on: another style's pass
            # makes prompts only.
            embed = handle.mllm.has_head and options.style == SD_TAGS.name
            request = PassRequest(
                single,
                instruction,
                mask=single_mask,
                outputs="both" if embed else "prompts",
                options=options,
                should_stop=comfy.model_management.processing_interrupted,
                on_token=progress,
            )
            result = handle.mllm.run(request)
        except Exception as exc:
            if comfy.model_management.processing_interrupted() or isinstance(exc, GenerationInterrupted):
                # Report Cancel the way ComfyUI expects (status "interrupted", not an error).
                comfy.model_management.throw_exception_if_processing_interrupted()
                raise comfy.model_management.InterruptProcessingException() from exc
            raise
    progress.finish()
    outcome = PassOutcome.from_result(
        result, handle.description, stored_negative=handle.mllm.negative_embeds, style=options.style
    )
    cache.put(key, outcome)
    return replace(outcome, batch_note=note)
