"""IP-Adapter nodes: load an SD1.5 or SDXL (ViT-H) IP-Adapter file, and apply it to a MODEL with `EMBEDS`.

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
from ..mindedit_core.widget_checks import require_finite
from .model_folders import IPADAPTER_FOLDER
from .node_spec import Input, NodeSpec, Output, declare, mappings

CATEGORY = "MIND-Edit/IP-Adapter"
IPADAPTER_TYPE = "MINDEDIT_IPADAPTER"
EMBEDS_TYPE = "EMBEDS"
NODE_NAME = "MIND-Edit Apply IP-Adapter"


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


@declare(
    NodeSpec(
        node_id="MindEditIPAdapterLoader",
        display_name="MIND-Edit IP-Adapter Loader",
        category=CATEGORY,
        description=(
            "Loads an IP-Adapter for the ViT-H image encoder (SD1.5 or SDXL; plain or plus) in any released layout."
        ),
        function="load",
        inputs=(
            Input(
                "ipadapter_file",
                _adapter_files,
                "An IP-Adapter for the ViT-H encoder in ComfyUI/models/ipadapter, of the checkpoint's family. "
                "SD1.5: ip-adapter_sd15 (plain, takes [B,1024] embeds) or ip-adapter-plus_sd15 (plus, takes "
                "[B,257,1280]). SDXL: ip-adapter_sdxl_vit-h (plain) or ip-adapter-plus(-face)_sdxl_vit-h (plus); "
                "not ip-adapter_sdxl (made for ViT-bigG). Must match the kind of the MIND-Edit vision head.",
            ),
        ),
        outputs=(
            Output(
                "ipadapter",
                IPADAPTER_TYPE,
                "The loaded adapter (image projection + per-layer key/value projections).",
            ),
        ),
    )
)
class MindEditIPAdapterLoader:
    """Load an SD1.5 or SDXL ViT-H IP-Adapter file (plain or plus; .bin or .safetensors) from models/ipadapter."""

    def load(self, ipadapter_file: str):
        path = folder_paths.get_full_path_or_raise(IPADAPTER_FOLDER, ipadapter_file)
        return (load_ipadapter(path),)


@declare(
    NodeSpec(
        node_id="MindEditApplyIPAdapter",
        display_name="MIND-Edit Apply IP-Adapter (EMBEDS)",
        category=CATEGORY,
        description=(
            "Applies an IP-Adapter with EMBEDS (e.g. MIND-Edit's v_insight) on every cross-attention layer of "
            "the model (16 in SD1.5, 70 in SDXL), composing with other attention patches."
        ),
        function="apply",
        inputs=(
            Input(
                "model",
                "MODEL",
                "The model to steer: any SD1.5 or SDXL checkpoint, of the same family as the IP-Adapter.",
            ),
            Input("ipadapter", IPADAPTER_TYPE, "From MIND-Edit IP-Adapter Loader."),
            Input(
                "pos_embed",
                EMBEDS_TYPE,
                "v_insight from MIND-Edit (or any CLIP-vision-shaped EMBEDS, e.g. from IPAdapter_plus): "
                "[B,1024] for plain adapters, [B,257,1280] for plus.",
            ),
            Input(
                "weight",
                "FLOAT",
                "Strength of the image guidance; 0 leaves the model unchanged, negative pushes away from it.",
                options={"default": 1.0, "min": -1.0, "max": 3.0, "step": 0.05},
            ),
            Input(
                "start_at",
                "FLOAT",
                "Fraction of the sampling schedule where the guidance starts (0 = first step).",
                options={"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01},
            ),
            Input(
                "end_at",
                "FLOAT",
                "Fraction of the schedule where it stops (1 = last step). Must be >= start_at.",
                options={"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01},
            ),
            Input(
                "batch_mapping",
                list(BATCH_MAPPINGS),
                "all: every latent sees every embedding in the batch. per_latent: embedding i guides "
                "latent i (the last embedding repeats if there are fewer).",
                options={"default": "all"},
            ),
            Input(
                "neg_embed",
                EMBEDS_TYPE,
                "Embedding for the unconditional (negative) pass, same shape as pos_embed. Unconnected: "
                "zeros, what plain adapters were trained with. Plus adapters were trained with the image "
                "encoder's output for a blank image: connect MIND-Edit's neg_embeds output (a checkpoint's "
                "stored blank-image embedding, where it has one) or IPAdapter_plus' negative.",
                optional=True,
            ),
            Input(
                "attn_mask",
                "MASK",
                "Where the guidance applies (1) or not (0). Any size: resized to each attention resolution.",
                optional=True,
            ),
        ),
        outputs=(Output("MODEL", "MODEL", "A patched copy of the model; the input model is unchanged."),),
    )
)
class MindEditApplyIPAdapter:
    """Patch a MODEL so its cross-attention also attends to image tokens made from EMBEDS."""

    @classmethod
    def VALIDATE_INPUTS(cls, weight=None, start_at=None, end_at=None):
        """Queue-time: every FLOAT is a finite number in range (ComfyUI leaves NaN, and the min/max of
        the inputs named here, to us), and the schedule window is not empty."""
        for name, value in (("weight", weight), ("start_at", start_at), ("end_at", end_at)):
            problem = cls.SPEC.range_problem(name, value)
            if problem:
                return f"{NODE_NAME}: {problem}"
        if start_at is not None and end_at is not None and start_at > end_at:
            return (
                f"{NODE_NAME}: start_at ({start_at}) is after end_at ({end_at}): the guidance "
                "would never run. Set start_at <= end_at (0 and 1 = the whole schedule)."
            )
        return True

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
        checked = {
            name: require_finite(name, value, where=f"{NODE_NAME}: ")
            for name, value in (("weight", weight), ("start_at", start_at), ("end_at", end_at))
        }
        patched = apply_ipadapter(
            model,
            ipadapter,
            pos_embed,
            neg_embed,
            **checked,
            attn_mask=attn_mask,
            batch_mapping=batch_mapping,
            attention_fn=comfy_attention,
        )
        return (patched,)


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = mappings([MindEditIPAdapterLoader, MindEditApplyIPAdapter])
