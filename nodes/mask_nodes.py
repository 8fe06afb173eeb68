"""Nodes: pick the edit mask (painted, alpha or red channel) and gather every status line in one.

The logic is `mindedit_core.masks`; these nodes translate ComfyUI types and put the result on a
STRING output the shipped workflows preview.
"""

from __future__ import annotations

from ..mindedit_core.masks import ALPHA, PAINTED, RED, choose_edit_mask, red_channel
from ..mindedit_core.source_checks import check_source_size
from .node_spec import Input, NodeSpec, Output, declare

CATEGORY = "MIND-Edit"
STATUS_INPUTS = ("mllm_status", "mask_status", "image_status")


@declare(
    NodeSpec(
        node_id="MindEditEditRegion",
        display_name="MIND-Edit Edit Region (mask)",
        category=CATEGORY,
        description=(
            "Finds the edit mask: painted on the source in the MaskEditor, else a mask image's alpha "
            "(transparent = edit), else its red channel (white = edit). Resizes it to the image and "
            "reports where it came from and how much of the image it covers. No mask (or an empty "
            "one) means a mask-free edit of the whole image, said on the status."
        ),
        function="choose",
        inputs=(
            Input("image", "IMAGE", "The source image (its size is the mask's size)."),
            Input(
                "painted_mask",
                "MASK",
                "The source Load Image's MASK output: what you painted in the MaskEditor (right click "
                "> Open in MaskEditor). Empty when nothing is painted.",
                optional=True,
            ),
            Input(
                "mask_image",
                "IMAGE",
                "The IMAGE output of a mask file's Load Image: its red channel is read (white = edit).",
                optional=True,
            ),
            Input(
                "mask_alpha",
                "MASK",
                "The MASK output of the same mask file's Load Image: its alpha channel (transparent = "
                "edit, ComfyUI's convention).",
                optional=True,
            ),
        ),
        outputs=(
            Output(
                "mllm_mask",
                "MASK",
                "The chosen mask at the image's size (all zeros when none: the MLLM then does a "
                "mask-free refinement). Connect to the MIND-Edit node's mask.",
            ),
            Output(
                "edit_mask",
                "MASK",
                "Where the sampler may change pixels: the chosen mask, or the whole image when there is "
                "none. Connect to Grow Mask / Set Latent Noise Mask / the paste.",
            ),
            Output("status", "STRING", "Where the mask came from and its coverage, or 'mask-free'."),
        ),
    )
)
class MindEditEditRegion:
    def choose(self, image, painted_mask=None, mask_image=None, mask_alpha=None):
        check_source_size(image, where="MIND-Edit Edit Region")
        candidates = [
            (PAINTED, painted_mask),
            (ALPHA, mask_alpha),
            (RED, red_channel(mask_image) if mask_image is not None else None),
        ]
        chosen = choose_edit_mask(int(image.shape[1]), int(image.shape[2]), candidates)
        return (chosen.mask, chosen.region, chosen.status)


@declare(
    NodeSpec(
        node_id="MindEditStatus",
        display_name="MIND-Edit Status",
        category=CATEGORY,
        description=(
            "Joins the status lines of the MIND-Edit nodes (MLLM, mask, image size) into one text, one "
            "line each, for a single 'Preview as Text'."
        ),
        function="join",
        inputs=tuple(
            Input(name, "STRING", tip, optional=True, options={"forceInput": True})
            for name, tip in zip(
                STATUS_INPUTS,
                (
                    "The status output of the MIND-Edit refine node.",
                    "The status output of 'MIND-Edit Edit Region'.",
                    "The status output of 'MIND-Edit Paste Edit'.",
                ),
            )
        ),
        outputs=(Output("status", "STRING", "Every connected status line, one per line."),),
    )
)
class MindEditStatus:
    def join(self, mllm_status=None, mask_status=None, image_status=None):
        lines = [s.strip() for s in (mllm_status, mask_status, image_status) if s and s.strip()]
        return ("\n".join(lines) or "no status connected",)


NODE_CLASSES = [MindEditEditRegion, MindEditStatus]
