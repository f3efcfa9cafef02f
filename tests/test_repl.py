"""`mcalc repl`: piped (scripts drive it line by line) and on a real pseudo-terminal.

The tests pass whether or not mcalc.cli registers the command itself yet: when it does
not, they register it here and run it through a small `python -c` launcher.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from mcalc.cli import main
from mcalc.repl import PROMPT, Session, run_stream
from installed import installed_mcalc

TIMEOUT = 60


def mcalc_argv() -> list[str]:
    return [installed_mcalc()]


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e.update(HOME=str(tmp_path), NO_COLOR="1", TERM="dumb", COLUMNS="100",
             PYTHONIOENCODING="utf-8")
    e.pop("FORCE_COLOR", None)
    return e


def run(args, stdin_text="", env=None):
    return subprocess.run(mcalc_argv() + list(args), input=stdin_text, capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=TIMEOUT)


def diff_stdout(request: str, *options: str) -> str:
    """What `mcalc diff REQUEST OPTIONS` prints on stdout (in-process: fast; the first
    test compares against a real `mcalc diff` process)."""
    from click.testing import CliRunner
    r = CliRunner().invoke(main, ["diff", request, *options])
    assert r.exit_code == 0, r.output
    return r.stdout


def repl(lines, *options, env=None):
    return run(["repl", *options], "".join(f"{line}\n" for line in lines), env)


# ---- (a) piped --------------------------------------------------------------------------

def test_single_request_prints_exactly_what_diff_prints(env):
    r = run(["repl", "--format", "plain"], "d/dx sin(x^2)\n", env)
    d = run(["diff", "d/dx sin(x^2)", "--format", "plain"], "", env)
    assert d.returncode == 0 and d.stdout.strip()
    assert r.returncode == 0, r.stderr
    assert r.stdout == d.stdout
    assert r.stderr == ""


REQUESTS = ["d/dx sin(x^2)", "d/dw sum(w*x) + b", "d/dx x'@A@x", "A@x",
            "d/dX tr(X'@A@X)", "d/dx softmax(x) where x: vector(k)"]


@pytest.mark.parametrize("fmt", ["plain", "json", "latex", "numpy", "markdown", "html"])
def test_piped_session_is_the_concatenation_of_diff_outputs(env, fmt):
    r = repl(REQUESTS, "--format", fmt, env=env)
    assert r.returncode == 0, r.stderr
    expected = "".join(diff_stdout(q, "--format", fmt) for q in REQUESTS)
    assert r.stdout == expected
    assert PROMPT.strip() not in r.stdout and "Ctrl-D" not in r.stdout   # no prompt/banner


def test_options_apply_as_for_diff(env):
    q = "d/dx x'@A@x"
    opts = ["--layout", "denominator", "-t", "A: symmetric(n)", "--method", "chain",
            "--format", "plain"]
    r = repl([q], *opts, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == diff_stdout(q, *opts)
    assert "2*A@x" in r.stdout


def test_type_command_persists(env):
    r = repl([":type x: vector(n)", "d/dx sum(x)"], "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    (out,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert out["result"] == "ones(n)'"
    assert out["types"] == {"x": "vector(n)"}


def test_declarations_persist_across_lines(env):
    lines = [
        ":type x: vector(k)",                       # :type
        "d/dx sum(x)",                              # -> ones(k)'
        "where A: symmetric(k)",                    # a bare where line only declares
        "d/dx x'@A@x",                              # uses both: 2*x'@A
        "d/dx sum(x*y) where y: vector(k)",         # a request's where clause ...
        "d/dy sum(x*y)",                            # ... is remembered
        ":type x: scalar",                          # redeclaring replaces
        "d/dx sin(x)",
    ]
    r = repl(lines, "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    outs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["result"] for o in outs] == ["ones(k)'", "2*x'@A", "y'", "x'", "cos(x)"]
    assert outs[1]["types"] == {"x": "vector(k)", "A": "symmetric(k)"}
    assert outs[3]["types"] == {"x": "vector(k)", "y": "vector(k)"}
    # only the names a line uses are passed to it
    assert outs[0]["types"] == {"x": "vector(k)"}
    assert outs[4]["types"] == {"x": "scalar"}


def test_types_forget_layout_and_format_commands(env):
    lines = [":types", ":type w, x: vector(n); b: scalar", "where A: matrix(m, n)", ":types",
             ":forget b", ":types", ":layout denominator", "d/dw sum(w*x) + b",
             ":format json", "d/dw sum(w*x)", ":forget", ":types"]
    r = repl(lines, "--format", "plain", env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("(no declarations)\n"
                          "w, x: vector(n); b: scalar; A: matrix(m, n)\n"
                          "w, x: vector(n); A: matrix(m, n)\n")
    assert "denominator layout" in out                       # the plain derivation
    last = out.rstrip("\n").splitlines()
    assert last[-1] == "(no declarations)"
    obj = json.loads(last[-2])
    assert obj["result"] == "x" and obj["layout"] == "denominator"


def test_bad_lines_print_one_error_and_the_session_goes_on(env):
    lines = ["d/dx x@@", "d/dx sin(x)", ":bogus", "where I: vector(n)",
             ":type x: vector(", "d/dx cos(x)"]
    r = repl(lines, "--format", "plain", env=env)
    assert r.returncode == 0
    assert "Traceback" not in r.stderr + r.stdout
    errors = r.stderr.splitlines()
    assert errors == [
        "line 1: error (column 8): unexpected '@'",
        "line 3: error: unknown command ':bogus' (:help lists the commands)",
        "line 4: error (column 7): 'I' is reserved and cannot be declared",
        "line 5: error (column 17): unexpected end of input",
    ]
    expected = "".join(diff_stdout(q, "--format", "plain") for q in ("d/dx sin(x)", "d/dx cos(x)"))
    assert r.stdout == expected


def test_errors_are_json_objects_under_json(env):
    r = repl(["d/dx x@@", "d/dx sin(x)"], "--format", "json", env=env)
    assert r.returncode == 0
    first, second = (json.loads(line) for line in r.stdout.splitlines())
    assert first == {"request": "d/dx x@@", "error": "error (column 8): unexpected '@'"}
    assert second["result"] == "cos(x)"


def test_quit_stops_reading_and_blank_and_comment_lines_are_skipped(env):
    r = repl(["", "# a comment", "d/dx sin(x)", ":quit", "d/dx cos(x)"], "--format", "json",
             env=env)
    assert r.returncode == 0, r.stderr
    (only,) = r.stdout.splitlines()
    assert json.loads(only)["result"] == "cos(x)"


def test_empty_input_and_help(env):
    r = repl([], env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = repl([":help"], env=env)
    assert r.returncode == 0 and ":layout" in r.stdout and ":quit" in r.stdout


def test_bad_startup_declaration_is_a_one_line_error(env):
    r = run(["repl", "-t", "I: scalar"], "d/dx sin(x)\n", env)
    assert r.returncode == 2
    assert r.stderr.strip() == "error (column 1): 'I' is reserved and cannot be declared"
    assert r.stdout == ""


def test_session_in_process():
    """The loop itself, without click or a subprocess."""
    import io
    from mcalc.cli import render
    printed: list[tuple[str, bool]] = []
    s = Session(render, echo=lambda m="", err=False: printed.append((m, err)), fmt="numpy",
                types=("x: vector(n)",))
    code = run_stream(s, io.StringIO("d/dx sum(x*x)\nd/dx (\n:layout nope\n:types\n"))
    assert code == 0
    from mcalc.pipeline import derive
    assert printed == [(render(derive("d/dx sum(x*x)", ("x: vector(n)",)), "numpy"), False),
                       ("line 2: error (column 7): unexpected end of input", True),
                       ("line 3: error: unknown layout 'nope' (one of: numerator, denominator)",
                        True),
                       ("x: vector(n)", False)]


# ---- (b) a real pseudo-terminal ---------------------------------------------------------

def spawn(env, *options):
    pexpect = pytest.importorskip("pexpect", reason="pexpect is needed for the terminal test")
    argv = mcalc_argv() + ["repl", *options]
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=10,
                          dimensions=(40, 120))
    return pexpect, child


def test_terminal_session(env, tmp_path):
    pexpect, child = spawn(env, "--format", "plain")
    try:
        child.expect_exact("Ctrl-D", timeout=30)           # the banner (a cold start) ...
        child.expect_exact(PROMPT)                         # ... then the prompt
        child.sendline(":type w, x: vector(n)")
        child.expect_exact("declared w, x: vector(n)")
        child.expect_exact(PROMPT)

        child.sendline("d/dw sum(w*x) + b")
        child.expect_exact("typing:  w, x: vector(n); b: scalar")
        child.expect_exact("dy/dw = x'\r\n  shape: 1×n row vector, numerator layout")
        child.expect_exact(PROMPT)

        child.sendline("d/dx x'@A@x")                      # x is still a vector(n)
        child.expect_exact("typing:  x: vector(n); A: matrix(n, n)")
        child.expect_exact("dy/dx = x'@(A + A')\r\n  shape: 1×n row vector")
        child.expect_exact(PROMPT)

        child.sendline("d/dx x@@")                         # a bad line: one error ...
        child.expect_exact("error (column 8): unexpected '@'")
        child.expect_exact(PROMPT)
        assert "Traceback" not in child.before

        child.sendline(":layout denominator")              # ... and the session goes on
        child.expect_exact("layout: denominator")
        child.expect_exact(PROMPT)
        child.sendline("d/dw sum(w*x)")
        child.expect_exact("dy/dw = x\r\n  shape: n×1 column vector, denominator layout")
        child.expect_exact(PROMPT)

        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    history = (tmp_path / ".mcalc_history").read_text(encoding="utf-8")
    assert "d/dw sum(w*x) + b" in history and ":quit" in history


def test_terminal_eof_leaves_cleanly(env):
    pexpect, child = spawn(env, "--format", "json")
    try:
        child.expect_exact(PROMPT)
        child.sendline("d/dx sin(x)")
        child.expect_exact('"result": "cos(x)"')
        child.expect_exact(PROMPT)
        child.sendeof()                                    # Ctrl-D
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_format_command_offers_every_format_of_diff(env):
    from mcalc.cli import FORMATS as DIFF_FORMATS
    from mcalc.repl import FORMATS
    assert FORMATS == DIFF_FORMATS and {"markdown", "html"} <= set(FORMATS)
    q = "d/dx sin(x^2)"
    r = repl([":format markdown", q, ":format html", q], "--format", "plain", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == diff_stdout(q, "--format", "markdown") + diff_stdout(q, "--format", "html")


def test_definitions_in_a_request_and_the_session_declarations(env):
    # W is used only inside the definition: the session's declaration still reaches it
    q = "d/dx sum(t) where t = tanh(W@x)"
    r = repl([":type W: matrix(m, k)", q], "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    (out,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert out["types"] == {"W": "matrix(m, k)", "x": "vector(k)"}
    assert out == json.loads(diff_stdout(q, "-t", "W: matrix(m, k)", "--format", "json"))
    assert out["result"] == "(1 - tanh(W@x)^2)'@W"


def test_a_bare_where_line_with_a_definition_says_where_it_goes(env):
    r = repl(["where a: scalar; t1 = sin(x)", "d/dx sin(x)"], "--format", "plain", env=env)
    assert r.returncode == 0
    (err,) = r.stderr.splitlines()
    assert err.startswith("line 1: error (column 18):") and "'t1'" in err
    assert "cos(x)" in r.stdout
