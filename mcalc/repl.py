"""`mcalc repl`: an interactive session in which declarations persist.

    mcalc> :type w, x: vector(n)
    mcalc> d/dw sum(w*x) + b
    ...
    mcalc> where A: matrix(m, n)        (declares only)
    mcalc> d/dx x'@A'@A@x               (w, x and A are still declared)

Each request line is derived exactly as `mcalc diff` derives it, and printed through the
same renderer. Declarations made by `-t/--type`, by `:type DECL`, by a bare
`where DECL` line or by the `where` clause of a request that succeeded are remembered and
apply to later lines (a later declaration of a name replaces the earlier one; a line's
own `where` clause wins over the session's). Only the remembered names that a line
actually uses are passed to it, so its printed typing and its errors are those of
`mcalc diff` run with just the declarations it needs.

With stdin a terminal: a `mcalc> ` prompt, a one-line banner, line editing and history
(readline, history in ~/.mcalc_history, written with mode 0600; a history path that is
not a regular file — a symlink, a FIFO — is left alone with a warning, and an unreadable
or corrupt history is ignored) when the readline module is available. With stdin
not a terminal: no prompt, no banner, no acknowledgements — one result per request, so
`printf 'd/dx sin(x^2)\\n' | mcalc repl --format plain` prints exactly what
`mcalc diff 'd/dx sin(x^2)' --format plain` prints. Errors print their one line and the
session goes on: on stderr, prefixed by the input line number when not interactive, or
under --format json on stdout as {"request": ..., "error": ...} (as `mcalc diff -`
does). Any failure of a line (bad UTF-8, a line over 1 MB, MemoryError, a bug) is that
line's error; control characters in echoed text are escaped. The exit status at end of
input or `:quit` is 0; Ctrl-C on piped input ends the session with status 130.

This module imports only the standard library at load time (no click, rich, readline or
the engine), so registering the command from mcalc.cli costs next to nothing; mcalc.cli
hands it the renderer when it registers the command (no import back into mcalc.cli).
"""
from __future__ import annotations

import os
import re
import sys

PROMPT = "mcalc> "
HISTORY_FILE = "~/.mcalc_history"
HISTORY_LENGTH = 1000
LAYOUTS = ("numerator", "denominator")
FORMATS = ("rich", "plain", "latex", "json", "numpy", "markdown", "html")   # as diff's
METHODS = ("chain", "differential", "definition")

HELP = """\
Enter a request, e.g.  d/dw sum(w*x) + b   or   d/dx x'@A@x where A: matrix(n, n)
(the same language as `mcalc diff`; no derivative prefix shows the expression's shape).

  where DECLS             declare only, e.g.  where w, x: vector(n); b: scalar
  :type DECLS             the same
  :types                  show the current declarations
  :forget [NAME ...]      forget the named declarations (all of them with no names)
  :layout [numerator|denominator]          set (or show) the layout
  :format [rich|plain|latex|json|numpy|markdown|html]   set (or show) the output format
  :method [chain|differential|definition|auto]   set (or show) the derivation method
  :help                   this text
  :quit                   leave (also :q, :exit, Ctrl-D)

Declarations persist: those given with -t/--type, :type, a bare `where` line, or the
`where` clause of a request that succeeded apply to every later line; declaring a name
again replaces its type."""

COMMANDS = (":type", ":types", ":forget", ":layout", ":format", ":method", ":help",
            ":quit", ":q", ":exit")

# for tab completion only
FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs",
             "sign", "max", "min", "sum", "mean", "dot", "norm", "logsumexp", "softmax",
             "tr", "trace", "det", "logdet", "inv", "diag", "kron", "vec", "ones", "eye",
             "transpose", "where", "scalar", "vector", "matrix", "symmetric")

_WHERE_ONLY = re.compile(r"\s*where(?![\w'])", re.UNICODE)


def _default_echo(message: str = "", err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


def _type_string(kind: str, dims: tuple[str, ...]) -> str:
    return f"{kind}({', '.join(dims)})" if dims else kind


def _names_in(node, out: set[str]) -> set[str]:
    """Every identifier in a syntax tree (iteratively: deep input must not recurse)."""
    from mcalc.syntax import Syntax
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Syntax):
            if n.op == "name":
                out.add(n.text)
            stack.extend(n.args)
        elif isinstance(n, (tuple, list)):
            stack.extend(n)
    return out


