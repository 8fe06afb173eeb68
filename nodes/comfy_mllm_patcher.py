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
their patcher's offload device is the GPU too (they count as loaded; ``/free`` with
``free_memory`` drops ComfyUI's caches, which releases them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import comfy.model_management
import comfy.model_patcher
import torch

from ..mindedit_core.mllm.dtypes import resolve_dtype as resolve_dtype_name


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
    """

    mllm: object
    patcher: comfy.model_patcher.ModelPatcher
    description: str
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)


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


def wrap_mllm(
    mllm: object, modules: dict[str, torch.nn.Module], *, description: str, quantization: str | None
) -> MLLMHandle:
    """A handle whose patcher owns ``modules`` (the MLLM and its vision head)."""
    load_device, offload_device = mllm_device_plan(quantization)
    current = next((p.device for m in modules.values() for p in m.parameters()), offload_device)
    holder = MLLMModuleHolder(modules, current)
    patcher = comfy.model_patcher.ModelPatcher(holder, load_device=load_device, offload_device=offload_device)
    return MLLMHandle(mllm=mllm, patcher=patcher, description=description)


def load_for_use(handle: MLLMHandle) -> torch.device:
    """Ask ComfyUI to put the MLLM on its compute device now (freeing others if needed)."""
    comfy.model_management.load_models_gpu([handle.patcher], force_full_load=True)
    return handle.patcher.load_device


def is_loaded(handle: MLLMHandle) -> bool:
    """True while ComfyUI's memory manager counts this MLLM as loaded."""
    return any(m is handle.patcher for m in comfy.model_management.loaded_models())
