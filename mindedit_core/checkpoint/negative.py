"""The unconditional ("negative") image embedding a plus checkpoint carries.

IP-Adapter Plus was trained with the image encoder's output for a blank image as its unconditional
input, not zeros. ``training.build_targets`` runs that encoder anyway, so it records the blank-image
output (the encoder fed an all-zero ``pixel_values`` tensor, i.e. zero after CLIP normalisation, as
IP-Adapter's reference code does) and training writes it into each plus checkpoint as
``negative_embeds.safetensors`` (``[1,257,1280]``). Plain checkpoints need none: zeros are what plain
adapters were trained with. A plus checkpoint written before this existed has none: the nodes then
use zeros and say so on the status line (`missing_negative_note`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..safe_files import CHECKPOINT_FIX, load_safetensors

NEGATIVE_NAME = "negative_embeds.safetensors"
NEGATIVE_KEY = "negative_embeds"


def save_negative_embeds(folder: str | Path, negative: Any) -> Path:
    """Write ``negative`` (one row, e.g. ``[1,257,1280]``) as ``<folder>/negative_embeds.safetensors``."""
    from safetensors.torch import save_file

    if negative.dim() < 2 or negative.shape[0] != 1:
        raise ValueError(
            f"The negative embedding must be one row ([1,...]), got shape {list(negative.shape)}."
        )
    path = Path(folder) / NEGATIVE_NAME
    save_file({NEGATIVE_KEY: negative.detach().float().cpu().contiguous()}, str(path))
    return path


def load_negative_embeds(ckpt: Any) -> Any:
    """The checkpoint's stored negative (fp32, CPU), or None when it has none."""
    if not ckpt.manifest.get("parts", {}).get("negative_embeds"):
        return None
    path = Path(ckpt.path) / NEGATIVE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing, but {Path(ckpt.path) / 'mindedit.json'} says the checkpoint stores a negative "
            f"embedding. {CHECKPOINT_FIX}"
        )
    tensors = load_safetensors(path, what="The checkpoint's negative embedding file", fix=CHECKPOINT_FIX)
    if NEGATIVE_KEY not in tensors:
        raise ValueError(
            f"{path} holds no {NEGATIVE_KEY!r} tensor (keys: {sorted(tensors)}). {CHECKPOINT_FIX}"
        )
    negative = tensors[NEGATIVE_KEY].float()
    head = ckpt.manifest.get("head") or {}
    want = [1, head["out_tokens"], head["out_dim"]] if head.get("out_tokens") else [1, head.get("out_dim")]
    if head and list(negative.shape) != want:
        raise ValueError(
            f"{path} has shape {list(negative.shape)}, but the checkpoint's {head.get('kind')} head outputs "
            f"{want}. {CHECKPOINT_FIX}"
        )
    return negative


def missing_negative_note(head_kind: str | None, negative: Any) -> str | None:
    """A status note when a plus head has no stored negative (zeros are used instead), else None."""
    if head_kind == "plus" and negative is None:
        return (
            "this plus checkpoint stores no blank-image negative (made before it was recorded): neg_embeds "
            "are zeros; export the checkpoint again with the current training to store one"
        )
    return None
