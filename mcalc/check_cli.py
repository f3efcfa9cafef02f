"""The `mcalc check` command (click). cli.py adds it with one line: `register(main)`.

    mcalc check "REQUEST" "CLAIM"       exit 0 the claim holds, 1 it does not, 2 bad input
    mcalc check --batch FILE|-          one `REQUEST ;; CLAIM` per line; exit: the worst

Options: the common ones (--layout, -t/--type, --method), --exact (the definition
method via SymPy decides; --method definition does the same), --format plain|json,
--seed N (the random points; the same seed gives the same points).

Output (stdout): plain — the verdict line (`holds: REQUEST ;; CLAIM  (symbolic)` or
`does not hold: REQUEST ;; CLAIM  — transposed (the denominator-layout form)`), then,
for a single check, the typing, layout, mcalc's own derivative, why, and the
counterexample; json — one object per request, one line each (non-finite numbers as
"nan", "inf", "-inf"). Bad input: a single check prints one line on stderr (under
--format json: an object with "error" on stdout) and exits 2; in a batch any failure of a
line gets that line's `error: ...` line (a JSON object with "error") and the batch goes
on, written line by line (mcalc.batch: bounded lines, bad UTF-8 reported, Ctrl-C exits
130 after the finished lines).

numpy and sympy are imported only when the command runs.
"""
from __future__ import annotations

import sys

import click

from mcalc.options import _error_line, common_options, guarded
from mcalc.errors import McalcError, visible


def register(main: click.Group) -> None:
    """Add the `check` command to the mcalc command group (idempotent)."""
    if "check" not in main.commands:
        main.add_command(check_command)


class _CheckCommand(click.Command):
    """Claims often start with a minus sign (`-inv(X)'@inv(X)'`): a token that starts
    with a single '-' and is not one of check's options is an argument, not an option."""

    VALUED = ("--layout", "-t", "--type", "--method", "--batch", "--format", "--seed")
    FLAGS = ("--exact", "--help", "-h")

    def parse_args(self, ctx, args):
        options, positional = [], []
        i = 0
        while i < len(args):
            a = args[i]
            name = a.split("=", 1)[0] if a.startswith("--") else a
            if a == "--":
                positional.extend(args[i + 1:])
                break
            if name in self.VALUED:
                options.append(a)
                if "=" not in a and i + 1 < len(args):
                    options.append(args[i + 1])
                    i += 1
            elif a in self.FLAGS or a.startswith("--") or (a.startswith("-t") and ":" in a):
                options.append(a)                  # unknown --options: click's own error
            else:
                positional.append(a)
            i += 1
        return super().parse_args(ctx, options + (["--"] + positional if positional else []))


@click.command("check", cls=_CheckCommand)
@click.argument("args", nargs=-1, metavar="REQUEST CLAIM")
@common_options
@click.option("--exact", is_flag=True,
              help="Decide by the definition method: every component at sizes 2 and 3, "
                   "differentiated and compared exactly with SymPy.")
@click.option("--batch", "batch", metavar="FILE|-", default=None,
              help="Check one 'REQUEST ;; CLAIM' per line of FILE ('-': stdin).")
@click.option("--format", "fmt", type=click.Choice(("plain", "json")), default="plain",
              show_default=True, help="Output format (json: one object per line).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random points and sizes of the numeric comparison.")
@guarded
def check_command(args, layout, types, method, exact, batch, fmt, seed):
    """Is CLAIM the derivative REQUEST asks for? (exit 0 yes, 1 no, 2 bad input)

    \b
      mcalc check "d/dx x'@A@x" "(A + A')@x" --layout denominator
      mcalc check --batch derivations.txt     (REQUEST ;; CLAIM per line)
    """
    from mcalc.checker import CheckResult, check
    from mcalc.printing.json_out import dumps
    if batch is not None:
        if args:
            raise McalcError("--batch reads REQUEST ;; CLAIM lines; give no REQUEST or "
                             "CLAIM arguments with it")
        sys.exit(_batch(batch, types, layout, method, exact, seed, fmt))
    if len(args) != 2:
        raise McalcError(f"check takes a REQUEST and a CLAIM (got {len(args)} argument"
                         f"{'s' * (len(args) != 1)}); or --batch FILE")
    try:
        result = check(args[0], args[1], types, layout, method, exact, seed)
    except Exception as e:
        if fmt != "json":
            raise
        result = CheckResult(args[0], args[1], None, error=_error_line(e))
    click.echo(dumps(result.as_dict()) if fmt == "json"
               else visible(result.text(), newlines=True))
    sys.exit(result.status)


def _batch(source: str, types, layout, method, exact, seed, fmt) -> int:
    """One `REQUEST ;; CLAIM` per line, answered as it is read (mcalc.batch); the lines
    share check's cache, so each request is derived once however many claims it has."""
    from mcalc.batch import run_batch
    from mcalc.checker import CheckResult, check
    from mcalc.printing.json_out import dumps
    cache: dict = {}

    def show(r: CheckResult) -> str:
        return dumps(r.as_dict()) if fmt == "json" else r.line()

    def answer(line: str) -> tuple[str, int]:
        request, sep, claim = line.partition(";;")
        if not sep:
            raise McalcError("expected REQUEST ;; CLAIM")
        r = check(request.strip(), claim.strip(), types, layout, method, exact, seed, cache)
        return show(r), r.status

    def failed(line: str, message: str) -> str:
        request, _, claim = line.partition(";;")
        return show(CheckResult(request.strip(), claim.strip(), None, error=message))

    if source == "-":
        return run_batch(sys.stdin, answer, failed, click.echo, printable=fmt == "json")
    try:
        f = open(source, "rb")
    except OSError as e:
        raise McalcError(f"cannot read {visible(source)}: {e.strerror or e}") from None
    with f:
        return run_batch(f, answer, failed, click.echo, printable=fmt == "json")
