"""Every node of the pack, and the model folders they read.

ComfyUI imports the pack (the repo root's ``__init__.py``) under a name taken from its folder, and
has its own top-level ``nodes`` module: everything here imports relatively. Importing registers the
model folders with ``folder_paths`` (bookkeeping only) and loads no model.
"""

from __future__ import annotations

from .model_folders import register_model_folders

register_model_folders()

from . import canvas_nodes, ipadapter_nodes, mask_nodes, refine, remote_vlm  # noqa: E402
from .mllm_loader import MindEditMLLMLoader  # noqa: E402
from .node_spec import mappings  # noqa: E402

# Every node is declared as data (nodes/node_spec.py): it carries its own id and display name.
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = mappings([MindEditMLLMLoader])
for _module in (refine, remote_vlm, mask_nodes, canvas_nodes):
    _classes, _names = mappings(_module.NODE_CLASSES)
    NODE_CLASS_MAPPINGS.update(_classes)
    NODE_DISPLAY_NAME_MAPPINGS.update(_names)

# The IP-Adapter node family (nodes/ipadapter_nodes.py) is merged in: the pack exposes one mapping.
NODE_CLASS_MAPPINGS.update(ipadapter_nodes.NODE_CLASS_MAPPINGS)
NODE_DISPLAY_NAME_MAPPINGS.update(ipadapter_nodes.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