def _no_definitions(text: str, offset: int) -> None:
    """A bare `where` line declares; a definition (`t1 = ...`) belongs to the request it
    names a part of, so it is an error that says where to write it."""
    from mcalc.errors import McalcError
    m = re.search(r"(?:^|;)\s*([^\W\d]\w*)\s*=", text)
    if m:
        raise McalcError(f"a bare 'where' line only declares; write the definition of "
                         f"'{m.group(1)}' in the where clause of the request that uses it",
                         offset + m.start(1) + 1)


class Quit(Exception):
    """Raised by :quit."""


class Session:
    """The state of one REPL session and the handling of one input line.

    `render(derivation, fmt)` returns the text to print, or None when it printed itself
    (rich); `echo(text, err=False)` prints one line. Neither depends on click.
    """

    def __init__(self, render, echo=None, *, layout: str = "numerator",
                 fmt: str = "plain", method: str | None = None, types=(),
                 interactive: bool = False):
        self.render = render
        self.echo = echo or _default_echo
        self.layout = layout
        self.fmt = fmt
        self.method = method
        self.interactive = interactive
        self.decls: dict[str, str] = {}          # name -> "vector(n)", in declaration order
        self.lineno = 0
        for t in types or ():
            self.declare_text(t)

    # ---- declarations -------------------------------------------------------------

    def _remember(self, decls) -> list[str]:
        names = []
        for d in decls:
            for name in d.names:
                self.decls.pop(name, None)       # a redeclared name moves to the end
                self.decls[name] = _type_string(d.kind, tuple(d.dims))
                names.append(name)
        return names

    def declare_text(self, text: str, offset: int = 0) -> list[str]:
        """Parse and validate DECLS (as in `where DECLS`) and remember them; `offset` is
        where `text` starts in the input line, so that error columns point into the line."""
        from mcalc.errors import McalcError
        from mcalc.parser import parse_decls
        from mcalc.build import infer
        try:
            decls = parse_decls(text)
            infer([], decls, text)               # reserved names, zero dimensions, ...
        except McalcError as e:
            if e.column and offset:
                e.column += offset
            raise
        return self._remember(decls)

    def decl_options(self, used: set[str]) -> tuple[str, ...]:
        return tuple(f"{n}: {t}" for n, t in self.decls.items() if n in used)

    def types_text(self) -> str:
        if not self.decls:
            return "(no declarations)"
        from mcalc.printing.plain import typing_text
        return typing_text(self.decls)

    # ---- one line -----------------------------------------------------------------

    def say(self, text: str) -> None:
        """An acknowledgement: shown in an interactive session only."""
        if self.interactive:
            self.echo(text)

    def error(self, message: str, text: str = "") -> None:
        """One line: on stdout as a JSON object under --format json (as `mcalc diff -`
        does, so that a script gets one object per request), else on stderr, prefixed by
        the line number when the input is not a terminal."""
        from mcalc.errors import visible
        if self.fmt == "json":
            from mcalc.printing.json_out import dumps
            self.echo(dumps({"request": text, "error": message}))
            return
        if not self.interactive:
            message = f"line {self.lineno}: {message}"
        self.echo(visible(message), err=True)

    def handle(self, line: str, unreadable: str | None = None) -> None:
        """Handle one input line (`unreadable`: why it could not be read, from
        mcalc.batch); raises Quit on :quit. Errors are printed, not raised; a closed
        output pipe and Ctrl-C on piped input are the caller's."""
        from mcalc.errors import McalcError
        from mcalc.options import _error_line
        self.lineno += 1
        text = line.strip()
        if unreadable:
            self.error(unreadable, text)
            return
        if not text or text.startswith("#"):
            return
        try:
            if text.startswith(":") or text in ("help", "?", "quit", "exit"):
                self.command(text, line)
            elif _WHERE_ONLY.match(line):
                end = _WHERE_ONLY.match(line).end()
                body = line[end:].rstrip()
                if not body.strip():
                    raise McalcError("'where' needs declarations, e.g. where x: vector(n)",
                                     len(line.rstrip()) + 1)
                _no_definitions(body, end)
                names = self.declare_text(body, end)
                self.say(f"declared {self._show(names)}")
            else:
                self.request(text)
        except (Quit, BrokenPipeError):
            raise
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.echo("interrupted", err=True)
        except Exception as e:                   # any failure is this line's; the session goes on
            self.error(_error_line(e), text)

    def _show(self, names) -> str:
        from mcalc.printing.plain import typing_text
        return typing_text({n: self.decls[n] for n in dict.fromkeys(names)})

    def request(self, text: str) -> None:
        from mcalc.pipeline import derive
        from mcalc.parser import parse_request
        req = parse_request(text)
        used = _names_in((req.body, [d.body for d in req.defs]), set())
        for group in req.wrt:
            used.update(group)
        used.difference_update(n for d in req.decls for n in d.names)   # its where wins
        d = derive(text, self.decl_options(used), self.layout, self.method)
        out = self.render(d, self.fmt)
        if out is not None:
            from mcalc.errors import visible
            self.echo(visible(out.rstrip("\n"), newlines=True))
        if self.interactive and self.fmt in ("rich", "plain", "latex"):
            self.echo("")                        # a blank line before the next prompt
        if req.decls:
            self._remember(req.decls)

    # ---- :commands ----------------------------------------------------------------

    def command(self, text: str, line: str = "") -> None:
        from mcalc.errors import McalcError
        line = line or text
        head = re.match(r"\s*(\S+)\s*", line)
        word, arg = head.group(1), line[head.end():].rstrip()
        arg_column = head.end()                  # where arg starts in the line (0-based)
        word = word.lower()
        if word in (":quit", ":q", ":exit", "quit", "exit"):
            raise Quit
        if word in (":help", ":h", ":?", "help", "?"):
            self.echo(HELP)
        elif word == ":types" or (word == ":type" and not arg):
            if arg:
                raise McalcError(":types takes no argument (to declare, use :type DECLS)")
            self.echo(self.types_text())
        elif word == ":type":
            names = self.declare_text(arg, arg_column)
            self.say(f"declared {self._show(names)}")
        elif word == ":forget":
            if not arg:
                self.decls.clear()
                self.say("forgot all declarations")
                return
            names = [n for n in re.split(r"[\s,;]+", arg) if n]
            unknown = [n for n in names if n not in self.decls]
            if unknown:
                raise McalcError(f"not declared: {', '.join(unknown)}")
            for n in names:
                del self.decls[n]
            self.say(f"forgot {', '.join(names)}")
        elif word == ":layout":
            self.layout = self._choose("layout", arg, LAYOUTS, self.layout)
        elif word == ":format":
            self.fmt = self._choose("format", arg, FORMATS, self.fmt)
        elif word == ":method":
            current = self.method or "auto"
            chosen = self._choose("method", arg, METHODS + ("auto",), current)
            self.method = None if chosen == "auto" else chosen
        else:
            raise McalcError(f"unknown command '{word}' (:help lists the commands)")

    def _choose(self, what: str, arg: str, choices, current: str) -> str:
        from mcalc.errors import McalcError
        if not arg:
            self.echo(f"{what}: {current}")
            return current
        matches = [c for c in choices if c.startswith(arg.lower())]
        if arg.lower() in choices:
            matches = [arg.lower()]
        if len(matches) != 1:
            raise McalcError(f"unknown {what} '{arg}' (one of: {', '.join(choices)})")
        self.say(f"{what}: {matches[0]}")
        return matches[0]

    # ---- completion -----------------------------------------------------------------

    def complete(self, text: str, state: int, line: str = ""):
        if line.lstrip().startswith(":") and " " not in line.lstrip():
            words = COMMANDS
        elif line.lstrip().startswith((":layout", ":format", ":method")):
            words = LAYOUTS + FORMATS + METHODS + ("auto",)
        else:
            words = FUNCTIONS + tuple(self.decls)
        hits = sorted({w for w in words if w.startswith(text)})
        return hits[state] if state < len(hits) else None


