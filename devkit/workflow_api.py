"""Convert a UI-format ComfyUI workflow (what artists save and load) into an API prompt.

ComfyUI's server only executes API prompts (`{node_id: {"class_type", "inputs"}}`); the web
frontend converts. We ship workflows in the UI format, so tests and demos convert them here, using
`/object_info` (a plain dict: tests can pass a stored or synthetic one). The rules mirror the
frontend's:

- `Note` / `MarkdownNote` and muted nodes (mode 2) are dropped; links from a muted node vanish.
- bypassed nodes (mode 4) are dropped and pass a link through: from the bypassed node's input at
  the same slot if its type matches, else its first input of the requested type.
- `Reroute` nodes are followed; `PrimitiveNode` values become literals.
- `widgets_values` is positional over the node's widget inputs (required then optional; INT,
  FLOAT, STRING, BOOLEAN and combos, unless `forceInput`). A seed-like INT (`control_after_generate`,
  or named `seed` / `noise_seed`) carries one extra UI-only value right after it.
  A combo with `control_after_generate` carries two (control and filter). A node with an
  `image_upload` input carries one more UI-only value (the upload button) after its required
  widgets. A linked widget keeps its slot but the link wins; missing trailing values take the
  defaults.
- links become `[source_node_id, output_slot]` with string ids.

Group nodes and subgraphs are not expanded: they raise a clear error (unpack them in the UI).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UI_ONLY_NODE_TYPES = frozenset({"Note", "MarkdownNote"})
MODE_MUTED = 2
MODE_BYPASSED = 4
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_WIDGET_NAMES = frozenset({"seed", "noise_seed"})


class WorkflowConversionError(ValueError):
    """The UI workflow cannot be turned into an API prompt; the message says which node and why."""


class UnknownNodeType(WorkflowConversionError):
    """A node's type is not in /object_info: the pack that provides it is missing."""

    def __init__(self, node_id: Any, node_type: str, pack: str | None):
        self.node_id = node_id
        self.node_type = node_type
        self.pack = pack
        where = f"the custom node pack {pack!r}" if pack else "the custom node pack that provides it"
        super().__init__(
            f"node {node_id} has type {node_type!r}, which this ComfyUI does not know: install {where} "
            "into custom_nodes/ (ComfyUI-Manager can search by node type), restart ComfyUI, or remove "
            "the node from the workflow."
        )


@dataclass(frozen=True)
class WidgetSlot:
    """A widget input and how many UI-only values follow it in `widgets_values`; or (`ui_only`)
    a value the frontend adds that is no input at all (the image upload button)."""

    name: str
    default: Any
    extra_values: int
    ui_only: bool = False


def _spec_type_and_options(spec: Any) -> tuple[Any, dict[str, Any]]:
    if not isinstance(spec, (list, tuple)) or not spec:
        return spec, {}
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0], options


def combo_options(spec: Any) -> list | None:
    """A combo input's options, in either /object_info spelling: V1 classes give ``[options, {...}]``,
    V3 classes ``["COMBO", {"options": [...]}]``; None when ``spec`` is no combo."""
    kind, options = _spec_type_and_options(spec)
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list(options.get("options") or [])
    return None


def _is_widget(spec: Any) -> bool:
    kind, options = _spec_type_and_options(spec)
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _default(spec: Any) -> Any:
    kind, options = _spec_type_and_options(spec)
    if "default" in options:
        return options["default"]
    if isinstance(kind, list):
        return kind[0] if kind else None
    if kind == "COMBO":
        choices = options.get("options") or []
        return choices[0] if choices else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


def _extra_ui_values(name: str, spec: Any) -> int:
    """UI-only values right after a widget: a seed-like INT's "control after generate" choice; a
    combo with that option also gets a filter value."""
    kind, options = _spec_type_and_options(spec)
    if kind == "INT" and (options.get("control_after_generate") or name in SEED_WIDGET_NAMES):
        return 1
    if (isinstance(kind, list) or kind == "COMBO") and options.get("control_after_generate"):
        return 2
    return 0


def _ordered_inputs(node_info: Mapping[str, Any], section: str) -> list[tuple[str, Any]]:
    specs = (node_info.get("input") or {}).get(section) or {}
    order = (node_info.get("input_order") or {}).get(section)
    names = list(order) if order else list(specs)
    return [(name, specs[name]) for name in names if name in specs]


