"""Open weight files safely, and say which file is damaged or unsafe and how to fix it.

One implementation for every weight file the pack reads: the MLLM folder's ``*.safetensors``, the
vision head, the LoRA adapter and IP-Adapter files. The errors name the file, what is wrong and the
caller's fix (``fix``: "download it again", "export the checkpoint again", ...).

- `check_safetensors_file`: reads only the 8-byte header length and the JSON header, and compares
  the tensor data the header announces with the file's size. A cut-off download or copy (the usual
  damage) is caught before a loader sees the file, in microseconds, whatever the file's size.
- `load_safetensors`: that check, then ``safetensors.torch.load_file``; any other read error is
  reported the same way.
- `load_torch_weights`: ``torch.load(weights_only=True)``. A pickle that holds anything but tensors
  and plain containers (possibly code) is refused without running it, and the message says the fix
  is a ``.safetensors`` copy: never that the guard could be turned off.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
# The safetensors library refuses headers above 100 MB; a larger length means the bytes are not a header.
MAX_HEADER_BYTES = 100_000_000
_GLOBAL_IN_TORCH_MESSAGE = re.compile(r"GLOBAL ([\w.]+)")


# The fix for MIND-Edit checkpoint files (callers with other files pass their own ``fix``; an MLLM
# folder's names the family's repo: `mindedit_core.mllm.folder_files.download_fix`).
CHECKPOINT_FIX = (
    "Copy or download the MIND-Edit checkpoint folder again, or export it again from training "
    "(`python -m training.train` writes it when a run ends)."
)


class WeightsFileError(ValueError):
    """A weights file cannot be used; the message names the file, what is wrong and the fix."""


class DamagedWeightsFileError(WeightsFileError):
    """The file is truncated, damaged, or not a weights file at all (e.g. a saved HTML error page)."""


class UnsafePickleError(WeightsFileError):
    """A pickled weights file holds objects other than tensors (possibly code); it was not loaded."""


def is_safetensors(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SAFETENSORS_SUFFIXES


def _damaged(path: Path, what: str, problem: str, fix: str) -> DamagedWeightsFileError:
    return DamagedWeightsFileError(f"The {what} {path} is damaged or incomplete: {problem}. {fix}")


def safetensors_problem(path: str | Path) -> str | None:
    """What is wrong with a ``.safetensors`` file's framing, or None when header and size agree."""
    path = Path(path)
    size = path.stat().st_size
    if size < 8:
        return f"it is {size} bytes long, shorter than the 8-byte safetensors header length"
    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            return (
                f"its first 8 bytes announce a {header_len}-byte header in a {size}-byte file, so it is not "
                "a safetensors file (often an HTML error page or a cut-off download saved under this name)"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return "its safetensors header is not valid JSON"
    if not isinstance(header, dict):
        return "its safetensors header is not a JSON object"
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or ()) == 2
    ]
    expected = 8 + header_len + (max(ends) if ends else 0)
    if size < expected:
        return (
            f"its header announces {expected} bytes but the file has only {size} "
            f"({100 * size / expected:.1f} %): the download or copy was cut off"
        )
    if size > expected:
        return f"it has {size - expected} bytes after the last tensor its header announces"
    return None


def check_safetensors_file(path: str | Path, *, what: str, fix: str) -> None:
    """Raise `DamagedWeightsFileError` naming ``path`` unless its header and size agree."""
    path = Path(path)
    problem = safetensors_problem(path)
    if problem:
        raise _damaged(path, what, problem, fix)


def check_safetensors_files(paths: Iterable[str | Path], *, what: str, fix: str) -> None:
    """`check_safetensors_file` on each file, e.g. every shard of a model folder."""
    for path in paths:
        check_safetensors_file(path, what=what, fix=fix)


def check_sharded_index(folder: str | Path, *, what: str, fix: str) -> None:
    """Every shard a ``*.safetensors.index.json`` in ``folder`` lists must exist (an incomplete download)."""
    folder = Path(folder)
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_text()).get("weight_map", {})
        except (ValueError, AttributeError) as err:
            raise _damaged(index, what, f"it is not a valid JSON shard index ({err})", fix) from err
        missing = sorted({name for name in weight_map.values() if not (folder / name).is_file()})
        if missing:
            raise _damaged(
                index,
                what,
                f"it lists {len(missing)} shard file(s) that are not in the folder ({', '.join(missing[:3])})",
                fix,
            )


def check_safetensors_folder(folder: str | Path, *, what: str, fix: str) -> None:
    """A Hugging Face model folder: its shard index is complete and every ``*.safetensors`` is whole."""
    check_sharded_index(folder, what=what, fix=fix)
    check_safetensors_files(sorted(Path(folder).glob("*.safetensors")), what=what, fix=fix)


def load_safetensors(path: str | Path, *, what: str, fix: str, device: str = "cpu") -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file, or `DamagedWeightsFileError` naming the file and ``fix``."""
    from safetensors.torch import load_file

    path = Path(path)
    check_safetensors_file(path, what=what, fix=fix)
    try:
        return load_file(str(path), device=device)
    except Exception as err:  # SafetensorError for damage the framing check cannot see
        raise _damaged(path, what, f"safetensors could not read it ({err})", fix) from err


def load_torch_weights(path: str | Path, *, what: str, fix: str) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and ``fix``.

    A pickle holding other objects raises `UnsafePickleError` (the file is never executed); any other
    failure (a cut-off zip, not a torch file) raises `DamagedWeightsFileError`.
    """
    import torch

    path = Path(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's weights-only refusal ("Weights only load failed ... weights_only ..."); a cut-off legacy
        # pickle raises UnpicklingError too, but says "pickle data was truncated".
        if "weights_only" not in str(err).lower().replace(" ", "_"):
            raise _damaged(path, what, f"torch could not read it ({err})", fix) from err
        found = _GLOBAL_IN_TORCH_MESSAGE.search(str(err))
        detail = f" (it references {found.group(1)})" if found else ""
        raise UnsafePickleError(
            f"The {what} {path} holds non-tensor objects{detail}, possibly code, so it was not loaded: "
            f"MIND-Edit reads only plain tensors from pickled .bin/.pt files. Use a .safetensors copy of "
            f"this file instead (most models are published in both formats). {fix}"
        ) from None
    except Exception as err:  # a truncated zip archive, random bytes, an HTML page
        raise _damaged(path, what, f"torch could not read it ({type(err).__name__}: {err})", fix) from err


def load_weights(path: str | Path, *, what: str, fix: str) -> Any:
    """`load_safetensors` or `load_torch_weights`, by the file's suffix."""
    if is_safetensors(path):
        return load_safetensors(path, what=what, fix=fix)
    return load_torch_weights(path, what=what, fix=fix)
