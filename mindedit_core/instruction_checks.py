"""Is there anything to read in an instruction? Whitespace and invisible characters do not count.

``str.strip()`` keeps zero-width spaces and joiners, bidi controls (LRM/RLM, embeddings, overrides,
isolates), the byte-order mark, soft hyphens, tag characters, variation selectors and the Hangul
and braille "blank" letters: an instruction made only of them reads as empty to a person and to the
MLLM, so it is refused with the same message as an empty one.
"""

from __future__ import annotations

import unicodedata

# Categories that never show a glyph on their own: controls, format characters (zero-width, bidi,
# BOM, tags), surrogates, unassigned, separators, and combining marks without a base letter.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
# Letters and symbols that render as blank space.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")

EMPTY_INSTRUCTION_MESSAGE = (
    "MIND-Edit: the instruction is empty. Write what to change in your own words "
    "(e.g. 'make the sky a warm sunset'), then queue again."
)


def is_visible(char: str) -> bool:
    return char not in _BLANK_LETTERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def is_blank(text: str | None) -> bool:
    """True when ``text`` has no visible character (empty, whitespace, invisible characters only)."""
    return not any(is_visible(char) for char in str(text or ""))


def empty_instruction_problem(instruction=None) -> str | None:
    """Queue-time check: an instruction with nothing to read (``None``: linked, unknown yet)."""
    if instruction is not None and is_blank(instruction):
        return EMPTY_INSTRUCTION_MESSAGE
    return None


class EmptyInstructionError(ValueError):
    """A linked instruction arrived with nothing to read."""


def require_instruction(instruction) -> None:
    """Run-time check for a linked instruction (a widget value was checked at queue time)."""
    if is_blank(instruction):
        raise EmptyInstructionError(EMPTY_INSTRUCTION_MESSAGE)
