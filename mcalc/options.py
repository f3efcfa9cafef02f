"""What every mcalc command shares: the common options and the one-line error guard.

Kept apart from cli.py so that the commands defined in other modules (check, repl) can
use them without importing the command group.
"""
from __future__ import annotations

import sys

import click

from mcalc.errors import McalcError


def fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def _error_line(e: Exception) -> str:
    """The one line that reports `e`: bad input, a limit hit, or a bug."""
    if isinstance(e, McalcError):
        return e.one_line()
    if isinstance(e, RecursionError):
        return "error: expression too deeply nested for mcalc"
    if isinstance(e, MemoryError):
        return "error: out of memory (the expression is too large)"
    detail = " ".join(str(e).split())                      # a bug: still one line
    return f"internal error: {type(e).__name__}: {detail} (please report this request)"


def guarded(fn):
    """Run a command body; bad input and internal failures become one line and exit 2."""
    import functools

    @functools.wraps(fn)
    def run(*a, **k):
        try:
            return fn(*a, **k)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:
            fail(_error_line(e))
    return run


def common_options(fn):
    fn = click.option("--method", type=click.Choice(("chain", "differential", "definition")),
                      default=None,
                      help="Derivation method to show (default: chain for vectors, "
                           "differential for scalar-by-matrix).")(fn)
    fn = click.option("-t", "--type", "types", multiple=True, metavar="DECL",
                      help="Declare types, e.g. -t 'w, x: vector(n); b: scalar' (repeatable).")(fn)
    fn = click.option("--layout", type=click.Choice(("numerator", "denominator")),
                      default="numerator", show_default=True,
                      help="Jacobian layout of the result.")(fn)
    return fn
