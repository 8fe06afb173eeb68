"""Put the MLLM under ComfyUI's memory manager, like ComfyUI's own text encoders.

MLLM packs that keep their model outside ComfyUI are the top VRAM complaint: "Unload models" does
nothing and the diffusion model runs out of memory beside them. Here the MLLM's torch modules are
wrapped in a ``comfy.model_patcher.ModelPatcher``; each use calls
``comfy.model_management.load_models_gpu([patcher])``, which frees room (unloading other models if
needed) and moves the weights to the load device; ComfyUI later offloads it to make room for the
UNet, and ``/free`` (the "Unload models" button) detaches it like any other model.

Two details matter:

- ``ModelPatcher`` writes ``model.device``, a read-only property on Hugging Face models, so the
  modules live in a plain holder module with an ordinary ``device`` attribute;
- partial ("lowvram") loading only works for ComfyUI's own cast-aware layers; an HF model split
  across devices would fail mid-generation, so the MLLM is always loaded fully
  (``force_full_load=True``) and ComfyUI unloads other models to make room.

Quantised (bitsandbytes) weights cannot be moved between devices: they are created on the GPU and
their patcher's offload device is the GPU too.

Unloading where there is nowhere to offload to: on a CPU-only ComfyUI (and for quantised weights)
the offload device *is* the load device, so ComfyUI's unload would move nothing and free nothing
while the loader node's cached output keeps the model alive. There, when ComfyUI detaches the
patcher ("Unload models", ``/free``, or room needed for another model), the handle releases its
weights (``release_weights``) and the next use reloads them from disk with the loader's own
recipe (``load_for_use``). Where an offload device exists (a GPU), unloading moves the weights to
it exactly as ComfyUI does for its own models.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import comfy.model_management
import comfy.model_patcher
import torch

from ..mindedit_core.mllm.dtypes import resolve_dtype as resolve_dtype_name

try:
    from comfy.patcher_extension import CallbacksMP
except ImportError:  # a ComfyUI older than patcher callbacks (late 2024): unloading only moves weights
    CallbacksMP = None

LOG = logging.getLogger("MIND-Edit")


class MLLMModuleHolder(torch.nn.Module):
    """A plain container for the MLLM's modules, with a writable ``device`` for ModelPatcher."""

    def __init__(self, modules: dict[str, torch.nn.Module], device: torch.device):
        super().__init__()
        self.parts = torch.nn.ModuleDict(modules)
        self.device = device


@dataclass
class MLLMHandle:
    """What the loader node outputs (ComfyUI type ``MINDEDIT_MLLM``).

    ``uid`` identifies this loaded instance in the one-pass result cache: two loads of the same
    folder are different models as far as cached results go (settings may differ).
    ``reload`` rebuilds the MLLM from disk (same folder, checkpoint and settings); with it, the
    weights are released when ComfyUI unloads the model and has nowhere to offload it to.
    """

    mllm: object
    patcher: comfy.model_patcher.ModelPatcher
    description: str
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    reload: Callable[[], object] | None = None
    released: bool = False


class ReleasedMLLM:
    """Stands in for an MLLM whose weights were released: answers ``has_head`` (checked before a
    run), refuses everything else until ``load_for_use`` reloads the model."""

    def __init__(self, has_head: bool, description: str):
        self.has_head = has_head
        self._description = description

    def __getattr__(self, name: str):
        raise RuntimeError(
            f"MIND-Edit: the MLLM ({self._description}) was unloaded and its weights released; "
            f"call load_for_use(handle) before using it (tried to read {name!r})."
        )


def mllm_device_plan(quantization: str | None) -> tuple[torch.device, torch.device]:
    """(load device, offload device) for an MLLM: ComfyUI's compute device and its offload device.

    Quantised weights stay where bitsandbytes put them, so both are the compute device.
    """
    load_device = comfy.model_management.get_torch_device()
    if quantization:
        return load_device, load_device
    return load_device, comfy.model_management.unet_offload_device()


