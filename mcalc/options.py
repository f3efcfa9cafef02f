"""What every mcalc command shares: the common options and the one-line error guard.

Kept apart from cli.py so that the commands defined in other modules (check, repl) can
use them without importing the command group.
"""
from __future__ import annotations

import os
import sys

import click

from mcalc.errors import McalcError, visible

BROKEN_PIPE_STATUS = 141        # 128 + SIGPIPE: what a shell reports for `cat` in `cat | head`
INTERRUPTED_STATUS = 130        # 128 + SIGINT (the contract)


def fail(message: str) -> None:
    click.echo(visible(message), err=True)
    sys.exit(2)


def closed_pipe() -> None:
    """The reader of our output went away (`mcalc ... | head -1`): stop quietly, as cat
    does — nothing on stderr, exit status 141."""
    try:                    # what is still buffered goes nowhere, so the final flush is quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(BROKEN_PIPE_STATUS)


def pick_format(fmt: str | None, latex_flag: bool = False) -> str:
    """The output format: --latex, else --format, else rich on a terminal and plain when
    piped. --latex with another --format is a usage error (exit 2), not a silent choice."""
    if latex_flag:
        if fmt not in (None, "latex"):
            raise click.UsageError(f"--latex is --format latex; it conflicts with "
                                   f"--format {fmt}")
        return "latex"
    if fmt:
        return fmt
    return "rich" if sys.stdout.isatty() else "plain"


def _error_line(e: Exception) -> str:
    """The one line that reports `e`: bad input, a limit hit, or a bug."""
    if isinstance(e, McalcError):
        return e.one_line()
    if isinstance(e, RecursionError):
        return "error: expression too deeply nested for mcalc"
    if isinstance(e, MemoryError):
        return "error: out of memory (the expression is too large)"
    if isinstance(e, OverflowError) or (isinstance(e, ValueError)
                                           and "integer string conversion" in str(e)):
        return "error: a number too large for mcalc (the expression's constants overflow)"
    detail = visible(" ".join(str(e).split()))            # a bug: still one line
    return f"internal error: {type(e).__name__}: {detail} (please report this request)"


def guarded(fn):
    """Run a command body; bad input and internal failures become one line and exit 2
    (a closed output pipe is not a failure of the request: the command group handles it)."""
    import functools

    @functools.wraps(fn)
    def run(*a, **k):
        try:
            return fn(*a, **k)
        except (click.exceptions.Exit, click.ClickException, SystemExit, BrokenPipeError):
            raise
        except Exception as e:
            fail(_error_line(e))
    return run


def common_options(fn):
    fn = click.option("--method", type=click.Choice(("chain", "differential", "definition")),
                      default=None,
                      help="Derivation method to show (default: differential by a matrix, "
                           "chain otherwise).")(fn)
    fn = click.option("-t", "--type", "types", multiple=True, metavar="DECL",
                      help="Declare types, e.g. -t 'w, x: vector(n); b: scalar' (repeatable).")(fn)
    fn = click.option("--layout", type=click.Choice(("numerator", "denominator")),
                      default="numerator", show_default=True,
                      help="Jacobian layout of the result.")(fn)
    return fn
