"""The mcalc command line (click). Exit status: 0 success / claim holds, 1 claim does not
hold, 2 bad input — always a one-line message, never a traceback; 130 interrupted (a
batch prints its finished lines first), 141 the output pipe was closed (quietly, as cat).
Batches (`diff -`, `check --batch`) run through mcalc.batch: one line out per request.

Heavy modules (rich, numpy, sympy) are imported only by the commands that need them, so
a plain call stays fast.
"""
from __future__ import annotations

import atexit
import functools
import gc
import os
import sys

# numpy (check, --method definition) works on tiny matrices here: one BLAS thread is
# plenty, and starting OpenBLAS's pool of threads was a third of a cold `mcalc check`
# (issue #16). The command line only: the Python API leaves its host's numpy alone.
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

# Start-up creates tens of thousands of objects that live as long as the process (click's
# and mcalc's modules, classes, functions): collecting while they are made finds no
# garbage and took about 3 ms of a cold call (issue #16). The collector waits until this
# module is imported; what start-up made is then frozen, never scanned again.
_collecting = gc.isenabled()
gc.disable()

import click  # noqa: E402

from mcalc import __version__  # noqa: E402
from mcalc.errors import McalcError, visible  # noqa: E402
from mcalc.options import (INTERRUPTED_STATUS, closed_pipe, common_options, fail,  # noqa: E402
                           guarded, pick_format)
from mcalc.repl import FORMATS  # noqa: E402 (one list of formats for diff and the repl)

BATCH_FORMATS = ("plain", "json", "numpy")      # one line per request (contract §3)
STANDALONE_FORMATS = ("latex", "html")          # the formats --standalone wraps

# At exit the interpreter's last garbage collection walks every object the call created
# (about 20 ms of a cold call, issue #6); frozen objects are skipped. Nothing observable
# changes: the modules are still torn down and the standard streams flushed.
atexit.register(gc.freeze)


