"""Node: load a supported VLM (any family of `mindedit_core.mllm.families`) + optional MIND-Edit checkpoint.

The model lives under ComfyUI's memory manager.

Loading happens when the node executes, never at import; ComfyUI caches the output while the
widgets are unchanged, so the model is loaded once per session and re-used by every run.
"""

from __future__ import annotations

import functools
import logging

from ..mindedit_core.mllm.dtypes import DTYPE_NAMES
from ..mindedit_core.mllm.families import FAMILIES, family_names
from ..mindedit_core.mllm.quantization import QUANTIZATIONS as QUANTIZATION_NAMES
from ..mindedit_core.mllm.quantization import check_quantization
from . import model_folders
from .comfy_mllm_patcher import MLLMHandle, mllm_device_plan, resolve_dtype, wrap_mllm
from .node_spec import Input, NodeSpec, Output, declare

LOG = logging.getLogger("MIND-Edit")

CATEGORY = "MIND-Edit"
MLLM_TYPE = "MINDEDIT_MLLM"

DTYPES = list(DTYPE_NAMES)
QUANTIZATIONS = list(QUANTIZATION_NAMES)
ATTENTIONS = ["sdpa", "eager", "flash_attention_2"]
# One example folder name per supported family (from the family table).
EXAMPLE_FOLDERS = ", ".join(f.example_repo.split("/")[-1] for f in FAMILIES.values())


@declare(
    NodeSpec(
        node_id="MindEditMLLMLoader",
        display_name="MIND-Edit MLLM Loader",
        category=CATEGORY,
        description=(
            f"Loads a vision-language model folder ({family_names()}) from models/LLM and, optionally,"
            " a MIND-Edit checkpoint (LoRA + vision head) from models/mindedit. ComfyUI's "
            "memory manager moves it to the GPU when used and offloads it when the diffusion model needs "
            "room ('Unload models' frees it)."
        ),
        function="load",
        inputs=(
            Input(
                "model_folder",
                model_folders.llm_choices,
                f"A vision-language model folder in Hugging Face layout under models/LLM: {family_names()} "
                f"(e.g. {EXAMPLE_FOLDERS}). It must match the base model the MIND-Edit checkpoint was "
                "trained on (same family and size).",
            ),
            Input(
                "mindedit_checkpoint",
                model_folders.checkpoint_choices,
                "A MIND-Edit checkpoint folder under models/mindedit (mindedit.json, vision_head.safetensors, "
                "optional lora/). 'none' loads the base model only: it can refine prompts but has no vision "
                "head, so it cannot produce v_insight embeds.",
            ),
            Input(
                "dtype",
                DTYPES,
                "Weight precision. 'auto' picks what ComfyUI picks for the device: bfloat16 if supported, "
                "else float16, float32 on the CPU.",
                options={"default": "auto"},
            ),
            Input(
                "quantization",
                QUANTIZATIONS,
                "bitsandbytes 8-bit or 4-bit (nf4) weights to save VRAM (7B: ~15 GiB bf16, ~6 GiB 4-bit). "
                "Needs a CUDA GPU and the bitsandbytes package; quantized weights stay on the GPU.",
                options={"default": "none"},
            ),
            Input(
                "attention",
                ATTENTIONS,
                "Attention implementation: sdpa (PyTorch, works everywhere), eager (slowest, most "
                "compatible), flash_attention_2 (needs the flash-attn package).",
                options={"default": "sdpa"},
            ),
        ),
        outputs=(
            Output("mllm", MLLM_TYPE, "The loaded MLLM; connect it to the MIND-Edit refine / embed nodes."),
        ),
    )
)
class MindEditMLLMLoader:
    """Load the MLLM that refines instructions and predicts v_insight."""

    def load(
        self, model_folder: str, mindedit_checkpoint: str, dtype: str, quantization: str, attention: str
    ) -> tuple[MLLMHandle]:
        from ..mindedit_core.mllm import load_mllm

        model_dir = model_folders.resolve_llm_folder(model_folder)
        checkpoint_dir = model_folders.resolve_checkpoint_folder(mindedit_checkpoint)
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
