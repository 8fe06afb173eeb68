"""ComfyUI-MIND-Edit: ComfyUI's entry point for the pack.

On a ComfyUI with the V3 node API (``comfy_api.latest``, 0.3.48 and later; tested on 0.3.75 and
0.33.0) the pack is a ``ComfyExtension`` (`comfy_entrypoint`) whose ``io.ComfyNode`` classes are
generated from the declarations in ``mindedit_core/node_specs.py``. Without it, the same nodes load
as classic V1 classes through ``NODE_CLASS_MAPPINGS`` (same node IDs, widgets, order, defaults).
ComfyUI loads only V1 from a module that defines both, so exactly one is defined here.

The model folders (``models/LLM``, ``models/mindedit``, ``models/ipadapter``) are registered when the
pack loads; no model is loaded until a node runs. ComfyUI-Manager finds the node IDs in
``node_list.json`` (generated from the declarations). Example workflows are in ``workflows/``.

Outside ComfyUI (``folder_paths`` not importable) there is nothing to register: pytest imports this
file as the repo root's package before running any test, and that must not fail.
"""

import importlib.util


def _has_v3_api() -> bool:
    try:
        return importlib.util.find_spec("comfy_api.latest") is not None
    except (ImportError, ValueError):  # comfy_api missing, or hidden (sys.modules entry None)
        return False


if importlib.util.find_spec("folder_paths") is None:
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}
    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
elif _has_v3_api():
    from .nodes import v3_extension

    async def comfy_entrypoint():
        return v3_extension()

    __all__ = ["comfy_entrypoint"]
else:
    from .nodes import v1_mappings

    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = v1_mappings()
    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
