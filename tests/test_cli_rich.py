"""`mcalc diff --format rich` through the real command (click's CliRunner)."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from mcalc.cli import main
from installed import installed_mcalc

ANSI = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7])(?:;[0-9;]*)?m")
ARGS = ["diff", "d/dx sin(x^2)", "--format", "rich"]


def run(args=ARGS, **env):
    return CliRunner().invoke(main, args, env={"NO_COLOR": None, "FORCE_COLOR": None,
                                               "COLUMNS": "100", **env})


def test_rich_exits_0_and_shows_the_result():
    r = run()
    assert r.exit_code == 0, r.output
    assert "dy/dx = 2*x*cos(x^2)" in r.stdout
    assert "1×1 scalar, numerator layout" in r.stdout
    assert "single-variable chain rule" in r.stdout


def test_rich_is_the_default_mcalc_request_form():
    r = run(["d/dx sin(x^2)", "--format", "rich"])
    assert r.exit_code == 0, r.output
    assert "dy/dx = 2*x*cos(x^2)" in r.stdout


def test_no_color_means_no_escapes():
    r = run(NO_COLOR="1")
    assert r.exit_code == 0, r.output
    assert not ANSI.search(r.stdout)


def test_no_color_wins_over_a_forced_terminal():
    """FORCE_COLOR makes rich treat the runner as a terminal: colour appears, unless
    NO_COLOR is set too (then only bold/dim remain)."""
    coloured = run(FORCE_COLOR="1")
    assert COLOUR.search(coloured.stdout)
    plain = run(FORCE_COLOR="1", NO_COLOR="1")
    assert plain.exit_code == 0, plain.output
    assert not COLOUR.search(plain.stdout)
    assert "dy/dx" in plain.stdout


def test_no_derivative_prefix():
    r = run(["diff", "sum(w*x)", "--format", "rich"])
    assert r.exit_code == 0, r.output
    assert "sum(w*x) is a scalar (1×1)" in r.stdout


def test_bad_input_is_one_line_exit_2():
    r = run(["diff", "d/dx sin(", "--format", "rich"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def _spawn_tty(env_extra):
    pexpect = pytest.importorskip("pexpect")
    import os
    exe = installed_mcalc()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "100"}, **env_extra)
    child = pexpect.spawn(exe, ["d/dx sin(x^2)"], env=env, encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_COLOUR = re.compile(r"\x1b\[(?:[0-9]+;)*(?:3[0-8]|9[0-7]|4[0-8])(?:;[0-9]+)*m")


def test_a_real_terminal_gets_colour():
    out, status = _spawn_tty({})
    assert status == 0 and "2*x*cos(x^2)" in _ANSI.sub("", out)
    assert _COLOUR.search(out)


def test_no_color_in_a_real_terminal():
    out, status = _spawn_tty({"NO_COLOR": "1"})
    assert status == 0 and "2*x*cos(x^2)" in _ANSI.sub("", out)
    assert not _COLOUR.search(out)          # bold and dim stay: NO_COLOR is about colour
