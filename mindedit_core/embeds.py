"""The embedding contract between the vision head, the IP-Adapter and ComfyUI's `EMBEDS` type.

An IP-Adapter for SD1.5 consumes what a CLIP vision encoder (OpenCLIP ViT-H/14) produces:

- ``plain`` adapters (``ip-adapter_sd15``) take the projected ``image_embeds``: ``[B, 1024]``;
- ``plus`` adapters (``ip-adapter-plus_sd15``) take the penultimate hidden states: ``[B, 257, 1280]``.

`v_insight` must have exactly that shape, and so must anything passed as ComfyUI_IPAdapter_plus's
``EMBEDS``. The widths are not hard-coded: they come from the adapter file (or the head's config), so
other encoders work too; the numbers above are the SD1.5 defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EmbedKind = Literal["plain", "plus"]
EMBED_KINDS: tuple[str, ...] = ("plain", "plus")


@dataclass(frozen=True)
class EmbedSpec:
    """Shape of one sample's embedding, without the batch dimension.

    ``tokens`` is ``None`` for pooled (plain) embeddings, which are 2-D ``[B, dim]`` tensors.
    """

    kind: EmbedKind
    dim: int
    tokens: int | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.dim,) if self.tokens is None else (self.tokens, self.dim)

    def describe(self) -> str:
        return f"{self.kind} [B,{','.join(str(d) for d in self.sample_shape)}]"


# The encoder every SD1.5 IP-Adapter was trained with: OpenCLIP ViT-H/14.
SD15_PLAIN = EmbedSpec(kind="plain", dim=1024)
SD15_PLUS = EmbedSpec(kind="plus", dim=1280, tokens=257)


def default_spec(kind: str) -> EmbedSpec:
    if kind == "plain":
        return SD15_PLAIN
    if kind == "plus":
        return SD15_PLUS
    raise ValueError(f"Unknown embedding kind {kind!r}: expected one of {EMBED_KINDS}.")


def shape_str(shape) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


class EmbedShapeError(ValueError):
    """An embedding does not have the shape its consumer expects; the message names both shapes."""


def check_embeds(
    embeds, spec: EmbedSpec, *, what: str = "embedding", consumer: str = "the IP-Adapter"
) -> None:
    """Raise `EmbedShapeError` unless ``embeds`` is ``[B, *spec.sample_shape]``.

    The message says what was given, what was expected, and the usual cause of the mismatch.
    """
    shape = tuple(embeds.shape)
    expected = spec.sample_shape
    if len(shape) == len(expected) + 1 and shape[1:] == expected:
        return
    got_kind = None
    if len(shape) == 2:
        got_kind = "plain (pooled image_embeds)"
    elif len(shape) == 3:
        got_kind = "plus (penultimate hidden states)"
    hint = (
        f" It looks like a {got_kind} embedding, but {consumer} is a {spec.kind} adapter: pair a plain "
        "head/encoder output with a plain adapter (ip-adapter_sd15) and a plus one with a plus adapter "
        "(ip-adapter-plus_sd15)."
        if got_kind and not got_kind.startswith(spec.kind)
        else " Check that the vision head or CLIP vision encoder was made for this adapter (same widths)."
    )
    raise EmbedShapeError(
        f"{what} has shape {shape_str(shape)}, but {consumer} expects {spec.describe()}.{hint}"
    )


def unconditional_embeds(like, negative=None):
    """The embedding of the unconditional (negative) pass, one row per row of ``like``.

    Zeros unless ``negative`` is given. Zeros is what plain adapters were trained with and
    ComfyUI_IPAdapter_plus's default. Plus adapters were trained with the encoder's output for a blank
    image: pass that stored embedding as ``negative`` (one row repeats over the batch).
    """
    if negative is None:
        return like.new_zeros(like.shape)
    if tuple(negative.shape[1:]) != tuple(like.shape[1:]) or negative.shape[0] not in (1, like.shape[0]):
        raise EmbedShapeError(
            f"The stored negative embedding has shape {shape_str(negative.shape)}, but the positive one is "
            f"{shape_str(like.shape)}: give one negative row, or one per positive row, of the same sample shape."
        )
    negative = negative.to(device=like.device, dtype=like.dtype)
    return negative.expand(like.shape[0], *negative.shape[1:]) if negative.shape[0] == 1 else negative
