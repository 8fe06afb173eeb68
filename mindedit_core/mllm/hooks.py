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
    """The language model's decoder layers of a LLaVA-OneVision model (plain, merged or peft-wrapped).

    Module paths differ by version: ``model.language_model.layers`` (transformers >= 4.52, 5.x) or
    ``language_model.model.layers`` (older); we search by name so both (and peft wrappers) work.
    """
    best: tuple[int, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.endswith("layers") and "language_model" in name:
            depth = name.count(".")
            if best is None or depth < best[0]:
                best = (depth, module)
    if best is None:
        raise TypeError(
            f"Could not find the language model's decoder layers in {type(model).__name__}: expected a "
            "LLaVA-OneVision model with a 'language_model' holding 'layers'."
        )
    return best[1]


class LayerCapture:
    """Holds the first captured output of one layer (``hidden`` is None until the layer runs)."""

    def __init__(self, stop_after: bool) -> None:
        self.hidden: torch.Tensor | None = None
        self.stop_after = stop_after

    def __call__(self, module: nn.Module, args, output) -> None:
        if self.hidden is None:
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            self.hidden = tensor.detach()
            if self.stop_after:
                raise _StopAfterLayer()
        return None  # hooks must not replace the output


@contextmanager
def capture_layer(model: nn.Module, layer: int, *, stop_after: bool = False) -> Iterator[LayerCapture]:
    """Capture the prefill output of decoder layer ``layer`` (1-based) while the block runs.

    With ``stop_after=True`` the forward is cut short right after that layer: wrap the call in
    `run_until_captured`. The hook is always removed, also when the block raises.
    """
    layers = find_decoder_layers(model)
    if not 1 <= layer <= len(layers):
        raise ValueError(f"Layer {layer} is outside the model's 1..{len(layers)} decoder layers.")
    capture = LayerCapture(stop_after)
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
