"""A small builder for ComfyUI's UI-format workflow JSON (what artists drag into ComfyUI).

Hand-written UI JSON is easy to break (link ids must agree in three places, widget values are
positional). The shipped workflows are generated from readable Python (`devkit.build_workflows`)
with this builder, and the tests check them against a live server's ``/object_info``.

Format written (the one ComfyUI's frontend saves, version 0.4):
- ``nodes[]``: ``id``, ``type``, ``pos``, ``size``, ``flags``, ``order``, ``mode``, ``inputs`` (linked
  sockets, plus widgets converted to sockets, which carry ``"widget": {"name": ...}``), ``outputs``
  (with the ``links`` leaving each slot), ``properties`` (``"Node name for S&R"``) and
  ``widgets_values`` (positional: every widget, converted or not, plus UI-only values such as a
  seed's ``control_after_generate`` or an image loader's upload button);
- ``links[]``: ``[link_id, from_node, from_slot, to_node, to_slot, type]``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


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
            {"title": title, "bounding": list(bounding), "color": color, "font_size": 24, "flags": {}}
        )

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
            "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}},
            "version": 0.4,
        }
