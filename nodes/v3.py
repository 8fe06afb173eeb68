"""V3 nodes (``comfy_api.latest``: ``io.ComfyNode``) generated from the declarations.

Each generated class has the declaration's node ID, inputs (same names, order, defaults, limits and
tooltips), outputs, category and description, and runs the V1 implementation class's function: one
behaviour, two registrations. ``validate_inputs`` is the implementation's ``VALIDATE_INPUTS`` with
its signature (ComfyUI reads the argument names to know which inputs it checks).

Imported only where ``comfy_api.latest`` exists (the pack's ``__init__.py`` decides).
"""

from __future__ import annotations

from typing import Any

from comfy_api.latest import ComfyExtension, io

from ..mindedit_core.node_schema import Input, NodeSpec
from .choices import resolve

# V1 option name -> V3 constructor keyword, for the options our declarations use.
_V3_KEYWORDS = {
    "default": "default",
    "min": "min",
    "max": "max",
    "step": "step",
    "multiline": "multiline",
    "forceInput": "force_input",
    "control_after_generate": "control_after_generate",
}
_WIDGET_CLASSES = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean}


def v3_input(item: Input) -> Any:
    """The ``io.*.Input`` for one declared input."""
    common = {"optional": item.optional, "tooltip": item.tooltip}
    unknown = set(item.options) - set(_V3_KEYWORDS)
    if unknown:
        raise ValueError(f"{item.name}: no V3 mapping for the options {sorted(unknown)} (nodes/v3.py)")
    options = {_V3_KEYWORDS[k]: v for k, v in item.options.items()}
    if item.is_combo:
        return io.Combo.Input(item.name, options=item.v1(resolve)[0], **common, **options)
    if item.type in _WIDGET_CLASSES:
        return _WIDGET_CLASSES[item.type].Input(item.name, **common, **options)
    if options:
        raise ValueError(f"{item.name}: a socket-only input takes no widget options")
    return io.Custom(item.type).Input(item.name, **common)


def v3_schema(spec: NodeSpec) -> io.Schema:
    return io.Schema(
        node_id=spec.node_id,
        display_name=spec.display_name,
        category=spec.category,
        description=spec.description,
        inputs=[v3_input(i) for i in spec.inputs],
        outputs=[io.Custom(o.type).Output(display_name=o.name, tooltip=o.tooltip) for o in spec.outputs],
    )


def v3_node(implementation: type) -> type[io.ComfyNode]:
    """An ``io.ComfyNode`` subclass for a class decorated with ``@implements(spec)``."""
    spec: NodeSpec = implementation.SPEC

    def define_schema(cls) -> io.Schema:
        return v3_schema(spec)

    def execute(cls, **kwargs) -> io.NodeOutput:
        return io.NodeOutput(*getattr(implementation(), spec.function)(**kwargs))

    namespace: dict[str, Any] = {
        "SPEC": spec,
        "IMPLEMENTATION": implementation,
        "__doc__": implementation.__doc__,
        "__module__": implementation.__module__,
        "define_schema": classmethod(define_schema),
        "execute": classmethod(execute),
    }
    validate = getattr(implementation, "VALIDATE_INPUTS", None)
    if validate is not None:
        namespace["validate_inputs"] = classmethod(validate.__func__)
    return type(implementation.__name__, (io.ComfyNode,), namespace)


class MindEditExtension(ComfyExtension):
    """The pack as a V3 extension: folders registered on load, the generated nodes listed."""

    def __init__(self, implementations: list[type], register_folders) -> None:
        self._nodes = [v3_node(cls) for cls in implementations]
        self._register_folders = register_folders

    async def on_load(self) -> None:
        self._register_folders()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # ComfyUI 0.3.75 lists the nodes without calling on_load first: registering is idempotent.
        self._register_folders()
        return list(self._nodes)
