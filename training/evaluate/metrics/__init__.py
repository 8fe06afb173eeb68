"""The method's four metrics (CLIP-I, LPIPS, PSNR, SSIM) in plain torch, with no torchvision.

Every metric takes images from `load_metric_image` (RGB, [0, 1], a recorded square resolution), so
all scores in one report share the same conventions (listed in `conventions()`).
"""

from .clip_image import DEFAULT_CLIP_MODEL, ClipImageScorer, ClipPreprocess
from .images import DEFAULT_RESOLUTION, load_metric_image, load_metric_mask, pil_to_tensor
from .lpips_net import LPIPS, LPIPSWeightsError, load_lpips
from .psnr import psnr
from .ssim import ssim, ssim_map

METRIC_NAMES: tuple[str, ...] = ("clip_i", "lpips", "psnr", "ssim")
HIGHER_IS_BETTER: dict[str, bool] = {"clip_i": True, "lpips": False, "psnr": True, "ssim": True}
DISPLAY_NAMES: dict[str, str] = {
    "clip_i": "CLIP-I",
    "lpips": "LPIPS",
    "psnr": "PSNR",
    "ssim": "SSIM",
    # masked variants (score --masked): inside the edit mask / outside it (preservation)
    "psnr_edit": "PSNR (edit region)",
    "ssim_edit": "SSIM (edit region)",
    "psnr_keep": "PSNR (outside mask)",
    "ssim_keep": "SSIM (outside mask)",
}