def widget_slots(node_info: Mapping[str, Any]) -> list[WidgetSlot]:
    """The widget inputs of one /object_info entry, in `widgets_values` order."""
    slots = []
    for section in ("required", "optional"):
        has_upload = False
        for name, spec in _ordered_inputs(node_info, section):
            if _is_widget(spec):
                slots.append(WidgetSlot(name, _default(spec), _extra_ui_values(name, spec)))
                has_upload = has_upload or bool(_spec_type_and_options(spec)[1].get("image_upload"))
        if section == "required" and has_upload:
            # The frontend appends an "upload" button input at the end of the required inputs.
            slots.append(WidgetSlot("upload", None, 0, ui_only=True))
    return slots


def _links_by_id(workflow: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Links in either layout: `[id, origin, origin_slot, target, target_slot, type]` or objects."""
    links = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            entry = {
                "origin": link["origin_id"],
                "origin_slot": link["origin_slot"],
                "target": link["target_id"],
                "target_slot": link["target_slot"],
                "type": link.get("type"),
            }
            links[link["id"]] = entry
        else:
            link_id, origin, origin_slot, target, target_slot, link_type = link[:6]
            links[link_id] = {
                "origin": origin,
                "origin_slot": origin_slot,
                "target": target,
                "target_slot": target_slot,
                "type": link_type,
            }
    return links


def _pack_hint(node: Mapping[str, Any]) -> str | None:
    props = node.get("properties") or {}
    return props.get("cnr_id") or props.get("aux_id")


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], object_info: Mapping[str, Any]):
        self.object_info = object_info
        self.nodes = {node["id"]: node for node in workflow.get("nodes") or []}
        self.links = _links_by_id(workflow)
        subgraphs = ((workflow.get("definitions") or {}).get("subgraphs")) or []
        self.subgraph_ids = {sg.get("id") for sg in subgraphs}
        self.group_nodes = set(((workflow.get("extra") or {}).get("groupNodes") or {}).keys())

    # -- node classification --------------------------------------------------------------------
    def _check_supported(self, node: Mapping[str, Any]) -> None:
        node_type = node.get("type")
        if node_type in self.subgraph_ids:
            raise WorkflowConversionError(
                f"node {node['id']} is a subgraph ({node.get('title') or node_type}); this converter does "
                "not expand subgraphs: open the workflow in ComfyUI, unpack the subgraph and save again."
            )
        if isinstance(node_type, str) and (
            node_type.startswith(("workflow>", "workflow/")) or node_type.split(">")[-1] in self.group_nodes
        ):
            raise WorkflowConversionError(
                f"node {node['id']} is a group node ({node_type}); this converter does not expand group "
                "nodes: open the workflow in ComfyUI, convert it back to nodes and save again."
            )

    def _is_real(self, node: Mapping[str, Any]) -> bool:
        """True for nodes that become API nodes; raises for unknown types."""
        node_type = node.get("type")
        if node_type in UI_ONLY_NODE_TYPES or node_type in ("Reroute", "PrimitiveNode"):
            return False
        self._check_supported(node)
        if node.get("mode", 0) in (MODE_MUTED, MODE_BYPASSED):
            return False  # dropped whatever its type: a muted/bypassed missing node is harmless
        if node_type not in self.object_info:
            raise UnknownNodeType(node.get("id"), str(node_type), _pack_hint(node))
        return True

    # -- link resolution ------------------------------------------------------------------------
    def resolve(
        self, link_id: int | None, wanted_type: Any, seen: frozenset = frozenset()
    ) -> tuple[str, Any]:
        """('link', [id, slot]) | ('value', literal) | ('none', None) for what feeds a link."""
        if link_id is None:
            return ("none", None)
        if link_id in seen:
            raise WorkflowConversionError(f"link {link_id} loops through reroutes/bypassed nodes.")
        seen = seen | {link_id}
        link = self.links.get(link_id)
        if link is None:
            raise WorkflowConversionError(
                f"link {link_id} is referenced by a node but not in the workflow's links."
            )
        origin = self.nodes.get(link["origin"])
        if origin is None:
            raise WorkflowConversionError(
                f"link {link_id} comes from node {link['origin']}, which does not exist."
            )
        origin_type = origin.get("type")
        if origin_type == "Reroute":
            inputs = origin.get("inputs") or []
            return self.resolve(inputs[0].get("link") if inputs else None, wanted_type, seen)
        if origin_type == "PrimitiveNode":
            values = origin.get("widgets_values") or []
            if not values:
                raise WorkflowConversionError(
                    f"PrimitiveNode {origin['id']} has no value (empty widgets_values)."
                )
            return ("value", values[0])
        if origin_type in UI_ONLY_NODE_TYPES:
            return ("none", None)
        self._check_supported(origin)
        mode = origin.get("mode", 0)
        if mode == MODE_MUTED:
            return ("none", None)
        if mode == MODE_BYPASSED:
            return self._resolve_through_bypass(origin, link, wanted_type or link.get("type"), seen)
        if origin_type not in self.object_info:
            raise UnknownNodeType(origin.get("id"), str(origin_type), _pack_hint(origin))
        return ("link", [str(origin["id"]), int(link["origin_slot"])])

    def _resolve_through_bypass(self, origin, link, wanted_type, seen) -> tuple[str, Any]:
        inputs = origin.get("inputs") or []
        candidates = [link["origin_slot"], *range(len(inputs))]
        for index in candidates:
            if 0 <= index < len(inputs) and inputs[index].get("type") == wanted_type:
                return self.resolve(inputs[index].get("link"), wanted_type, seen)
        return ("none", None)

    # -- one node -------------------------------------------------------------------------------
    def node_inputs(self, node: Mapping[str, Any]) -> dict[str, Any]:
        info = self.object_info[node["type"]]
        slots = widget_slots(info)
        values = node.get("widgets_values")
        inputs: dict[str, Any] = {}
        if isinstance(values, dict):  # some packs save widgets by name
            for slot in slots:
                if not slot.ui_only:
                    inputs[slot.name] = copy.deepcopy(values.get(slot.name, slot.default))
        else:
            values = list(values or [])
            pos = 0
            for slot in slots:
                if not slot.ui_only:
                    inputs[slot.name] = copy.deepcopy(values[pos]) if pos < len(values) else slot.default
                pos += 1 + slot.extra_values
        known = {name for section in ("required", "optional") for name, _ in _ordered_inputs(info, section)}
        for socket in node.get("inputs") or []:
            name = (socket.get("widget") or {}).get("name") or socket.get("name")
            kind, value = self.resolve(socket.get("link"), socket.get("type"))
            if kind == "none":
                continue
            if name not in known:
                raise WorkflowConversionError(
                    f"node {node['id']} ({node['type']}) has a link into input {name!r}, which /object_info "
                    f"does not list for {node['type']}: the pack version differs from the workflow's."
                )
            inputs[name] = value
        return inputs

    def convert(self) -> dict[str, dict[str, Any]]:
        prompt: dict[str, dict[str, Any]] = {}
        for node_id, node in self.nodes.items():
            if not self._is_real(node):
                continue
            info = self.object_info[node["type"]]
            title = node.get("title") or info.get("display_name") or node["type"]
            prompt[str(node_id)] = {
                "class_type": node["type"],
                "inputs": self.node_inputs(node),
                "_meta": {"title": title},
            }
        return prompt


def ui_to_api(workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """API prompt for a UI-format workflow (`nodes` + `links` + `widgets_values`)."""
    if "nodes" not in workflow:
        if workflow and all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            raise WorkflowConversionError(
                "this is already an API prompt (node ids -> class_type); submit it as is."
            )
        raise WorkflowConversionError("not a UI-format workflow: it has no 'nodes' list.")
    return _Converter(workflow, object_info).convert()


def find_node_ids(api_prompt: Mapping[str, Any], node: str | int) -> list[str]:
    """Ids of the API nodes whose id, `_meta.title` or class_type equals `node` (in that priority)."""
    key = str(node)
    if key in api_prompt:
        return [key]
    by_title = [nid for nid, n in api_prompt.items() if (n.get("_meta") or {}).get("title") == key]
    if by_title:
        return by_title
    return [nid for nid, n in api_prompt.items() if n.get("class_type") == key]


def set_widget(api_prompt: dict[str, Any], node: str | int, input_name: str, value: Any) -> str:
    """Set one literal input of one node, found by id, title or (if unique) class type.

    Returns the node id. Raises `KeyError` naming the candidates when the node is missing or
    ambiguous, or when the input is a link (changing a link into a literal is almost always a bug).
    """
    ids = find_node_ids(api_prompt, node)
    if not ids:
        titles = sorted(
            {(n.get("_meta") or {}).get("title", n.get("class_type")) for n in api_prompt.values()}
        )
        raise KeyError(f"no node with id, title or type {node!r}; titles in this prompt: {titles}")
    if len(ids) > 1:
        raise KeyError(
            f"{node!r} matches several nodes {ids}; use a node id or give the nodes distinct titles"
        )
    inputs = api_prompt[ids[0]]["inputs"]
    if input_name not in inputs:
        raise KeyError(f"node {ids[0]} has no input {input_name!r}; its inputs: {sorted(inputs)}")
    current = inputs[input_name]
    if (
        isinstance(current, list)
        and len(current) == 2
        and isinstance(current[0], str)
        and isinstance(current[1], int)
    ):
        raise KeyError(f"input {input_name!r} of node {ids[0]} is a link {current}, not a widget value")
    inputs[input_name] = value
    return ids[0]
