"""ComfyUI-MIND-Edit: ComfyUI's entry point for the pack (classic V1 node API).

Tested on ComfyUI 0.3.75. Importing this inside ComfyUI registers the model folders
(``models/LLM``, ``models/mindedit``, ``models/ipadapter``) and the node classes; no model is loaded
until a node runs. Example workflows are in ``workflows/`` (ComfyUI's template browser lists them).

Outside ComfyUI (``folder_paths`` not importable) there is nothing to register: pytest imports this
file as the repo root's package before running any test, and that must not fail.
"""

import importlib.util

if importlib.util.find_spec("folder_paths") is None:
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
