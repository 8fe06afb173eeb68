"""Command line: ``python -m training.evaluate generate|score|report|table2`` (see docs/EVALUATION.md)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from training.cli_errors import run_command

from .cli_generate import add_generate_parser, cmd_generate
from .cli_score import add_score_parser, cmd_score
from .table2 import add_table2_parser, cmd_table2


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="Markdown report + plots from scored runs")
    p.add_argument("--runs", nargs="+", required=True, help="scored run folders")
    p.add_argument("--out", required=True, help="report folder (report.md, plots/)")
    p.add_argument("--title", default="MIND-Edit evaluation")
    p.add_argument("--grid-items", type=int, default=4)


def cmd_report(args) -> int:
    from .report import build_report

    path = build_report(args.runs, args.out, title=args.title, grid_items=args.grid_items)
    print(f"Report written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_generate_parser(sub)
    add_score_parser(sub)
    _add_report(sub)
    add_table2_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    handlers = {"generate": cmd_generate, "score": cmd_score, "report": cmd_report, "table2": cmd_table2}
    # Errors users can fix (missing files, wrong options, a run folder with other settings): one clear
    # line instead of a traceback; -v shows the traceback too.
    return run_command(lambda: handlers[args.command](args), verbose=args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
