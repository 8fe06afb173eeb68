"""Nodes: keep the artist's image size through the VAE, and paste the edit back onto the source.

The logic is `mindedit_core.canvas`; ComfyUI's VAE Encode crops to multiples of 8 px, so the
workflows pad before it and crop + paste after decoding.
"""

from __future__ import annotations

from ..mindedit_core.canvas import pad_to_multiple, paste_edit
from ..mindedit_core.node_specs import PAD_FOR_VAE, PASTE_EDIT
from ..mindedit_core.source_checks import check_source_size, transparency_warning
from .node_spec import implements


@implements(PAD_FOR_VAE)
class MindEditPadForVAE:
    def pad(self, image):
        check_source_size(image, where="MIND-Edit Pad for VAE")
        return (pad_to_multiple(image),)


@implements(PASTE_EDIT)
class MindEditPasteEdit:
    def paste(self, source, edited, edit_mask=None, source_mask=None):
        check_source_size(source, where="MIND-Edit Paste Edit")
        pasted = paste_edit(source, edited, edit_mask)
        warning = transparency_warning(source, source_mask)
        return (pasted.image, f"{warning} | {pasted.status}" if warning else pasted.status)


NODE_CLASSES = [MindEditPadForVAE, MindEditPasteEdit]
