"""A small builder for ComfyUI's UI-format workflow JSON (what artists drag into ComfyUI).

Hand-written UI JSON is easy to break (link ids must agree in three places, widget values are
positional). The shipped workflows are generated from readable Python (`devkit.build_workflows`)
with this builder, and the tests check them against a live server's ``/object_info``.

Format written (the one ComfyUI's frontend saves, version 0.4):
- ``nodes[]``: ``id``, ``type``, ``pos``, ``size``, ``flags``, ``order``, ``mode``, ``inputs`` (linked
  sockets, plus widgets converted to sockets, which carry ``"widget": {"name": ...}``), ``outputs``
  (with the ``links`` leaving each slot), ``properties`` (``"Node name for S&R"``, and for model
  loaders ``models``: ``[{name, url, directory}]``, what the frontend's missing-model dialog offers
  to download) and ``widgets_values`` (positional: every widget, converted or not, plus UI-only values such as a
  seed's ``control_after_generate`` or an image loader's upload button);
- ``links[]``: ``[link_id, from_node, from_slot, to_node, to_slot, type]``;
- ``groups[]``: titled boxes, fitted around their nodes the way the frontend's "fit group to nodes" does.

`Column` stacks nodes top to bottom at the frontend's own sizes (`devkit.node_layout`), so no two
nodes overlap once the frontend has sized them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from devkit.node_layout import (
    DOM_WIDGET_MIN_HEIGHT,
    GROUP_FONT_SIZE,
    GROUP_PADDING,
    GROUP_TITLE_HEIGHT,
    IMAGE_PREVIEW_MIN_HEIGHT,
    NODE_TITLE_HEIGHT,
    NODE_WIDGET_HEIGHT,
    TEXT_PREVIEW_MIN_HEIGHT,
    body_height,
    node_rect,
    opening_view,
)


@dataclass
class Socket:
    name: str
    type: str
    widget: bool = False  # a widget converted to an input socket (e.g. CLIPTextEncode.text)
    link: int | None = None


@dataclass
class Output:
    name: str
    type: str
    links: list[int] = field(default_factory=list)


@dataclass
class UINode:
    id: int
    type: str
    pos: tuple[float, float]
    size: tuple[float, float]
    inputs: list[Socket]
    outputs: list[Output]
    widgets_values: list[Any]
    title: str | None = None
    color: str | None = None
    bgcolor: str | None = None
    models: list[dict[str, str]] = field(default_factory=list)

    def input_slot(self, name: str) -> int:
        for i, sock in enumerate(self.inputs):
            if sock.name == name:
                return i
        raise KeyError(
            f"node {self.id} ({self.type}) has no input socket {name!r}: {[s.name for s in self.inputs]}"
        )


class UIGraph:
    """Collects nodes and links, then writes the UI-format dict."""

    def __init__(self, workflow_id: str | None = None):
        self.nodes: dict[int, UINode] = {}
        self.links: list[list[Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.workflow_id = workflow_id or str(uuid.uuid4())

    def add(
        self,
        type: str,
        pos: tuple[float, float],
        *,
        widgets: list[Any] | tuple = (),
        inputs: list[tuple[str, str]] | tuple = (),
        widget_inputs: list[tuple[str, str]] | tuple = (),
        outputs: list[tuple[str, str]] | tuple = (),
        size: tuple[float, float] = (320, 120),
        title: str | None = None,
        color: str | None = None,
        bgcolor: str | None = None,
        models: list[dict[str, str]] | tuple = (),
    ) -> int:
        node_id = len(self.nodes) + 1
        sockets = [Socket(n, t) for n, t in inputs] + [Socket(n, t, widget=True) for n, t in widget_inputs]
        self.nodes[node_id] = UINode(
            id=node_id,
            type=type,
            pos=pos,
            size=size,
            inputs=sockets,
            outputs=[Output(n, t) for n, t in outputs],
            widgets_values=list(widgets),
            title=title,
            color=color,
            bgcolor=bgcolor,
            models=[dict(m) for m in models],
        )
        return node_id

    def connect(self, src: int, src_slot: int, dst: int, dst_input: str) -> int:
        source, target = self.nodes[src], self.nodes[dst]
        out = source.outputs[src_slot]
        slot = target.input_slot(dst_input)
        sock = target.inputs[slot]
        if sock.link is not None:
            raise ValueError(f"input {dst_input!r} of node {dst} is already linked")
        if sock.type != out.type and "*" not in (sock.type, out.type):
            raise TypeError(
                f"link {src}.{out.name} ({out.type}) -> {dst}.{dst_input} ({sock.type}): types differ"
            )
        link_id = len(self.links) + 1
        out.links.append(link_id)
        sock.link = link_id
        self.links.append([link_id, src, src_slot, dst, slot, out.type])
        return link_id

    def group(self, title: str, bounding: tuple[float, float, float, float], color: str = "#3f789e") -> None:
        self.groups.append(
            {
                "id": len(self.groups) + 1,
                "title": title,
                "bounding": [round(v, 1) for v in bounding],
                "color": color,
                "font_size": GROUP_FONT_SIZE,
                "flags": {},
            }
        )

    def fit_group(self, title: str, node_ids: list[int], color: str = "#3f789e") -> None:
        """A group around ``node_ids`` (their title bars included), like the frontend's resizeTo."""
        rects = [node_rect({"pos": self.nodes[n].pos, "size": self.nodes[n].size}) for n in node_ids]
        left = min(r[0] for r in rects) - GROUP_PADDING
        top = min(r[1] for r in rects) - GROUP_PADDING - GROUP_TITLE_HEIGHT
        right = max(r[2] for r in rects) + GROUP_PADDING
        bottom = max(r[3] for r in rects) + GROUP_PADDING
        self.group(title, (left, top, right - left, bottom - top), color)

    def _top_left(self) -> tuple[float, float]:
        """The graph's top-left corner: nodes (title bars included) and groups."""
        rects = [node_rect({"pos": n.pos, "size": n.size}) for n in self.nodes.values()]
        rects += [(x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in self.groups)]
        return min(r[0] for r in rects), min(r[1] for r in rects)

    def _first_group_far_corner(self) -> tuple[float, float]:
        """The right and bottom edges of the first group (of the whole graph when it has none)."""
        if self.groups:
            x, y, w, h = self.groups[0]["bounding"]
            return x + w, y + h
        rects = [node_rect({"pos": n.pos, "size": n.size}) for n in self.nodes.values()]
        return max(r[2] for r in rects), max(r[3] for r in rects)

    def _execution_order(self) -> dict[int, int]:
        """A topological order (the frontend's ``order`` field): sources first."""
        incoming = {nid: {link[1] for link in self.links if link[3] == nid} for nid in self.nodes}
        order: dict[int, int] = {}
        while len(order) < len(self.nodes):
            ready = sorted(nid for nid, deps in incoming.items() if nid not in order and deps <= set(order))
            if not ready:
                raise ValueError("the graph has a cycle")
            for nid in ready:
                order[nid] = len(order)
        return order

    def to_dict(self) -> dict[str, Any]:
        order = self._execution_order()
        nodes = []
        for node in self.nodes.values():
            entry: dict[str, Any] = {
                "id": node.id,
                "type": node.type,
                "pos": list(node.pos),
                "size": list(node.size),
                "flags": {},
                "order": order[node.id],
                "mode": 0,
                "inputs": [],
                "outputs": [],
                "properties": {"Node name for S&R": node.type},
                "widgets_values": node.widgets_values,
            }
            for sock in node.inputs:
                item: dict[str, Any] = {"name": sock.name, "type": sock.type}
                if sock.widget:
                    item["widget"] = {"name": sock.name}
                item["link"] = sock.link
                entry["inputs"].append(item)
            for slot, out in enumerate(node.outputs):
                entry["outputs"].append(
                    {"name": out.name, "type": out.type, "links": out.links, "slot_index": slot}
                )
            if node.models:
                entry["properties"]["models"] = node.models
            if node.title:
                entry["title"] = node.title
            if node.color:
                entry["color"] = node.color
            if node.bgcolor:
                entry["bgcolor"] = node.bgcolor
            nodes.append(entry)
        return {
            "id": self.workflow_id,
            "revision": 0,
            "last_node_id": max(self.nodes, default=0),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": opening_view(*self._top_left(), *self._first_group_far_corner())},
            "version": 0.4,
        }


