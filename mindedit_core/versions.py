"""The library versions a checkpoint or an evaluation run records (what made it, for reproduction)."""

from __future__ import annotations

import importlib
import platform

DEFAULT_LIBRARIES = ("torch", "transformers", "peft", "diffusers")


def library_versions(names: tuple[str, ...] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """Python's version and each importable library's ``__version__``; missing libraries are left out."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            continue
    return versions
