"""End to end: the installed `mcalc` executable (not the package imported in-process)."""
from __future__ import annotations

import json
import os
import subprocess

from installed import installed_mcalc


def run(*args):
    return subprocess.run([installed_mcalc(), *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NO_COLOR="1"))


def test_installed_executable_derives():
    p = run("diff", "d/dw sum(w*x) + b", "--format", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["result"] == "x'"
    assert out["shape"] == ["1", "n"]


def test_installed_executable_rejects_bad_input_in_one_line():
    p = run("diff", "d/dx sin(x", "--format", "plain")
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error"), p.stderr
