"""Nodes: pick the edit mask (painted, alpha or red channel) and gather every status line in one.

The logic is `mindedit_core.masks`; these nodes translate ComfyUI types and put the result on a
STRING output the shipped workflows preview.
"""

from __future__ import annotations

from ..mindedit_core.masks import ALPHA, PAINTED, RED, choose_edit_mask, red_channel
from ..mindedit_core.node_specs import EDIT_REGION, STATUS_JOIN
from ..mindedit_core.source_checks import check_source_size
from .node_spec import implements


@implements(EDIT_REGION)
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


@implements(STATUS_JOIN)
class MindEditStatus:
    def join(self, mllm_status=None, mask_status=None, image_status=None):
        lines = [s.strip() for s in (mllm_status, mask_status, image_status) if s and s.strip()]
        return ("\n".join(lines) or "no status connected",)


NODE_CLASSES = [MindEditEditRegion, MindEditStatus]
