"""What the IP-Adapter core needs of ComfyUI, written down once (nothing here imports ComfyUI).

`ComfyModelPatcher` is the part of ``comfy.model_patcher.ModelPatcher`` that `apply_ipadapter`
uses; the test fake and the real class are held to it by ``tests/test_ipadapter_contract.py``.

The live attn2 table. ComfyUI (``comfy/ldm/modules/attention.py``, ``BasicTransformerBlock``) looks a
cross-attention replacement up under ``(block_kind, block_id, transformer_index)`` first and under
``(block_kind, block_id)`` only when the 3-tuple is absent. MIND-Edit installs on 3-tuple keys; a
pack applied *after* it on 2-tuple keys (ComfyUI_IPAdapter_plus does) is then never looked up. Our
replacement must run it, but ComfyUI hands a replacement ``extra_options`` without
``patches_replace``, and ComfyUI copies those dicts on every later patch, so no reference taken at
apply time stays current. `expose_live_attn2`, a ``diffusion_model`` wrapper (ComfyUI's own
multi-wrapper API, so it composes with other packs' wrappers), copies a reference to the table of
the call being run into the call's ``transformer_options`` under `LIVE_ATTN2_KEY`, a key ComfyUI
passes on to every replacement in ``extra_options``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

DIFFUSION_MODEL_WRAPPER = "diffusion_model"  # comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
WRAPPER_KEY = "mindedit_ipadapter"
LIVE_ATTN2_KEY = "mindedit_live_attn2_replace"
# UNetModel._forward(x, timesteps, context, y, control, transformer_options, **kwargs) in ComfyUI.
TRANSFORMER_OPTIONS_POSITION = 5


@runtime_checkable
class ModelSampling(Protocol):
    """``patcher.get_model_object("model_sampling")``: the schedule, to turn fractions into sigmas."""

    def percent_to_sigma(self, percent: float) -> float: ...


@runtime_checkable
class ComfyModelPatcher(Protocol):
    """The ComfyUI ``MODEL`` surface `apply_ipadapter` uses.

    ``clone`` copies ``model_options`` deeply (patches on the clone never reach the original);
    ``set_model_attn2_replace`` stores ``patch`` under ``model_options["transformer_options"]
    ["patches_replace"]["attn2"][(block_name, number, transformer_index)]`` (a 2-tuple without the
    index); wrappers added with a key are kept by clones and run around the diffusion model.
    ``model.diffusion_model`` (an LDM UNet) is read when present, to check the adapter's widths.
    """

    model: Any
    model_options: dict[str, Any]

    def clone(self) -> ComfyModelPatcher: ...

    def set_model_attn2_replace(
        self, patch: Any, block_name: str, number: int, transformer_index: int | None = None
    ) -> None: ...

    def get_model_object(self, name: str) -> Any: ...

    def add_wrapper_with_key(self, wrapper_type: str, key: str, wrapper: Callable) -> None: ...

    def get_wrappers(self, wrapper_type: str, key: str) -> list: ...


_PROTOCOL_METHODS = (
    "clone",
    "set_model_attn2_replace",
    "get_model_object",
    "add_wrapper_with_key",
    "get_wrappers",
)


def check_model_patcher(model_patcher: Any) -> None:
    """Raise a `TypeError` naming what is missing unless ``model_patcher`` fits `ComfyModelPatcher`."""
    if isinstance(model_patcher, ComfyModelPatcher):
        return
    missing = [
        name for name in ("model", "model_options", *_PROTOCOL_METHODS) if not hasattr(model_patcher, name)
    ]
    raise TypeError(
        f"MIND-Edit Apply IP-Adapter needs a ComfyUI MODEL (a ModelPatcher); got a {type(model_patcher).__name__} "
        f"without {', '.join(missing)}. Connect a MODEL output (e.g. Load Checkpoint); on a ComfyUI older "
        "than its wrappers API (add_wrapper_with_key), update ComfyUI."
    )


def attn2_table(model_options: dict[str, Any]) -> dict:
    """The attn2 replacements of a patcher's ``model_options`` (empty if none)."""
    return model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})


def expose_live_attn2(executor: Callable, *args: Any, **kwargs: Any) -> Any:
    """``diffusion_model`` wrapper: publish this call's attn2 table to the replacements (see module doc)."""
    options = kwargs.get("transformer_options")
    if options is None and len(args) > TRANSFORMER_OPTIONS_POSITION:
        options = args[TRANSFORMER_OPTIONS_POSITION]
    if isinstance(options, dict):  # a per-call dict ComfyUI builds for each model call
        options[LIVE_ATTN2_KEY] = attn2_table({"transformer_options": options})
    return executor(*args, **kwargs)


def install_live_attn2(model_patcher: ComfyModelPatcher) -> None:
    """Add `expose_live_attn2` once per model (clones inherit it; a second apply adds nothing)."""
    if not model_patcher.get_wrappers(DIFFUSION_MODEL_WRAPPER, WRAPPER_KEY):
        model_patcher.add_wrapper_with_key(DIFFUSION_MODEL_WRAPPER, WRAPPER_KEY, expose_live_attn2)
