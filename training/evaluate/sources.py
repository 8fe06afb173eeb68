"""Where an evaluation's refined prompts and ``v_insight`` come from: an MLLM *source* is a base model
folder plus an optional MIND-Edit checkpoint, and the training variant that checkpoint records.

A source can be named by its checkpoint folder (``mindedit.json`` inside) or by the output folder of
``python -m training.train`` (``checkpoint/`` and, after full fine-tuning, ``model/``, the base model to
use). The variant is read from the checkpoint manifest (or from ``train_config.json`` when full
fine-tuning left no checkpoint, e.g. ``text_only``), in one spelling (``text_only``, old manifests
say ``text-only``).

`MLLMCache` loads each source once and keeps at most ``keep`` loaded, so the six rows of Table 2 (three
checkpoints) do not load a model per row.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "mindedit.json"


@dataclass(frozen=True)
class MLLMSource:
    mllm: str  # base model folder (transformers format)
    checkpoint: str | None = None  # MIND-Edit checkpoint folder
    variant: str | None = None  # joint | text_only | head_only | None (no checkpoint)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def training(self) -> str:
        """Table 2's training-approach letter: J (joint), I (independent), ? (unknown)."""
        return {"joint": "J", "text_only": "I", "head_only": "I"}.get(self.variant or "", "?")


def _variant_of_checkpoint(folder: Path) -> str | None:
    from mindedit_core.checkpoint import read_checkpoint

    return read_checkpoint(folder).variant.replace("-", "_") or None


def resolve_source(path: str | Path | None, base_mllm: str | Path | None) -> MLLMSource | None:
    """The source named by ``path`` (a checkpoint folder or a training output folder) over ``base_mllm``.

    ``path=None`` with a base model is the bare base model (no checkpoint); neither is ``None``."""
    if path is None:
        return MLLMSource(str(Path(base_mllm).resolve())) if base_mllm else None
    folder = Path(path)
    if (folder / MANIFEST).is_file():
        if not base_mllm:
            raise ValueError(
                f"Checkpoint {folder} needs its base model: pass --mllm DIR (the VLM folder it was trained on)."
            )
        return MLLMSource(
            str(Path(base_mllm).resolve()), str(folder.resolve()), _variant_of_checkpoint(folder)
        )
    checkpoint, model = folder / "checkpoint", folder / "model"
    if not (checkpoint / MANIFEST).is_file() and not (model / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is neither a MIND-Edit checkpoint (no {MANIFEST}) nor a training output folder (no "
            "checkpoint/ or model/ inside): pass the folder `python -m training.train --out DIR` wrote, or "
            "its checkpoint/ subfolder."
        )
    base = model if (model / "config.json").is_file() else base_mllm
    if not base:
        raise ValueError(f"{folder} holds a LoRA checkpoint: pass its base model with --mllm DIR.")
    if (checkpoint / MANIFEST).is_file():
        return MLLMSource(
            str(Path(base).resolve()), str(checkpoint.resolve()), _variant_of_checkpoint(checkpoint)
        )
    train_config = folder / "train_config.json"
    variant = json.loads(train_config.read_text())["variant"] if train_config.is_file() else None
    return MLLMSource(str(Path(base).resolve()), None, variant)


class MLLMCache:
    """``get(source)`` loads a source's MLLM once; at most ``keep`` stay loaded (least recently used
    is dropped first)."""

    def __init__(self, *, device: str, keep: int = 2) -> None:
        self.device = device
        self.keep = max(1, keep)
        self.loaded: OrderedDict[MLLMSource, object] = OrderedDict()
        self.loads = 0

    def get(self, source: MLLMSource):
        if source in self.loaded:
            self.loaded.move_to_end(source)
            return self.loaded[source]
        from mindedit_core.mllm import load_mllm

        while len(self.loaded) >= self.keep:
            self.loaded.popitem(last=False)
        model = load_mllm(source.mllm, checkpoint_dir=source.checkpoint, device=self.device)
        self.loads += 1
        self.loaded[source] = model
        return model
