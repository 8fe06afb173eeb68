"""IP-Adapter nodes: load an SD1.5 IP-Adapter file, and apply it to a MODEL with `EMBEDS`.

All logic lives in ``mindedit_core.ipadapter``. The adapter file list is ComfyUI's ``models/ipadapter``
folder (`model_folders.IPADAPTER_FOLDER`, registered when ``nodes/__init__.py`` is imported; the folder
ComfyUI_IPAdapter_plus uses).

``EMBEDS`` interop (read in cubiq/ComfyUI_IPAdapter_plus, IPAdapterPlus.py, Feb 2025): its
``IPAdapterEmbeds`` node takes ``pos_embed: ("EMBEDS",)`` and optional ``neg_embed: ("EMBEDS",)``, plain
tensors used as the CLIP-vision output: ``image_embeds`` ``[B,1024]`` for plain adapters,
``penultimate_hidden_states`` ``[B,257,1280]`` for plus. Without ``neg_embed`` it needs a CLIP-vision
model (plus: it encodes a black 224 px image; plain: zeros), else it fails with "Missing CLIPVision
model.", so MIND-Edit should hand it both tensors. Our apply node takes the same type and layout, so
``v_insight`` works with either pack and IPAdapter_plus' embeds work here.
"""

from __future__ import annotations

import folder_paths

from ..mindedit_core.ipadapter import BATCH_MAPPINGS, IPAdapter, apply_ipadapter, load_ipadapter
from .model_folders import IPADAPTER_FOLDER

CATEGORY = "MIND-Edit/IP-Adapter"
IPADAPTER_TYPE = "MINDEDIT_IPADAPTER"
EMBEDS_TYPE = "EMBEDS"


def _adapter_files() -> list[str]:
    try:
        return folder_paths.get_filename_list(IPADAPTER_FOLDER)
    except KeyError:  # folder not registered (module imported outside the pack's __init__)
        return []


def comfy_attention(q, k, v, heads, extra_options=None):
    """ComfyUI's own attention (same kernel and options as the unpatched layer): weight 0 is exact."""
    from comfy.ldm.modules import attention as comfy_attention_module

    extra = extra_options or {}
    return comfy_attention_module.optimized_attention(
        q, k, v, heads, attn_precision=extra.get("attn_precision"), transformer_options=extra
    )


class MindEditIPAdapterLoader:
    """Load an SD1.5 IP-Adapter file (plain or plus; .bin or .safetensors) from models/ipadapter."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "ipadapter_file": (
                    _adapter_files(),
                    {
                        "tooltip": "An SD1.5 IP-Adapter in ComfyUI/models/ipadapter: ip-adapter_sd15 (plain, "
                        "takes [B,1024] embeds) or ip-adapter-plus_sd15 (plus, takes [B,257,1280]). Must match "
                        "the kind of the MIND-Edit vision head."
                    },
                ),
            }
        }

    RETURN_TYPES = (IPADAPTER_TYPE,)
    RETURN_NAMES = ("ipadapter",)
    OUTPUT_TOOLTIPS = ("The loaded adapter (image projection + per-layer key/value projections).",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads an SD1.5 IP-Adapter (plain or plus) in any released layout."

    def load(self, ipadapter_file: str):
        path = folder_paths.get_full_path_or_raise(IPADAPTER_FOLDER, ipadapter_file)
        return (load_ipadapter(path),)


class MindEditApplyIPAdapter:
    """Patch a MODEL so its cross-attention also attends to image tokens made from EMBEDS."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The SD1.5 model to steer (any SD1.5 checkpoint)."}),
                "ipadapter": (IPADAPTER_TYPE, {"tooltip": "From MIND-Edit IP-Adapter Loader."}),
                "pos_embed": (
                    EMBEDS_TYPE,
                    {
                        "tooltip": "v_insight from MIND-Edit (or any CLIP-vision-shaped EMBEDS, e.g. from "
                        "IPAdapter_plus): [B,1024] for plain adapters, [B,257,1280] for plus."
                    },
                ),
                "weight": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": -1.0,
                        "max": 3.0,
                        "step": 0.05,
                        "tooltip": "Strength of the image guidance; 0 leaves the model unchanged, negative "
                        "pushes away from it.",
                    },
                ),
                "start_at": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "Fraction of the sampling schedule where the guidance starts (0 = first step).",
                    },
                ),
                "end_at": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "Fraction of the schedule where it stops (1 = last step). Must be >= start_at.",
                    },
                ),
                "batch_mapping": (
                    list(BATCH_MAPPINGS),
                    {
                        "default": "all",
                        "tooltip": "all: every latent sees every embedding in the batch. per_latent: "
                        "embedding i guides latent i (the last embedding repeats if there are fewer).",
                    },
                ),
            },
            "optional": {
                "neg_embed": (
                    EMBEDS_TYPE,
                    {
                        "tooltip": "Embedding for the unconditional (negative) pass, same shape as pos_embed. "
                        "Unconnected: zeros, what plain adapters were trained with. Plus adapters were trained "
                        "with the image encoder's output for a blank image: connect MIND-Edit's neg_embeds "
                        "output (a checkpoint's stored blank-image embedding, where it has one) or "
                        "IPAdapter_plus' negative."
                    },
                ),
                "attn_mask": (
                    "MASK",
                    {
                        "tooltip": "Where the guidance applies (1) or not (0). Any size: resized to each "
                        "attention resolution."
                    },
                ),
            },
        }

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is unchanged.",)
    FUNCTION = "apply"
    CATEGORY = CATEGORY
    DESCRIPTION = (
        "Applies an SD1.5 IP-Adapter with EMBEDS (e.g. MIND-Edit's v_insight) on all 16 cross-attention "
        "layers, composing with other attention patches."
    )

    def apply(
        self,
        model,
        ipadapter: IPAdapter,
        pos_embed,
        weight: float,
        start_at: float,
        end_at: float,
        batch_mapping: str,
        neg_embed=None,
        attn_mask=None,
    ):
        patched = apply_ipadapter(
            model,
            ipadapter,
            pos_embed,
            neg_embed,
            weight=weight,
            start_at=start_at,
            end_at=end_at,
            attn_mask=attn_mask,
            batch_mapping=batch_mapping,
            attention_fn=comfy_attention,
        )
        return (patched,)


NODE_CLASS_MAPPINGS = {
    "MindEditIPAdapterLoader": MindEditIPAdapterLoader,
    "MindEditApplyIPAdapter": MindEditApplyIPAdapter,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "MindEditIPAdapterLoader": "MIND-Edit IP-Adapter Loader",
    "MindEditApplyIPAdapter": "MIND-Edit Apply IP-Adapter (EMBEDS)",
}
