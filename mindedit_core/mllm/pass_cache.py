"""The one MLLM pass shared by several consumers: its result cache and the batch rule (pure logic).

The method gets the refined prompts and ``v_insight`` from the same ``generate`` call. When a graph
uses separate refine and embed nodes on the same model, image, instruction and options, the second
must not pay for the MLLM again: results are kept in a small LRU keyed by everything that determines
them (the loaded model's id, the pixels' content hash, the mask's, the instruction, the options).

The cache holds CPU tensors and strings only, never the model, so dropping it never keeps a model
alive. ComfyUI specifics (progress bar, Cancel, memory management) stay in the nodes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..checkpoint.negative import missing_negative_note
from ..embeds import unconditional_embeds
from ..images import mask_is_empty
from ..prompt_styles import style_named
from .options import PassOptions

log = logging.getLogger(__name__)

CACHE_SIZE = 8


@dataclass
class PassOutcome:
    """What every consumer reads: prompts, the raw answer, the embeddings (CPU) and a status line.

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
    neg_embeds: torch.Tensor | None = None
    negative_note: str | None = None
    style: str | None = None

    @property
    def status(self) -> str:
        """The parser's warning (or "ok"), the batch note, the output style and the model used."""
        parts = [f"WARNING: {self.warning}" if self.warning else "ok: the MLLM answer was parsed"]
        if self.batch_note:
            parts.append(self.batch_note)
        if self.negative_note:
            parts.append(f"WARNING: {self.negative_note}")
        parts.append(style_named(self.style).status)
        parts.append(f"model: {self.description}")
        return " | ".join(parts)

    @classmethod
    def from_result(
        cls, result: Any, description: str, stored_negative: Any = None, style: str | None = None
    ) -> PassOutcome:
        """From a `PassResult` (``v_insight`` moved to the CPU in fp32). ``neg_embeds`` pairs with it:
        ``stored_negative`` (the checkpoint's blank-image embedding) or zeros, said on the status line
        when a plus head has no stored negative. ``style``: the output style's name (None: SD tags)."""
        refined = result.refined
        v_insight = result.v_insight
        neg_embeds = note = None
        if v_insight is not None:
            v_insight = v_insight.detach().to("cpu", torch.float32)
            neg_embeds = unconditional_embeds(v_insight, stored_negative)
            note = missing_negative_note("plus" if v_insight.dim() == 3 else "plain", stored_negative)
        return cls(
            positive=refined.positive,
            negative=refined.negative,
            raw=getattr(result, "text", None) or refined.raw,
            v_insight=v_insight,
            warning=getattr(refined, "warning", None),
            description=description,
            neg_embeds=neg_embeds,
            negative_note=note,
            style=style,
        )


def tensor_digest(value: Any) -> str | None:
    """A content hash of a tensor or array (shape, dtype and bytes): same pixels -> same key."""
    if value is None:
        return None
    data = torch.as_tensor(value).detach().to("cpu").contiguous()
    if data.dtype == torch.bfloat16:
        data = data.float()
    digest = hashlib.sha256()
    digest.update(f"{tuple(data.shape)}|{data.dtype}".encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def pass_key(model_id: str, image: Any, mask: Any, instruction: str, options: PassOptions) -> tuple:
    """Everything that determines a pass's result (``model_id``: one loaded instance)."""
    return (model_id, tensor_digest(image), tensor_digest(mask), instruction, options)


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

    def lookup(self, key: tuple, batch_note: str | None) -> PassOutcome | None:
        """The cached outcome with this call's batch note, or None."""
        cached = self.get(key)
        return None if cached is None else replace(cached, batch_note=batch_note)


def first_of_batch(image: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any, str | None]:
    """The MLLM reads one image: the first of a batch, said visibly in the returned note. An empty
    mask becomes None (a mask-free edit)."""
    note = None
    if image.ndim == 4 and image.shape[0] > 1:
        note = f"batch of {image.shape[0]} images: the MLLM read image 0 only"
        log.warning("MIND-Edit: %s.", note)
    single = image[:1] if image.ndim == 4 else image.unsqueeze(0)
    single_mask = None
    if mask is not None:
        single_mask = mask[:1] if mask.ndim == 3 else mask.unsqueeze(0)
        if mask_is_empty(single_mask):
            single_mask = None
    return single, single_mask, note
