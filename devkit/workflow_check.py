"""Check a UI-format workflow against a ComfyUI's ``/object_info``: every node type known, every
input socket declared by its node, every link's type what the source node outputs and the target
input takes, every required non-widget input linked, and as many widget values as the node has
widgets (with the frontend's UI-only extras). Returns the problems as sentences; [] means valid.

`devkit.workflow_api.ui_to_api` converts a valid workflow; ComfyUI's own ``/prompt`` validation
then checks the values (the tests run both against a live server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devkit.workflow_api import UI_ONLY_NODE_TYPES, _is_widget, _spec_type_and_options, widget_slots


def _declared(info: Mapping[str, Any]) -> dict[str, Any]:
    inputs = info.get("input") or {}
    return {**(inputs.get("required") or {}), **(inputs.get("optional") or {})}


def _input_type(spec: Any) -> str:
    kind, _ = _spec_type_and_options(spec)
    return "COMBO" if isinstance(kind, list) else str(kind)


def _types_match(a: str, b: str) -> bool:
    return a == b or "*" in (a, b) or (a == "COMBO" and b == "STRING") or (b == "COMBO" and a == "STRING")


def workflow_problems(workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    nodes = {node["id"]: node for node in workflow["nodes"]}
    for node in nodes.values():
        kind = node["type"]
        if kind in UI_ONLY_NODE_TYPES:
            continue
        where = f"node {node['id']} ({kind})"
        info = object_info.get(kind)
        if info is None:
            problems.append(f"{where}: this ComfyUI has no node type {kind!r}")
            continue
        declared = _declared(info)
        linked = set()
        for sock in node.get("inputs") or []:
            spec = declared.get(sock["name"])
            if spec is None:
                problems.append(f"{where}: input {sock['name']!r} is not declared (has {sorted(declared)})")
                continue
            if not _types_match(sock["type"], _input_type(spec)):
                problems.append(
                    f"{where}: input {sock['name']!r} is {sock['type']}, declared {_input_type(spec)}"
                )
            if sock.get("link") is not None:
                linked.add(sock["name"])
        required = (info.get("input") or {}).get("required") or {}
        for name, spec in required.items():
            if not _is_widget(spec) and name not in linked:
                problems.append(f"{where}: required input {name!r} is not linked")
        declared_outputs = list(info.get("output") or [])
        for slot, out in enumerate(node.get("outputs") or []):
            if slot >= len(declared_outputs) or not _types_match(out["type"], str(declared_outputs[slot])):
                problems.append(f"{where}: output {slot} ({out['type']}) differs from {declared_outputs}")
        expected = sum(1 + slot.extra_values for slot in widget_slots(info))
        if len(node.get("widgets_values") or []) != expected:
            problems.append(
                f"{where}: {len(node.get('widgets_values') or [])} widget values, the node has {expected}"
            )
    for link_id, src, src_slot, dst, dst_slot, link_type in workflow.get("links") or []:
        source, target = nodes.get(src), nodes.get(dst)
        if source is None or target is None:
            problems.append(f"link {link_id}: a node it joins does not exist")
            continue
        info = object_info.get(source["type"]) or {}
        outputs = list(info.get("output") or [])
        if src_slot >= len(outputs) or not _types_match(str(outputs[src_slot]), link_type):
            problems.append(f"link {link_id}: {source['type']} output {src_slot} is not {link_type}")
        sock = target["inputs"][dst_slot]
        spec = _declared(object_info.get(target["type"]) or {}).get(sock["name"])
        if spec is not None and not _types_match(_input_type(spec), link_type):
            problems.append(f"link {link_id}: {target['type']}.{sock['name']} does not take {link_type}")
    return problems
