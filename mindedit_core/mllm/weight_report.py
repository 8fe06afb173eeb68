"""Refuse a VLM whose weights file does not match its model: missing or unexpected tensors.

transformers loads a ``model.safetensors`` that lacks whole tensors (a decoder layer's, say), leaves
them randomly initialised and only prints a "MISSING" load report to the console: the model then
runs and answers nonsense. `check_loading_info` reads the report ``from_pretrained(...,
output_loading_info=True)`` returns and refuses such a load, naming the folder, the keys and the fix.

What transformers already leaves out of the report is fine by design: weights a family ties to
others (the LM head tied to the embeddings in the smaller models) and the patterns a model class
declares ignorable (``_keys_to_ignore_on_load_missing`` / ``_unexpected``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SHOWN_KEYS = 5


class WeightsMismatchError(ValueError):
    """The weights in a model folder do not match the model its config.json describes."""


def _ignorable(model: Any, attribute: str) -> list[re.Pattern]:
    patterns = getattr(model, attribute, None) or []
    return [re.compile(p) for p in patterns if isinstance(p, str)]


def _left(keys: Iterable[str], ignore: list[re.Pattern]) -> list[str]:
    return sorted(k for k in keys if not any(p.search(k) for p in ignore))


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def loading_problems(model: Any, info: dict) -> list[str]:
    """What is wrong in a loading report (empty when every weight was found and used)."""
    missing = _left(info.get("missing_keys") or (), _ignorable(model, "_keys_to_ignore_on_load_missing"))
    unexpected = _left(
        info.get("unexpected_keys") or (), _ignorable(model, "_keys_to_ignore_on_load_unexpected")
    )
    mismatched = [
        str(entry[0] if isinstance(entry, (tuple, list)) else entry)
        for entry in info.get("mismatched_keys") or ()
    ]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} weight(s) the model needs are not in the files ({_listing(missing)})"
        )
    if unexpected:
        problems.append(
            f"{len(unexpected)} weight(s) in the files belong to no layer of the model ({_listing(unexpected)})"
        )
    if mismatched:
        problems.append(
            f"{len(mismatched)} weight(s) have another shape than the config says ({_listing(sorted(mismatched))})"
        )
    return problems


def check_loading_info(model: Any, info: dict, folder: str | Path, *, fix: str) -> None:
    """Raise `WeightsMismatchError` when the load report shows missing, unexpected or mismatched weights."""
    problems = loading_problems(model, info)
    if problems:
        files = sorted(p.name for p in Path(folder).glob("*.safetensors")) or ["its weight files"]
        raise WeightsMismatchError(
            f"The weights in {folder} ({', '.join(files[:3])}) do not match the model its config.json "
            f"describes: {'; '.join(problems)}. Those weights would stay random and the model would answer "
            f"nonsense, so it was not loaded. The files are incomplete or from another model: {fix}"
        )
