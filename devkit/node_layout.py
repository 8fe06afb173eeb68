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
- every input of the node definition gets a socket on load, linked or not: an optional socket a
  saved workflow leaves out still takes a slot row (frontend 1.49.6, ComfyUI 0.33.0's pin).

Text in a Preview-as-Text box (frontend 1.49.6, ``extensions/core/previewAny``): the box is a DOM
widget (minimum 60 px) followed by a Markdown / Plain-text toggle (a BOOLEAN widget); its text is
``Comfy.TextareaWidget.FontSize`` (default 10 px) at ``leading-normal`` (1.5), so a line is 15 px
and about ``10 * 0.6`` px a character; the box wraps long lines and shows what fits, then scrolls.
What the artist sees without scrolling is what `text_box_lines` counts.
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

# The Preview-as-Text box (see the module docstring).
TEXT_PREVIEW_MIN_HEIGHT = 60
TEXTAREA_FONT_SIZE = 10
TEXTAREA_LINE_HEIGHT = TEXTAREA_FONT_SIZE * 1.5
TEXTAREA_PADDING = 8  # inside the box, each side

# Nodes the frontend gives a widget the server does not list.
TEXT_BOX_NODES = {"PreviewAny": "preview", "Note": "text", "MarkdownNote": "text"}
PREVIEW_TOGGLE = "previewMode"  # the Markdown / Plain-text toggle under a Preview-as-Text box
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
        widgets.append(("preview", TEXT_PREVIEW_MIN_HEIGHT))
        widgets.append((PREVIEW_TOGGLE, NODE_WIDGET_HEIGHT))
    if node_type in IMAGE_PREVIEW_NODES:
        widgets.append(("$$canvas-image-preview", IMAGE_PREVIEW_MIN_HEIGHT))
    return widgets


def frontend_size(node: Mapping[str, Any], node_info: Mapping[str, Any] | None) -> tuple[float, float]:
    """``computeSize()`` of a UI-format node, given its type's /object_info entry (None for Notes)."""
    widgets = widget_heights(node["type"], node_info)
    widget_names = {name for name, _ in widgets}
    slots = [s for s in node.get("inputs") or [] if not s.get("widget") and s["name"] not in widget_names]
    declared = {name for name in socket_inputs(node_info) if name not in widget_names}
    outputs = node.get("outputs") or []
    rows = max(len(declared | {s["name"] for s in slots}), len(outputs), 1)
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


def socket_inputs(node_info: Mapping[str, Any] | None) -> list[str]:
    """Every input of a node definition that is a socket, not a widget (required and optional)."""
    names = []
    for section in ("required", "optional"):
        for name, spec in (((node_info or {}).get("input") or {}).get(section) or {}).items():
            kind, options = _kind_and_options(spec)
            is_widget = not options.get("forceInput") and (
                isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
            )
            if not is_widget:
                names.append(name)
    return names


def text_box_lines(text: str, box_width: float) -> int:
    """How many lines ``text`` takes in a Preview-as-Text box ``box_width`` wide, wrapped at spaces
    the way a textarea wraps (a word longer than a line is broken)."""
    per_line = max(1, int((box_width - 2 * TEXTAREA_PADDING) // (TEXTAREA_FONT_SIZE * 0.6)))
    lines = 0
    for paragraph in text.split("\n"):
        lines, used = lines + 1, 0
        for word in paragraph.split(" "):
            if used + (1 if used else 0) + len(word) <= per_line:
                used += (1 if used else 0) + len(word)
                continue
            if used:  # the word goes to the next line
                lines += 1
            while len(word) > per_line:  # a word longer than a line is broken
                lines, word = lines + 1, word[per_line:]
            used = len(word)
    return lines


def text_box_height(lines: int) -> float:
    """The height a Preview-as-Text box needs to show ``lines`` lines without scrolling."""
    return max(TEXT_PREVIEW_MIN_HEIGHT, lines * TEXTAREA_LINE_HEIGHT + 2 * TEXTAREA_PADDING)


# A DOM widget spans the node's width less this margin (litegraph's widget margin, both sides).
DOM_WIDGET_SIDE_MARGIN = 10


def preview_node_height(text: str, node_width: float) -> float:
    """The body height of a Preview-as-Text node ``node_width`` wide that shows all of ``text``."""
    box = text_box_height(text_box_lines(text, node_width - 2 * DOM_WIDGET_SIDE_MARGIN))
    return body_height(1, [box, NODE_WIDGET_HEIGHT])


def preview_box_height(node_height: float) -> float:
    """The text box's height inside a Preview-as-Text node of ``node_height`` (one input row, the
    box, the toggle): the inverse of `body_height`."""
    return node_height - 6 - 8 - NODE_SLOT_HEIGHT - (NODE_WIDGET_HEIGHT + 4) - 4


# The saved opening view (``extra.ds``: the canvas shows graph point p at ``(p + offset) * scale``).
# Reference canvas: a 1600 x 900 browser canvas (a laptop; 1080p leaves more), of which the frontend's
# side toolbar covers the left and its menu bar the top (1.49-1.58 measured ~48-60 px; we keep clear
# of a generous 80 / 48).
OPENING_SCALE = 0.75  # readable: litegraph stops drawing widget text below 0.6
MIN_OPENING_SCALE = 0.6
REFERENCE_CANVAS = (1600, 900)
SIDEBAR_WIDTH = 80
TOP_BAR_HEIGHT = 48
VIEW_MARGIN = 16


def opening_view(left: float, top: float, right: float, bottom: float) -> dict[str, Any]:
    """``extra.ds`` that puts graph point (left, top) just right of the sidebar and below the menu,
    zoomed out from `OPENING_SCALE` (not below `MIN_OPENING_SCALE`) until (right, bottom), the first
    group's far corner, is on the reference canvas too."""
    width, height = REFERENCE_CANVAS
    fit_w = (width - SIDEBAR_WIDTH - 2 * VIEW_MARGIN) / max(right - left, 1)
    fit_h = (height - TOP_BAR_HEIGHT - 2 * VIEW_MARGIN) / max(bottom - top, 1)
    scale = round(max(MIN_OPENING_SCALE, min(OPENING_SCALE, fit_w, fit_h)), 3)
    return {
        "scale": scale,
        "offset": [
            round((SIDEBAR_WIDTH + VIEW_MARGIN) / scale - left, 1),
            round((TOP_BAR_HEIGHT + VIEW_MARGIN) / scale - top, 1),
        ],
    }


def visible_graph_rect(ds: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """The graph area (left, top, right, bottom) the reference canvas shows, clear of sidebar and menu."""
    scale = ds["scale"]
    ox, oy = ds["offset"]
    width, height = REFERENCE_CANVAS
    return (SIDEBAR_WIDTH / scale - ox, TOP_BAR_HEIGHT / scale - oy, width / scale - ox, height / scale - oy)


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
