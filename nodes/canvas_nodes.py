"""Nodes: keep the artist's image size through the VAE, and paste the edit back onto the source.

The logic is `mindedit_core.canvas`; ComfyUI's VAE Encode crops to multiples of 8 px, so the
workflows pad before it and crop + paste after decoding.
"""

from __future__ import annotations

from ..mindedit_core.canvas import pad_to_multiple, paste_edit
from ..mindedit_core.node_specs import PAD_FOR_VAE, PASTE_EDIT
from .node_spec import implements


@implements(PAD_FOR_VAE)
class MindEditPadForVAE:
    def pad(self, image):
        return (pad_to_multiple(image),)


@implements(PASTE_EDIT)
class MindEditPasteEdit:
    def paste(self, source, edited, edit_mask=None):
        pasted = paste_edit(source, edited, edit_mask)
        return (pasted.image, pasted.status)


NODE_CLASSES = [MindEditPadForVAE, MindEditPasteEdit]
