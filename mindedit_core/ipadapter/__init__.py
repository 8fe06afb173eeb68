"""IP-Adapter for SD1.5 and SDXL: load adapter files, the decoupled-attention math, and the ComfyUI patch.

No ComfyUI or diffusers import anywhere in this package: `comfy_contract` types the ComfyUI MODEL it
patches, and `diffusers_processor` works on the caller's diffusers UNet.
"""

from .attention import BATCH_MAPPINGS, decoupled_attention, mask_for_tokens, sdpa_attention
from .comfy_contract import ComfyModelPatcher
from .comfy_patch import IPAdapterModelMismatch, MindEditAttn2Patch, apply_ipadapter, sites_for_model
from .sites import SD15_SITES, SD15_WIDTHS, SDXL_SITES, SDXL_WIDTHS, SITES_BY_FAMILY, Site, sites_in_unet
from .weights import (
    AdapterInfo,
    IPAdapter,
    IPAdapterFileError,
    build_ipadapter,
    load_ipadapter,
    read_adapter_file,
)

__all__ = [
    "BATCH_MAPPINGS",
    "SD15_SITES",
    "SD15_WIDTHS",
    "SDXL_SITES",
    "SDXL_WIDTHS",
    "SITES_BY_FAMILY",
    "AdapterInfo",
    "ComfyModelPatcher",
    "IPAdapter",
    "IPAdapterFileError",
    "IPAdapterModelMismatch",
    "MindEditAttn2Patch",
    "Site",
    "apply_ipadapter",
    "build_ipadapter",
    "decoupled_attention",
    "load_ipadapter",
    "mask_for_tokens",
    "read_adapter_file",
    "sdpa_attention",
    "sites_for_model",
    "sites_in_unet",
]
