"""From a declaration (``mindedit_core.node_specs``) to a V1 node class.

A node's implementation class keeps only its function (named ``spec.function``) and, where inputs
depend on each other, ``VALIDATE_INPUTS``; `implements` writes ``INPUT_TYPES``, ``RETURN_TYPES``,
``RETURN_NAMES``, ``OUTPUT_TOOLTIPS``, ``CATEGORY``, ``FUNCTION`` and ``DESCRIPTION`` from the spec.
The decorated class is the V1 node ComfyUI runs where ``comfy_api.latest`` is missing; elsewhere
``nodes/v3.py`` wraps it in a generated ``io.ComfyNode``.
"""

from __future__ import annotations

from ..mindedit_core.node_schema import Choices, Input, NodeSpec, Output
from .choices import resolve


def implements(spec: NodeSpec):
    """Class decorator: the V1 attributes ComfyUI reads, built from ``spec``."""

    def apply(cls: type) -> type:
        if not callable(getattr(cls, spec.function, None)):
            raise TypeError(f"{cls.__name__} implements {spec.node_id} but has no method {spec.function!r}")
        cls.SPEC = spec
        cls.INPUT_TYPES = classmethod(lambda _cls: spec.input_types(resolve))
        cls.RETURN_TYPES = tuple(o.type for o in spec.outputs)
        cls.RETURN_NAMES = tuple(o.name for o in spec.outputs)
        cls.OUTPUT_TOOLTIPS = tuple(o.tooltip for o in spec.outputs)
        cls.CATEGORY = spec.category
        cls.FUNCTION = spec.function
        cls.DESCRIPTION = spec.description
        return cls

    return apply


declare = implements  # the earlier name, kept for branches written against it


def mappings(classes: list[type]) -> tuple[dict[str, type], dict[str, str]]:
    """``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` for declared classes."""
    return (
        {cls.SPEC.node_id: cls for cls in classes},
        {cls.SPEC.node_id: cls.SPEC.display_name for cls in classes},
    )


__all__ = ["Choices", "Input", "NodeSpec", "Output", "declare", "implements", "mappings"]