# ---- the loops --------------------------------------------------------------------------

def run_stream(session: Session, stream) -> int:
    """Read requests line by line from `stream` (not a terminal): no prompt, no banner;
    lines bounded and decoded as for `mcalc diff -`."""
    from mcalc.batch import read_lines
    from mcalc.options import INTERRUPTED_STATUS
    try:
        for line in read_lines(stream):
            session.handle(line.text, line.error)
    except Quit:
        pass
    except KeyboardInterrupt:
        return INTERRUPTED_STATUS
    return 0


def _history_path() -> str | None:
    """The history file, or None (with a warning) when the path is something other than
    a regular file: a FIFO would hang the start, a symlink would be rewritten through."""
    import stat
    path = os.path.expanduser(HISTORY_FILE)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        print(f"warning: {path} is not a regular file; history is not kept", file=sys.stderr)
        return None
    return path


def _setup_readline(session: Session):
    """Line editing, history and completion; (readline, history path or None), readline
    None when the module is not available."""
    try:
        import readline
    except Exception:                            # ImportError, or a broken build
        return None, None
    path = _history_path()
    try:
        readline.set_history_length(HISTORY_LENGTH)
        try:
            if path:
                readline.read_history_file(path)
        except (OSError, ValueError):            # unreadable or corrupt: start afresh
            pass
        readline.set_completer(
            lambda text, state: session.complete(text, state, readline.get_line_buffer()))
        readline.set_completer_delims(" \t\n()[],;@*+-/^=<>'")
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
    except Exception:
        pass
    return readline, path


