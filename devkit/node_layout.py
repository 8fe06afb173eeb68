"""Node sizes the way ComfyUI's frontend computes them, so shipped graphs never overlap once loaded.

On load the frontend grows every node to at least ``LGraphNode.computeSize()`` (app.ts
``loadGraphData``). Read in comfyui-frontend-package 1.32.9 (the release ComfyUI 0.3.75 pins),
``src/lib/litegraph/src/LGraphNode.ts`` and its widget classes:

- height: ``rows * NODE_SLOT_HEIGHT`` (rows = max(linked inputs that are not widgets, outputs, 1)),
  plus, with widgets, the sum of ``widget height + 4`` and 8, plus a margin of 6. A plain widget is
  ``NODE_WIDGET_HEIGHT`` (20); DOM widgets (multiline text, the Preview-as-Text box, a Note's
  text) have a minimum of 50; an image preview (Load Image once it shows its image, Save Image
  after a run) 220. A seed with ``control_after_generate`` adds a combo widget; an
  ``image_upload`` input adds the upload button.
- width: the largest of the title (``30 + text + 30 * 0.33``), the slot labels (``inputs +
  outputs + 2 * 20``, +5 when both sides have one), the widest widget label plus 104 px of widget
  chrome, and ``NODE_WIDTH`` (140; x1.5 with widgets). Text is ``14 * 0.6`` px a character
  (litegraph's own estimate without a canvas).
- the title bar (``NODE_TITLE_HEIGHT`` 30) sits above ``pos``: a node covers
  ``[x, y - 30, x + w, y + h]``. A group's title is ``font_size * 1.4`` high.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NODE_TITLE_HEIGHT = 30
NODE_SLOT_HEIGHT = 20
NODE_WIDGET_HEIGHT = 20
NODE_WIDTH = 140
TEXT_SIZE = 14
DOM_WIDGET_MIN_HEIGHT = 50
IMAGE_PREVIEW_MIN_HEIGHT = 220
WIDGET_CHROME = 42 + 2 * (15 + 6 + 10)  # minValueWidth + 2 * (margin + arrowMargin + arrowWidth)
GROUP_FONT_SIZE = 24
GROUP_TITLE_HEIGHT = GROUP_FONT_SIZE * 1.4
GROUP_PADDING = 10

# Nodes the frontend gives a widget the server does not list.
TEXT_BOX_NODES = {"PreviewAny": "preview", "Note": "text", "MarkdownNote": "text"}
IMAGE_PREVIEW_NODES = frozenset({"LoadImage", "SaveImage", "PreviewImage"})


def text_width(text: str) -> float:
    return TEXT_SIZE * len(text) * 0.6


def body_height(rows: int, widget_heights: list[float]) -> float:
    """``computeSize()[1]``: slot rows, widgets, margin (the title bar is not included)."""
    height = max(rows, 1) * NODE_SLOT_HEIGHT
    if widget_heights:
        height += sum(h + 4 for h in widget_heights) + 8
    return height + 6


def widget_heights(node_type: str, node_info: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """(label, height) of every widget the frontend shows on a node of this type."""
    widgets: list[tuple[str, float]] = []
    if node_type in TEXT_BOX_NODES and node_type != "PreviewAny":
        return [(TEXT_BOX_NODES[node_type], DOM_WIDGET_MIN_HEIGHT)]
    upload = False
    for section in ("required", "optional"):
        specs = ((node_info or {}).get("input") or {}).get(section) or {}
        order = ((node_info or {}).get("input_order") or {}).get(section) or list(specs)
        for name in order:
            kind, options = _kind_and_options(specs.get(name))
            if options.get("forceInput") or not (
                isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
            ):
                continue
            tall = kind == "STRING" and options.get("multiline")
            widgets.append((name, DOM_WIDGET_MIN_HEIGHT if tall else NODE_WIDGET_HEIGHT))
            if options.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed")):
                widgets.append(("control_after_generate", NODE_WIDGET_HEIGHT))
            upload = upload or bool(options.get("image_upload"))
    if upload:
        widgets.append(("upload", NODE_WIDGET_HEIGHT))
    if node_type == "PreviewAny":
        widgets.append(("preview", DOM_WIDGET_MIN_HEIGHT))
    if node_type in IMAGE_PREVIEW_NODES:
        widgets.append(("$$canvas-image-preview", IMAGE_PREVIEW_MIN_HEIGHT))
    return widgets


def frontend_size(node: Mapping[str, Any], node_info: Mapping[str, Any] | None) -> tuple[float, float]:
    """``computeSize()`` of a UI-format node, given its type's /object_info entry (None for Notes)."""
    widgets = widget_heights(node["type"], node_info)
    widget_names = {name for name, _ in widgets}
    slots = [s for s in node.get("inputs") or [] if not s.get("widget") and s["name"] not in widget_names]
    outputs = node.get("outputs") or []
    rows = max(len(slots), len(outputs), 1)
    title = node.get("title") or (node_info or {}).get("display_name") or node["type"]
    title_width = NODE_TITLE_HEIGHT + text_width(title) + NODE_TITLE_HEIGHT * 0.33
    input_width = max((text_width(s["name"]) for s in slots), default=0)
    output_width = max((text_width(o["name"]) for o in outputs), default=0)
    slots_width = (
        input_width + output_width + 2 * NODE_SLOT_HEIGHT + (5 if input_width and output_width else 0)
    )
    labelled = [
        name for name, _ in widgets if not name.startswith("$$") and name not in TEXT_BOX_NODES.values()
    ]
    widget_width = max((text_width(n) for n in labelled), default=0)
    widget_width = widget_width + WIDGET_CHROME if widget_width else 0
    min_width = NODE_WIDTH * (1.5 if widgets else 1)
    width = max(slots_width, widget_width, title_width, min_width)
    return width, body_height(rows, [h for _, h in widgets])


def node_rect(node: Mapping[str, Any], size: tuple[float, float] | None = None) -> tuple[float, ...]:
    """``(left, top, right, bottom)`` including the title bar."""
    x, y = node["pos"]
    w, h = size or node["size"]
    return (x, y - NODE_TITLE_HEIGHT, x + w, y + h)


def overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _kind_and_options(spec: Any) -> tuple[Any, dict[str, Any]]:
    if not isinstance(spec, (list, tuple)) or not spec:
        return spec, {}
    return spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
