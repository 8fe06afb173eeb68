"""Node: load a supported VLM (any family of `mindedit_core.mllm.families`) + optional MIND-Edit checkpoint.

The model lives under ComfyUI's memory manager.

Loading happens when the node executes, never at import; ComfyUI caches the output while the
widgets are unchanged, so the model is loaded once per session and re-used by every run. A known
VLM picked in the dropdown but not on disk is downloaded first (``model_folders.resolve_llm_folder``:
into models/LLM/<name>, on ComfyUI's progress bar, Cancel honoured, resumable).
"""

from __future__ import annotations

import functools
import logging

from ..mindedit_core.mllm.quantization import check_quantization
from ..mindedit_core.node_specs import MLLM_LOADER
from . import model_folders
from .comfy_mllm_patcher import MLLMHandle, mllm_device_plan, resolve_dtype, wrap_mllm
from .node_spec import implements

LOG = logging.getLogger("MIND-Edit")


@implements(MLLM_LOADER)
class MindEditMLLMLoader:
    """Load the MLLM that refines instructions and predicts v_insight."""

    def load(
        self, model_folder: str, mindedit_checkpoint: str, dtype: str, quantization: str, attention: str
    ) -> tuple[MLLMHandle]:
        from ..mindedit_core.mllm import load_mllm

        # A known model that is not on disk yet is fetched now, on ComfyUI's progress bar.
        progress = model_folders.comfy_download_progress()
        model_dir = model_folders.resolve_llm_folder(model_folder, progress)
        checkpoint_dir = model_folders.resolve_checkpoint_folder(mindedit_checkpoint, progress)
        load_device, offload_device = mllm_device_plan(quantization if quantization != "none" else None)
        quant = check_quantization(quantization, load_device)
        torch_dtype = resolve_dtype(dtype, load_device)
        LOG.info(
            "MIND-Edit: loading %s (checkpoint: %s, %s, quantization %s) on %s, offload to %s",
            model_dir,
            checkpoint_dir or "none",
            torch_dtype,
            quantization,
            load_device,
            offload_device,
        )
        load = functools.partial(
            load_mllm,
            model_dir,
            dtype=torch_dtype,
            device=load_device if quant else offload_device,
            attn_implementation=attention,
            quantization=quant,
            checkpoint_dir=checkpoint_dir,
        )
        mllm = load()
        description = f"{model_folder} + {mindedit_checkpoint}"
        # `reload`: on a device with nowhere to offload to, unloading releases the weights (the
        # next run reloads them with the same recipe).
        handle = wrap_mllm(
            mllm, mllm.torch_modules(), description=description, quantization=quant, reload=load
        )
        return (handle,)
