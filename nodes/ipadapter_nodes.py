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

from ..mindedit_core.ipadapter import IPAdapter, apply_ipadapter, load_ipadapter
from ..mindedit_core.node_specs import APPLY_IPADAPTER, IPADAPTER_LOADER
from ..mindedit_core.widget_checks import require_finite
from .model_folders import IPADAPTER_FOLDER
from .node_spec import implements, mappings

NODE_NAME = "MIND-Edit Apply IP-Adapter"


def comfy_attention(q, k, v, heads, extra_options=None):
    """ComfyUI's own attention (same kernel and options as the unpatched layer): weight 0 is exact."""
    from comfy.ldm.modules import attention as comfy_attention_module

    extra = extra_options or {}
    return comfy_attention_module.optimized_attention(
        q, k, v, heads, attn_precision=extra.get("attn_precision"), transformer_options=extra
    )


@implements(IPADAPTER_LOADER)
class MindEditIPAdapterLoader:
    """Load an SD1.5 or SDXL ViT-H IP-Adapter file (plain or plus; .bin or .safetensors) from models/ipadapter."""

    def load(self, ipadapter_file: str):
        path = folder_paths.get_full_path_or_raise(IPADAPTER_FOLDER, ipadapter_file)
        return (load_ipadapter(path),)


@implements(APPLY_IPADAPTER)
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


NODE_CLASSES = [MindEditIPAdapterLoader, MindEditApplyIPAdapter]
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = mappings(NODE_CLASSES)  # this family's V1 classes
