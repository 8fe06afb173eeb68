"""Reading one decoder layer's output during the MLLM's prefill, without keeping every layer.

``output_hidden_states=True`` during ``generate`` would keep all L+1 hidden states of the prompt
(~1.4 GB for the 7B model and a 7k-token prompt) and again one per generated token. A forward hook on
decoder layer m keeps only that layer's output of the first (prefill) call: ~50 MB.

Layer numbering: ``layer`` is 1-based, the output of decoder layer ``layer`` = ``hidden_states[layer]``
of a transformers forward (for the last layer the hook sees the raw output, before the final norm).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import torch
from torch import nn


class _StopAfterLayer(Exception):
    """Raised by the hook to skip the layers after m (and the LM head) in an embedding-only forward."""


def find_decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The language model's decoder layers (plain, merged or peft-wrapped model of any family).

    The family lists where its layers live (paths moved between transformers versions, e.g.
    ``model.language_model.layers`` in >= 4.52 and 5.x, ``language_model.model.layers`` before);
    a peft wrapper adds a ``base_model.model.`` prefix, so the paths are matched as name suffixes.
    """
    paths = _family_layer_paths(model)
    best: tuple[int, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList):
            continue
        if any(name == p or name.endswith("." + p) for p in paths):
            depth = name.count(".")
            if best is None or depth < best[0]:
                best = (depth, module)
    if best is None:
        raise TypeError(
            f"Could not find the language model's decoder layers in {type(model).__name__} "
            f"(looked for {' or '.join(paths)}): is this a supported MLLM with a matching transformers?"
        )
    return best[1]


def _family_layer_paths(model: nn.Module) -> tuple[str, ...]:
    from .families import FAMILIES

    config = getattr(model, "config", None)
    family = FAMILIES.get(str(getattr(config, "model_type", "")))
    if family is not None:
        return family.decoder_layer_paths
    return tuple(dict.fromkeys(p for f in FAMILIES.values() for p in f.decoder_layer_paths))


class LayerCapture:
    """Holds the first captured output of one layer (``hidden`` is None until the layer runs)."""

    def __init__(self, stop_after: bool, detach: bool = True) -> None:
        self.hidden: torch.Tensor | None = None
        self.stop_after = stop_after
        self.detach = detach

    def __call__(self, module: nn.Module, args, output) -> None:
        if self.hidden is None:  # only the first call: the prefill (or the forward before a recompute)
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            self.hidden = tensor.detach() if self.detach else tensor
            if self.stop_after:
                raise _StopAfterLayer()
        return None  # hooks must not replace the output


@contextmanager
def capture_layer(
    model: nn.Module, layer: int, *, stop_after: bool = False, detach: bool = True
) -> Iterator[LayerCapture]:
    """Capture the prefill output of decoder layer ``layer`` (1-based) while the block runs.

    With ``stop_after=True`` the forward is cut short right after that layer: wrap the call in
    `run_until_captured`. ``detach=False`` keeps the tensor's graph (training: the head's loss flows
    back into the MLLM; with gradient checkpointing the layer's recompute in backward is ignored).
    The hook is always removed, also when the block raises.
    """
    layers = find_decoder_layers(model)
    if not 1 <= layer <= len(layers):
        raise ValueError(f"Layer {layer} is outside the model's 1..{len(layers)} decoder layers.")
    capture = LayerCapture(stop_after, detach)
    handle = layers[layer - 1].register_forward_hook(capture)
    try:
        yield capture
    finally:
        handle.remove()


def run_until_captured(call, capture: LayerCapture):
    """Run ``call()``; a `_StopAfterLayer` from the hook means the capture is done."""
    with suppress(_StopAfterLayer):
        call()
    if capture.hidden is None:
        raise RuntimeError("The MLLM forward finished without running the captured decoder layer.")
    return capture.hidden
