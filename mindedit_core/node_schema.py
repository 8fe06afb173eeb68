"""The vocabulary node declarations are written in: `NodeSpec`, `Input`, `Output`, `Choices`.

Pure data, no ComfyUI import: ``mindedit_core.node_specs`` declares every node of the pack with these,
and everything else is built from that one declaration (the V3 and V1 node classes in ``nodes/``,
the workflow builder in ``devkit/``, the widget-order freeze test and ComfyUI-Manager's
``node_list.json``).

The order of `NodeSpec.inputs` is the widget order saved workflows rely on: append, never reorder
or rename. Required inputs come first, then optional ones (V1's ``INPUT_TYPES`` keeps them in two
dicts, so the declaration keeps them in that order too; `NodeSpec.__post_init__` checks it).

Queue-time checks: ComfyUI runs a node's ``VALIDATE_INPUTS`` / ``validate_inputs`` when a prompt is
queued and skips its own min/max check for every input that function names, so `range_problem`
repeats it for those inputs from the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .widget_checks import number_problem

# Socket-only types a value never comes from a widget for (anything not a widget type below).
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


@dataclass(frozen=True)
class Choices:
    """A combo whose options are read when ComfyUI asks (e.g. the folders under ``models/LLM``).

    ``key`` names a provider that ``nodes/`` registers (`nodes.choices.PROVIDERS`); outside ComfyUI
    the options are unknown, so the declaration carries only the key.
    """

    key: str


InputType = str | list | tuple | Choices


@dataclass(frozen=True)
class Input:
    name: str
    type: InputType
    tooltip: str
    optional: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # default, min, max, step, multiline, ...

    @property
    def is_combo(self) -> bool:
        return isinstance(self.type, (list, tuple, Choices))

    @property
    def is_widget(self) -> bool:
        """Whether the frontend shows a widget (and saves a positional value) for this input."""
        if self.options.get("forceInput"):
            return False
        return self.is_combo or self.type in WIDGET_TYPES

    @property
    def default(self) -> Any:
        """The widget's value in a new node: ``options["default"]``, else the first fixed choice."""
        if "default" in self.options:
            return self.options["default"]
        if isinstance(self.type, (list, tuple)) and self.type:
            return self.type[0]
        return None

    def v1(self, resolve: Callable[[Choices], list] | None = None) -> tuple:
        """ComfyUI's V1 ``(type, options)`` tuple; ``resolve`` lists a `Choices` combo's options."""
        if isinstance(self.type, Choices):
            if resolve is None:
                raise ValueError(f"{self.name}: its options come from {self.type.key!r}; pass `resolve`")
            kind: Any = resolve(self.type)
        elif isinstance(self.type, tuple):
            kind = list(self.type)
        else:
            kind = self.type
        return (kind, {**self.options, "tooltip": self.tooltip})


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    tooltip: str


@dataclass(frozen=True)
class NodeSpec:
    node_id: str  # the key in NODE_CLASS_MAPPINGS, stored in saved workflows: never change it
    display_name: str
    category: str
    description: str
    function: str  # the method of the node's implementation class that runs it
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]

    def __post_init__(self) -> None:
        flags = [i.optional for i in self.inputs]
        if flags != sorted(flags):
            raise ValueError(f"{self.node_id}: declare required inputs before optional ones")
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.node_id}: an input name is declared twice")

    def input_types(self, resolve: Callable[[Choices], list] | None = None) -> dict[str, dict[str, tuple]]:
        """V1 ``INPUT_TYPES()``: ``required`` (and ``optional`` when there is one) in declared order."""
        required = {i.name: i.v1(resolve) for i in self.inputs if not i.optional}
        optional = {i.name: i.v1(resolve) for i in self.inputs if i.optional}
        return {"required": required, "optional": optional} if optional else {"required": required}

    def input(self, name: str) -> Input:
        for item in self.inputs:
            if item.name == name:
                return item
        raise KeyError(f"{self.node_id} declares no input {name!r}")

    @property
    def widgets(self) -> tuple[Input, ...]:
        """The inputs a saved workflow stores ``widgets_values`` for, in their saved order."""
        return tuple(i for i in self.inputs if i.is_widget)

    def range_problem(self, name: str, value: Any) -> str | None:
        """The min/max message ComfyUI would give for ``value``, and a refusal of NaN / infinity, which
        ComfyUI's own check lets through (None when fine or linked)."""
        options = self.input(name).options
        return number_problem(name, value, minimum=options.get("min"), maximum=options.get("max"))
