"""Nodes: keep the artist's image size through the VAE, and paste the edit back onto the source.

The logic is `mindedit_core.canvas`; ComfyUI's VAE Encode crops to multiples of 8 px, so the
workflows pad before it and crop + paste after decoding.
"""

from __future__ import annotations

from ..mindedit_core.canvas import pad_to_multiple, paste_edit
from ..mindedit_core.source_checks import check_source_size, transparency_warning
from .node_spec import Input, NodeSpec, Output, declare

CATEGORY = "MIND-Edit"


@declare(
    NodeSpec(
        node_id="MindEditPadForVAE",
        display_name="MIND-Edit Pad for VAE",
        category=CATEGORY,
        description=(
            "Extends the image at the right and bottom (edge pixels repeated) to multiples of 8 px, so "
            "VAE Encode crops nothing. 'MIND-Edit Paste Edit' crops the result back."
        ),
        function="pad",
        inputs=(Input("image", "IMAGE", "The source image, any size."),),
        outputs=(Output("image", "IMAGE", "The image padded to multiples of 8 px (connect to VAE Encode)."),),
    )
)
class MindEditPadForVAE:
    def pad(self, image):
        check_source_size(image, where="MIND-Edit Pad for VAE")
        return (pad_to_multiple(image),)


@declare(
    NodeSpec(
        node_id="MindEditPasteEdit",
        display_name="MIND-Edit Paste Edit",
        category=CATEGORY,
        description=(
            "Crops the decoded edit back to the source's size and pastes it through the edit mask: "
            "outside the mask every pixel is the source's, exactly. Without a mask the whole edit is "
            "kept. The status line reports the size."
        ),
        function="paste",
        inputs=(
            Input("source", "IMAGE", "The original source image (its size is the output's size)."),
            Input("edited", "IMAGE", "The decoded edit (VAE Decode)."),
            Input(
                "edit_mask",
                "MASK",
                "Where the edit replaces the source (1) or not (0); soft edges blend. Unconnected: the "
                "whole edit is kept (mask-free).",
                optional=True,
            ),
            Input(
                "source_mask",
                "MASK",
                "The source Load Image's MASK output (1 - alpha), for graphs without 'MIND-Edit Edit "
                "Region': when the source had transparent (or MaskEditor-painted) pixels, which Load Image "
                "flattens and the edit then changes like the rest, the status says so.",
                optional=True,
            ),
        ),
        outputs=(
            Output("image", "IMAGE", "The edited image at the source's size."),
            Output("status", "STRING", "The output size and any crop or resize that was needed."),
        ),
    )
)
class MindEditPasteEdit:
    def paste(self, source, edited, edit_mask=None, source_mask=None):
        check_source_size(source, where="MIND-Edit Paste Edit")
        pasted = paste_edit(source, edited, edit_mask)
        warning = transparency_warning(source, source_mask)
        return (pasted.image, f"{warning} | {pasted.status}" if warning else pasted.status)


NODE_CLASSES = [MindEditPadForVAE, MindEditPasteEdit]
