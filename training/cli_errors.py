"""One clear line instead of a traceback for the errors a user can fix (a wrong path, a bad option, a
run folder made with other settings), shared by every command of the training package
(``training.train``, ``refine_data``, ``build_targets``, ``training.data.split``, ``training.evaluate``).
The messages themselves say what to do; ``-v`` / ``--verbose`` shows the traceback too."""

from __future__ import annotations

import sys
from collections.abc import Callable

# What our own checks raise for fixable input. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, KeyError, RuntimeError)


def run_command(command: Callable[[], int], *, verbose: bool = False) -> int:
    """``command()``'s exit status; a user error prints ``error: <Type>: <message>`` and returns 2."""
    try:
        return command()
    except USER_ERRORS as err:
        if verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {type(err).__name__}: {message}", file=sys.stderr)
        return 2


def add_verbose_flag(parser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