def _save_history(readline, path: str | None) -> None:
    """Written to a private temporary file (mode 0600) that then replaces the history:
    never world-readable, never through a link planted meanwhile."""
    if readline is None or path is None:
        return
    import tempfile
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mcalc_history.", dir=os.path.dirname(path) or ".")
        os.close(fd)
        readline.write_history_file(tmp)
        os.replace(tmp, path)
    except Exception:                            # a read-only home, a full disk: no history
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def run_interactive(session: Session, banner: str | None = None) -> int:
    """The terminal loop: prompt, readline editing and history, Ctrl-C cancels a line."""
    from mcalc.batch import decode
    readline, history = _setup_readline(session)
    if banner:
        session.echo(banner)
    try:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                session.echo("")                 # leave the shell prompt on a new line
                return 0
            except KeyboardInterrupt:
                session.echo("")
                continue
            except UnicodeDecodeError as e:      # bytes not UTF-8, with strict decoding
                line = e.object.decode("utf-8", "surrogateescape")
            try:
                session.handle(*decode(line))    # bytes not UTF-8 reported as in a batch
            except Quit:
                return 0
    finally:
        _save_history(readline, history)


def run(session: Session, stdin=None, banner: str | None = None) -> int:
    stdin = stdin or sys.stdin
    try:
        tty = stdin.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and stdin is sys.stdin:
        session.interactive = True
        return run_interactive(session, banner)
    session.interactive = False
    return run_stream(session, stdin)


# ---- the click command ------------------------------------------------------------------

def register(group, render) -> None:
    """Add the `repl` command to the click group `group` (mcalc.cli.main), printing
    derivations with `render(derivation, fmt)` (mcalc.cli.render)."""
    import click
    from mcalc.options import common_options, guarded, pick_format

    @group.command("repl")
    @common_options
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                  help="Output format (default: rich on a terminal, plain when piped).")
    @guarded
    def repl(layout, types, method, fmt):
        """Interactive session: declarations persist across lines.

        \b
        Reads requests one per line (no prompt when stdin is not a terminal, so scripts
        can drive it). :type DECLS or a bare `where DECLS` declares; :types shows the
        declarations; :layout, :format and :method change the settings; :help; :quit
        or Ctrl-D leaves.
        """
        from mcalc import __version__
        session = Session(render, click.echo, layout=layout, fmt=pick_format(fmt),
                          method=method, types=types)
        banner = (f"mcalc {__version__} — matrix calculus. :help for commands, "
                  ":quit or Ctrl-D to leave.")
        sys.exit(run(session, sys.stdin, banner))