class OneLineError(click.ClickException):
    """A click error (bad option, bad value) shown as one line, like every mcalc error."""

    def __init__(self, e: click.ClickException):
        message = " ".join(e.format_message().split())
        if isinstance(e, click.NoSuchOption) and not e.option_name.startswith("--"):
            message += " (a request that starts with '-' goes after --, as in mcalc -- '-x^2')"
        super().__init__(message)
        self.exit_code = e.exit_code

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class DefaultToDiff(click.Group):
    """`mcalc "REQUEST"` is `mcalc diff "REQUEST"`; click's own errors are one line."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["diff", *args]
        return super().parse_args(ctx, args)

    def main(self, *args, **kwargs):
        """Usage errors as one line (exit 2), like every other bad input; a bare `mcalc`
        prints the help (exit 2, as click does for a group without a command)."""
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            try:
                click.echo(e.ctx.get_help() if e.ctx else str(e))
            except BrokenPipeError:
                closed_pipe()
            sys.exit(2)
        except click.UsageError as e:
            fail(f"error: {e.format_message()}")
        except click.exceptions.Abort as e:
            if isinstance(e.__context__, KeyboardInterrupt):
                sys.exit(INTERRUPTED_STATUS)
            fail("error: aborted")
        except click.ClickException as e:
            fail(f"error: {e.format_message()}")

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            raise OneLineError(e) from None
        except BrokenPipeError:                  # `mcalc --help | head -1`
            closed_pipe()

    def invoke(self, ctx):
        """A closed output pipe ends quietly (exit 141, as cat); Ctrl-C exits 130."""
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            raise OneLineError(e) from None
        except BrokenPipeError:
            closed_pipe()
        except KeyboardInterrupt:
            sys.exit(INTERRUPTED_STATUS)


@click.group(cls=DefaultToDiff, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcalc")
def main():
    """mcalc — matrix calculus, derived step by step.

    \b
      mcalc "d/dw sum(w*x) + b"
      mcalc check "d/dx x'@A@x" "(A + A')@x" --layout denominator
    """
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))


def render(d, fmt: str, standalone: bool = False) -> str | None:
    """Render a derivation; rich prints straight to the terminal and returns None."""
    if fmt == "plain":
        from mcalc.printing.plain import render as plain
        return plain(d)
    if fmt == "json":
        from mcalc.printing.json_out import render as js
        return js(d)
    if fmt == "latex":
        from mcalc.printing.latex import derivation_to_latex
        return derivation_to_latex(d, standalone=standalone)
    if fmt == "numpy":
        from mcalc.printing.numpy_code import to_numpy
        names = {e: n for n, e in d.where}
        return to_numpy(d.result if d.result is not None else d.expr, d.dims, names, d.types)
    if fmt == "markdown":
        from mcalc.printing.markdown import render as markdown
        return markdown(d)
    if fmt == "html":
        from mcalc.printing import html
        return html.standalone(d) if standalone else html.render(d)
    from mcalc.printing.rich_view import render as rich
    rich(d)
    return None


def _derive(request: str, types, layout, method):
    from mcalc.pipeline import derive
    return derive(request, types, layout, method)


@main.command()
@click.argument("request")
@common_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: rich on a terminal, plain when piped).")
@click.option("--latex", "latex_flag", is_flag=True, help="Same as --format latex.")
@click.option("--standalone", is_flag=True,
              help="Wrap LaTeX (or HTML) output in a complete document.")
@guarded
def diff(request, layout, types, method, fmt, latex_flag, standalone):
    """Derive REQUEST step by step (REQUEST '-' reads one request per line from stdin)."""
    if request == "-" and not fmt and not latex_flag:
        fmt = "plain"                            # one line per request, even on a terminal
    fmt = pick_format(fmt, latex_flag)
    if standalone and fmt not in STANDALONE_FORMATS:
        raise click.UsageError(f"--standalone goes with --format "
                               f"{' or '.join(STANDALONE_FORMATS)}, not {fmt}")
    if request == "-":
        if fmt not in BATCH_FORMATS:
            raise click.UsageError(f"batch mode ('diff -') writes one line per request: "
                                   f"--format {', '.join(BATCH_FORMATS)}, not {fmt}")
        sys.exit(_batch_diff(sys.stdin, types, layout, method, fmt))
    out = render(_derive(request, types, layout, method), fmt, standalone)
    if out is not None:
        click.echo(visible(out.rstrip("\n"), newlines=True))    # the request, echoed


def _batch_diff(stream, types, layout, method, fmt) -> int:
    """One output line per request line; the exit status is the worst (mcalc.batch)."""
    from mcalc.batch import run_batch
    from mcalc.pipeline import derive
    from mcalc.printing.json_out import dumps
    from mcalc.printing.json_out import render as json_line
    from mcalc.printing.plain import one_line

    # the printer picked once (render() imports it at every call); a plain line is the
    # result alone: no steps worked out
    show = one_line if fmt == "plain" else json_line if fmt == "json" else \
        (lambda d: render(d, fmt))
    steps = fmt != "plain"

    def answer(line: str) -> tuple[str, int]:
        return show(derive(line, types, layout, method, steps)), 0

    def failed(line: str, message: str) -> str:
        return (dumps({"request": line, "error": message}) if fmt == "json"
                else f"{line}  =>  {message}")
    # color=True: click would otherwise search every line written to a file or a pipe for
    # ANSI escape sequences to strip (a fifth of a JSON line's cost of writing); there are
    # none: each line is printable (escaped by run_batch, or JSON's own escapes)
    return run_batch(stream, answer, failed, functools.partial(click.echo, color=True),
                     printable=fmt == "json")


@main.command()
@click.argument("expression")
@click.option("-t", "--type", "types", multiple=True, metavar="DECL",
              help="Declare types, e.g. -t 'A: matrix(m, n)' (repeatable).")
@click.option("--format", "fmt", type=click.Choice(("plain", "json")), default="plain",
              show_default=True, help="Output format.")
@guarded
def shape(expression, types, fmt):
    """Type-check EXPRESSION and print the typing and its shape."""
    from mcalc.pipeline import typed
    from mcalc.printing.plain import typing_text
    from mcalc.printing.text import to_text
    from mcalc.types import describe
    req, body, _, typing = typed(expression, types)
    if req.wrt:
        raise McalcError("shape takes an expression, not a derivative request", 1)
    if fmt == "json":
        from mcalc.printing.json_out import dumps
        click.echo(dumps({"expression": to_text(body), "types": typing.as_strings(),
                          "shape": list(body.shape), "kind": describe(body.shape)}))
    else:
        click.echo(f"typing: {typing_text(typing.as_strings())}")
        click.echo(f"{to_text(body)} : {describe(body.shape)}  [{body.shape[0]}×{body.shape[1]}]")


@main.command()
@click.option("--format", "fmt", type=click.Choice(("plain", "json")), default="plain",
              show_default=True, help="Output format.")
def rules(fmt):
    """List the documented rules the engine applies, with their sources."""
    from mcalc.rules import RULES
    from mcalc.simplify import REWRITES
    if fmt == "json":
        from mcalc.printing.json_out import dumps
        click.echo(dumps([{"name": r.name, "operator": r.op, "source": r.source,
                           "formula": r.formula, "shape": r.shape} for r in RULES]
                         + [{"name": n, "operator": "simplify", "source": src,
                             "formula": f, "shape": "="} for n, f, src in REWRITES]))
        return
    seen = set()
    click.echo("derivative rules")
    for r in RULES:
        key = (r.name, r.formula)
        if key in seen:
            continue
        seen.add(key)
        click.echo(f"  {r.name:<34} {r.formula}    [{r.source}]")
    click.echo("\nsimplification rewrites")
    for name, formula, src in REWRITES:
        click.echo(f"  {name:<34} {formula}    [{src}]")
    click.echo("\nchain rules")
    for name, formula in CHAIN_RULES:
        click.echo(f"  {name:<34} {formula}")
    from mcalc.rules import KEY
    click.echo("\n" + KEY)


CHAIN_RULES = (
    ("single-variable chain rule", "dy/dx = dy/du du/dx  [P&H §4.5.1]"),
    ("total-derivative chain rule", "dy/dx = Σ ∂y/∂uᵢ duᵢ/dx over every path  [P&H §4.5.2]"),
    ("vector chain rule", "∂f/∂x = ∂f/∂g ∂g/∂x (Jacobians)  [P&H §4.5.3; 000 (Chain Rule for Vector-to-Vector Derivatives)]"),
    ("differential method", "dL = G : dX  =>  ∂L/∂X = G; dF = A dX B  =>  kron(B', A)  [M&N ch. 9; 003]"),
    ("definition method", "component by component, ∂fᵢ/∂xⱼ  [000; P&H §4]"),
)


from mcalc.check_cli import register as _register_check; _register_check(main)  # noqa: E402
from mcalc.repl import register as _register_repl; _register_repl(main, render)  # noqa: E402

gc.freeze()
if _collecting:
    gc.enable()

if __name__ == "__main__":
    main()
