"""Queue-time and run-time checks of number widgets that ComfyUI itself lets through.

ComfyUI converts a FLOAT widget with ``float()`` and compares it with the declared min/max. NaN
compares false with everything, so ``weight = NaN`` sent to ``/prompt`` passes its check and turns
the whole edit black; ±inf passes wherever an input skips ComfyUI's own range check (the inputs a
node's ``VALIDATE_INPUTS`` names). Every FLOAT input of the pack goes through `number_problem` at
queue time, and through `require_finite` when it arrives at run time from a link.
"""

from __future__ import annotations

import math
from typing import Any


class NonFiniteValueError(ValueError):
    """A number input is NaN or infinite."""


def _not_finite(name: str, value: Any, *, where: str) -> str:
    return (
        f"{where}{name} = {value} is not a finite number (NaN or infinity would turn every pixel it "
        f"touches black). Set {name} to an ordinary number."
    )


def number_problem(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None, where: str = ""
) -> str | None:
    """What is wrong with a number widget's value (None when it is fine or linked, i.e. ``None``).

    ``where`` prefixes the message (e.g. the node's name and ': ')."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{where}{name} = {value!r} is not a number."
    if not math.isfinite(number):
        return _not_finite(name, value, where=where)
    if minimum is not None and number < minimum:
        return f"{where}{name} = {value} is below its minimum {minimum}."
    if maximum is not None and number > maximum:
        return f"{where}{name} = {value} is above its maximum {maximum}."
    return None


def require_finite(name: str, value: Any, *, where: str = "") -> float:
    """``value`` as a float, or `NonFiniteValueError` (a linked value is not checked at queue time)."""
    number = float(value)
    if not math.isfinite(number):
        raise NonFiniteValueError(_not_finite(name, value, where=where))
    return number
