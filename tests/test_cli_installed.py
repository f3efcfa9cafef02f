"""End to end: the installed `mcalc` executable (not the package imported in-process)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def executable() -> str:
    beside = Path(sys.executable).parent / "mcalc"
    found = str(beside) if beside.exists() else shutil.which("mcalc")
    if not found:
        pytest.skip("the mcalc executable is not installed (pip install -e .)")
    return found


def run(*args):
    return subprocess.run([executable(), *args], capture_output=True, text=True, timeout=60,
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
