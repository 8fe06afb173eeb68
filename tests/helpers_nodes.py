"""Import the pack in-process the way ComfyUI does, for unit tests of the node classes.

ComfyUI's own modules (``comfy``, ``folder_paths``) come from the ComfyUI tree the runtime uses;
the tree goes at the END of ``sys.path`` so our repo's packages win, and the pack is imported under
a folder-like module name so its relative imports resolve exactly as inside ComfyUI (whose own
top-level ``nodes`` module would otherwise clash with ours).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_MODULE = "ComfyUI_MIND_Edit_inprocess"


def comfy_tree() -> Path:
    from devkit.comfyui_runtime import comfyui_root

    return comfyui_root()


def import_comfy() -> ModuleType:
    """Make ComfyUI's modules importable on the CPU; returns ``folder_paths``."""
    tree = str(comfy_tree())
    if tree not in sys.path:
        sys.path.append(tree)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import folder_paths

    return folder_paths


def import_pack() -> ModuleType:
    """The pack's root package (``__init__.py``), imported once under `PACK_MODULE`."""
    if PACK_MODULE in sys.modules:
        return sys.modules[PACK_MODULE]
    import_comfy()
    spec = importlib.util.spec_from_file_location(
        PACK_MODULE, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = module
    spec.loader.exec_module(module)
    return module


def pack_module(name: str) -> ModuleType:
    """A submodule of the in-process pack, e.g. ``pack_module("nodes.refine")``."""
    import_pack()
    return importlib.import_module(f"{PACK_MODULE}.{name}")


def comfy_load_image(pil_image):
    """``(IMAGE, MASK)`` as ComfyUI's Load Image makes them from a PIL image: ``convert("RGB")`` (alpha
    dropped, 16-bit values clipped to 8 bits), and ``1 - alpha`` as the mask (64x64 zeros without alpha)."""
    import numpy as np
    import torch

    rgb = np.asarray(pil_image.convert("RGB")).astype(np.float32) / 255.0
    image = torch.from_numpy(rgb)[None]
    if "A" in pil_image.getbands():
        alpha = np.asarray(pil_image.getchannel("A")).astype(np.float32) / 255.0
        mask = 1.0 - torch.from_numpy(alpha)[None]
    else:
        mask = torch.zeros((1, 64, 64))
    return image, mask
