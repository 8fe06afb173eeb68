"""ComfyUI-Manager's rules for finding a pack's node IDs, for the discovery test.

Manager builds its "install missing nodes" map (``extension-node-map.json``) with the ``scanner.py``
at the root of its repository (ltdrdata/ComfyUI-Manager; it is not part of the ``comfyui-manager``
package on PyPI, and importing it clones repositories, so it cannot be called from a test). For each
pack it walks every ``.py`` file (skipping ``.git`` and ``__pycache__``) and collects:

- the keys of a module-level assignment of a dict display to NODE_CLASS_MAPPINGS (``ast``);
- subscripted assignments to a name ending in _CLASS_MAPPINGS, at the very start of the file (its
  regexes have no MULTILINE flag, so ``^`` is the file's start);
- the first argument of ``register_node`` decorators;
- quoted keys inside a dict display assigned to, or passed to ``update`` of, a name ending in
  _CLASS_MAPPINGS, anywhere in the text, comments and strings included (regex);

then adds every key of a ``node_list.json`` at the pack's root. This module restates those rules
(read from its scanner, 2025) in our own words; it is test code, not shipped. Its own source spells
the patterns in pieces, so that scanning the pack does not find them here.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

_NAME = "_CLASS" + "_MAPPINGS"
_LITERAL = re.compile(_NAME + r"\s*=\s*" + "{([^}]*)}", re.MULTILINE | re.DOTALL)
_UPDATE = re.compile(_NAME + r".update\s*\(" + "{([^}]*)}" + r"\)")
_SUBSCRIPT_DOUBLE = re.compile(r"^[^=]*" + _NAME + r'\["(.*?)"\]')
_SUBSCRIPT_SINGLE = re.compile(r"^[^=]*" + _NAME + r"\['(.*?)'\]")
_REGISTER = re.compile(r"@register" + r'_node\("(.+)",\s*".+"\)')
_KEYS = (re.compile(r"\"([^\"]*)\"\s*:\s*([^,\n]*)"), re.compile(r"'([^']*)'\s*:\s*([^,\n]*)"))


def _literal_mapping_keys(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == "NODE_CLASS_MAPPINGS"
        ):
            if not isinstance(statement.value, ast.Dict):
                return set()  # Manager's code fails on a non-dict and keeps nothing
            return {k.value.strip() for k in statement.value.keys if isinstance(k, ast.Constant)}
    return set()


def scan_file(path: Path) -> set[str]:
    code = path.read_text(encoding="utf-8", errors="replace")
    found = _literal_mapping_keys(code)
    for pattern in (_SUBSCRIPT_DOUBLE, _SUBSCRIPT_SINGLE, _REGISTER):
        found.update(k.strip() for k in pattern.findall(code))
    for body in _LITERAL.findall(code):
        for keys in _KEYS:
            found.update(k.strip() for k, _ in keys.findall(body))
        update = _UPDATE.search(code)
        if update:
            found.update(k.strip() for k, _ in _KEYS[0].findall(update.group(1)))
    return found


def scan_pack(root: Path, files: list[str] | None = None) -> set[str]:
    """Every node ID Manager would attribute to the pack checked out at ``root``.

    ``files``: the paths (relative to ``root``) a clone holds, when ``root`` is a working copy with
    ignored folders (``.cache`` holds whole ComfyUI trees a clone never has); default: walk it all.
    """
    if files is None:
        files = [
            os.path.relpath(os.path.join(folder, name), root)
            for folder, _dirs, names in os.walk(root)
            if ".git" not in folder and "__pycache__" not in folder
            for name in names
        ]
    found: set[str] = set()
    for rel in files:
        if rel.endswith(".py") and (root / rel).is_file():
            found |= scan_file(root / rel)
    node_list = root / "node_list.json"
    if node_list.is_file():
        found.update(k.strip() for k in json.loads(node_list.read_text(encoding="utf-8")))
    return found
