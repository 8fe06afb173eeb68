"""Rewrite the family tables in README.md and docs/MODELS.md from the family objects.

    python -m devkit.family_docs          # rewrite the blocks
    python -m devkit.family_docs --check  # exit 1 when a block is stale

The blocks sit between ``<!-- families:NAME -->`` markers (see `mindedit_core.mllm.families.texts`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mindedit_core.mllm.families.texts import GENERATED_BLOCKS, render

REPO = Path(__file__).resolve().parents[1]


def stale_files(root: Path = REPO, *, write: bool = False) -> list[str]:
    """The files whose family blocks differ from the family table (rewritten when ``write``)."""
    stale = []
    for name, blocks in GENERATED_BLOCKS.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        fresh = render(text, blocks)
        if fresh != text:
            stale.append(name)
            if write:
                path.write_text(fresh, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.family_docs", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_files(write=not args.check)
    for name in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