# Gap between the bottom of one node and the title bar of the next in a column.
COLUMN_GAP = 24


class Column:
    """Places nodes one under another at ``x``, each sized as the frontend will size it.

    ``tall`` lists the positions (in ``widgets``) of multiline text widgets; ``preview`` adds the
    image preview Load Image and Save Image show; ``min_height`` keeps room for text (Notes).
    """

    def __init__(self, graph: UIGraph, x: float, y: float, width: float):
        self.graph, self.x, self.y, self.width = graph, x, y, width

    def skip(self, height: float) -> None:
        self.y += height

    def add(
        self,
        type: str,
        *,
        tall: tuple[int, ...] = (),
        preview: bool = False,
        text_box: bool = False,
        min_height: float = 0,
        width: float | None = None,
        **kwargs: Any,
    ) -> int:
        widgets = kwargs.get("widgets", ())
        heights = [DOM_WIDGET_MIN_HEIGHT if i in tall else NODE_WIDGET_HEIGHT for i in range(len(widgets))]
        if text_box:  # Preview as Text: the box, then its Markdown / Plain-text toggle
            heights += [TEXT_PREVIEW_MIN_HEIGHT, NODE_WIDGET_HEIGHT]
        if preview:
            heights.append(IMAGE_PREVIEW_MIN_HEIGHT)
        linked = [i for i in kwargs.get("inputs", ())]
        rows = max(len(linked), len(kwargs.get("outputs", ())), 1)
        height = max(body_height(rows, heights), min_height)
        pos = (self.x, self.y + NODE_TITLE_HEIGHT)
        node = self.graph.add(type, pos, size=(width or self.width, height), **kwargs)
        self.y = pos[1] + height + COLUMN_GAP
        return node
