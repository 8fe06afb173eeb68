"""Write ``node_list.json``: the pack's node IDs for ComfyUI-Manager, from the node declarations.

    .venv/bin/python -m devkit.node_list          # rewrite node_list.json
    .venv/bin/python -m devkit.node_list --check  # exit 1 if it is out of date

ComfyUI-Manager's scanner cannot see computed mappings or V3 extensions: it reads a literal
``NODE_CLASS_MAPPINGS = {...}`` or a ``node_list.json`` at the pack's root (ID -> description) and
offers "install missing nodes" for the IDs it found. The file is generated from
``mindedit_core.node_specs`` so it never drifts from the nodes ComfyUI loads (tested).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mindedit_core.node_specs import NODE_SPECS

REPO_ROOT = Path(__file__).resolve().parents[1]
NODE_LIST = REPO_ROOT / "node_list.json"


def node_list() -> dict[str, str]:
    return {spec.node_id: spec.display_name for spec in NODE_SPECS}


def render() -> str:
    return json.dumps(node_list(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if node_list.json is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not NODE_LIST.is_file() or NODE_LIST.read_text() != text:
            print(f"{NODE_LIST} is out of date: run python -m devkit.node_list", file=sys.stderr)
            return 1
        return 0
    NODE_LIST.write_text(text)
    print(f"wrote {NODE_LIST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
