"""Node declarations as data: one `NodeSpec` per node, from which the V1 class attributes are built.

A node class keeps only its function (and, where inputs depend on each other, ``VALIDATE_INPUTS``);
`declare` writes ``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_TOOLTIPS``,
``CATEGORY``, ``FUNCTION`` and ``DESCRIPTION`` from the spec. The order of `NodeSpec.inputs` is the
widget order saved workflows rely on (frozen by tests/test_nodes_inprocess.py): append, never
reorder or rename. The spec is also what a later move to ComfyUI's V3 ``io.Schema`` maps over.

Queue-time checks: ComfyUI runs ``VALIDATE_INPUTS`` when a prompt is queued, before anything
executes. It skips its own min/max check for every input that function names, so `range_problem`
repeats it for those inputs from the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..mindedit_core.widget_checks import number_problem

# A combo's choices may depend on the model folders: a callable is read on every INPUT_TYPES call.
InputType = str | list | Callable[[], list]


@dataclass(frozen=True)
class Input:
    name: str
    type: InputType
    tooltip: str
    optional: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # default, min, max, step, multiline, ...

    def spec(self) -> tuple:
        kind = self.type() if callable(self.type) else self.type
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
    function: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]

    def input_types(self) -> dict[str, dict[str, tuple]]:
        required = {i.name: i.spec() for i in self.inputs if not i.optional}
        optional = {i.name: i.spec() for i in self.inputs if i.optional}
        return {"required": required, "optional": optional} if optional else {"required": required}

    def input(self, name: str) -> Input:
        for item in self.inputs:
            if item.name == name:
                return item
        raise KeyError(f"{self.node_id} declares no input {name!r}")

    def range_problem(self, name: str, value: Any) -> str | None:
        """The min/max message ComfyUI would give for ``value``, and a refusal of NaN / infinity, which
        ComfyUI's own check lets through (None when fine or linked)."""
        options = self.input(name).options
        return number_problem(name, value, minimum=options.get("min"), maximum=options.get("max"))


def declare(spec: NodeSpec):
    """Class decorator: the V1 attributes ComfyUI reads, built from ``spec``."""

    def apply(cls: type) -> type:
        cls.SPEC = spec
        cls.INPUT_TYPES = classmethod(lambda _cls: spec.input_types())
        cls.RETURN_TYPES = tuple(o.type for o in spec.outputs)
        cls.RETURN_NAMES = tuple(o.name for o in spec.outputs)
        cls.OUTPUT_TOOLTIPS = tuple(o.tooltip for o in spec.outputs)
        cls.CATEGORY = spec.category
        cls.FUNCTION = spec.function
        cls.DESCRIPTION = spec.description
        return cls

    return apply


def mappings(classes: list[type]) -> tuple[dict[str, type], dict[str, str]]:
    """``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` for declared classes."""
    return (
        {cls.SPEC.node_id: cls for cls in classes},
        {cls.SPEC.node_id: cls.SPEC.display_name for cls in classes},
    )
