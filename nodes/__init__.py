"""Every node of the pack, and how ComfyUI gets them.

The declarations live in ``mindedit_core/node_specs.py``; each module here holds the implementation
classes (``@implements(spec)``) of one area. `NODE_CLASSES` lists them all, in `NODE_SPECS` order
(a test checks the two agree). ComfyUI imports the pack (the repo root's ``__init__.py``) under a
name taken from its folder, and has its own top-level ``nodes`` module: everything here imports
relatively. Importing registers nothing and loads no model: `register_model_folders` runs from the
V3 extension's ``on_load`` (or, on a ComfyUI without the V3 API, from `v1_mappings`).
"""

from __future__ import annotations

from . import canvas_nodes, ipadapter_nodes, mask_nodes, refine, remote_vlm
from .mllm_loader import MindEditMLLMLoader
from .model_folders import register_model_folders
from .node_spec import mappings

NODE_CLASSES: list[type] = [
    MindEditMLLMLoader,
    *refine.NODE_CLASSES,
    *remote_vlm.NODE_CLASSES,
    *mask_nodes.NODE_CLASSES,
    *canvas_nodes.NODE_CLASSES,
    *ipadapter_nodes.NODE_CLASSES,
]

# The V1 classes by node ID (what ComfyUI runs without comfy_api.latest; the tests call them directly).
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = mappings(NODE_CLASSES)


def v1_mappings() -> tuple[dict[str, type], dict[str, str]]:
    """The classic entry: register the folders now (V1 has no load hook) and return the mappings."""
    register_model_folders()
    return dict(NODE_CLASS_MAPPINGS), dict(NODE_DISPLAY_NAME_MAPPINGS)


def v3_extension():
    """The V3 entry (``comfy_entrypoint``): a ``ComfyExtension`` listing generated ``io.ComfyNode``s."""
    from .v3 import MindEditExtension

    return MindEditExtension(NODE_CLASSES, register_model_folders)


__all__ = ["NODE_CLASSES", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "v1_mappings", "v3_extension"]