def comfy_auto_dtype(load_device: torch.device) -> torch.dtype:
    """What ComfyUI would pick for the compute device: bf16, else fp16, else fp32."""
    if comfy.model_management.should_use_bf16(load_device):
        return torch.bfloat16
    if comfy.model_management.should_use_fp16(load_device):
        return torch.float16
    return torch.float32


def resolve_dtype(dtype: str, load_device: torch.device) -> torch.dtype:
    """The widget's dtype (`mindedit_core.mllm.dtypes`); ``auto`` -> ComfyUI's choice for the compute
    device. The model is created on the offload device (CPU) but runs on the load device, so the
    choice follows the load device, not where the weights are first created."""
    return resolve_dtype_name(dtype, load_device, auto=comfy_auto_dtype)


def _first_device(modules: dict[str, torch.nn.Module], default: torch.device) -> torch.device:
    return next((p.device for m in modules.values() for p in m.parameters()), default)


def wrap_mllm(
    mllm: object,
    modules: dict[str, torch.nn.Module],
    *,
    description: str,
    quantization: str | None,
    reload: Callable[[], object] | None = None,
) -> MLLMHandle:
    """A handle whose patcher owns ``modules`` (the MLLM and its vision head).

    ``reload``: a no-argument callable returning the same MLLM freshly loaded (its modules from
    ``torch_modules()``); given it, the weights leave memory when ComfyUI unloads the MLLM on a
    device with nowhere to offload to (see the module docstring).
    """
    load_device, offload_device = mllm_device_plan(quantization)
    holder = MLLMModuleHolder(modules, _first_device(modules, offload_device))
    patcher = comfy.model_patcher.ModelPatcher(holder, load_device=load_device, offload_device=offload_device)
    handle = MLLMHandle(mllm=mllm, patcher=patcher, description=description, reload=reload)
    if reload is not None and CallbacksMP is not None:
        handle_ref = weakref.ref(handle)  # the patcher must not keep the handle alive

        def on_detach(detached: comfy.model_patcher.ModelPatcher, unpatch_all: bool) -> None:
            owner = handle_ref()
            if owner is not None and unpatch_all and detached.offload_device == detached.load_device:
                release_weights(owner)

        patcher.add_callback(CallbacksMP.ON_DETACH, on_detach)
    return handle


def release_weights(handle: MLLMHandle) -> None:
    """Drop every reference the handle (and its patcher) holds to the MLLM's modules, so their
    memory is freed; ``load_for_use`` reloads them."""
    if handle.released or handle.reload is None:
        return
    has_head = bool(getattr(handle.mllm, "has_head", True))
    handle.patcher.model.parts = torch.nn.ModuleDict()
    handle.mllm = ReleasedMLLM(has_head, handle.description)
    handle.released = True
    LOG.info(
        "MIND-Edit: released the MLLM's weights (%s): unloaded on %s, which has nowhere to offload "
        "them; the next run reloads them from disk.",
        handle.description,
        handle.patcher.load_device,
    )


def _reload_weights(handle: MLLMHandle) -> None:
    assert handle.reload is not None
    LOG.info("MIND-Edit: reloading the released MLLM (%s) from disk.", handle.description)
    fresh = handle.reload()
    modules = fresh.torch_modules()
    holder = handle.patcher.model
    holder.parts = torch.nn.ModuleDict(modules)
    holder.device = _first_device(modules, handle.patcher.offload_device)
    handle.mllm = fresh
    handle.released = False


def load_for_use(handle: MLLMHandle) -> torch.device:
    """Ask ComfyUI to put the MLLM on its compute device now (freeing others if needed), reloading
    its weights first if an unload released them."""
    if handle.released:
        _reload_weights(handle)
    comfy.model_management.load_models_gpu([handle.patcher], force_full_load=True)
    return handle.patcher.load_device


def is_loaded(handle: MLLMHandle) -> bool:
    """True while ComfyUI's memory manager counts this MLLM as loaded."""
    return any(m is handle.patcher for m in comfy.model_management.loaded_models())
