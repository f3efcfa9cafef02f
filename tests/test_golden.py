"""Golden files: the exact output of a few derivations, pinned in tests/golden/*.txt.

Each case renders one request — plain text (`mcalc.printing.plain.render`), or the rich
view at width 100 without colour, trailing spaces stripped from each line — and compares
it with its file. After an intended change to the engine or a printer, regenerate the
files and read the diff before committing it:

    MCALC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

With MCALC_UPDATE_GOLDEN=1 set, every test rewrites its file instead of comparing (and
passes). A golden file is a claim that the derivation in it is right step by step, so
read what was regenerated.

A case with a `defect` is known to print something wrong: the defect is a pattern that
matches only the wrong output. While it matches, the case is an expected failure and no
file is written (nonsense is never pinned). Once the engine is fixed the pattern stops
matching, the case becomes an ordinary golden test (its file is missing until you
regenerate it), and the `defect` entry can be deleted.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from mcalc.pipeline import derive
from mcalc.printing import plain

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MCALC_UPDATE_GOLDEN") == "1"

# (file, format, request, layout, defect or None)
CASES = [
    ("plain_sum_wx_plus_b.txt", "plain", "d/dw sum(w*x) + b", "numerator", None),
    ("plain_sin_x2.txt", "plain", "d/dx sin(x^2)", "numerator", None),
    ("plain_sin_x_plus_x2.txt", "plain", "d/dx sin(x + x^2)", "numerator", None),
    ("plain_relu_affine.txt", "plain", "d/dw max(0, w'@x + b)", "numerator", None),
    ("plain_norm_XtW_sq_denominator.txt", "plain", "d/dW norm(X'@W)^2", "denominator",
     None),
    # the seeds' worked examples: P&H §4.3 and §6.2, 004 §3.5
    ("plain_scalar_expansion.txt", "plain", "d/dz x + z where x: vector(n); z: scalar",
     "numerator", None),
    ("plain_loss_by_bias.txt", "plain", "d/db mean((X@w + b - y)^2) where b: scalar",
     "numerator", None),
    ("plain_trace_quadratic_denominator.txt", "plain", "d/dX tr(X'@A@X)", "denominator",
     None),
    ("rich_sum_wx_plus_b.txt", "rich", "d/dw sum(w*x) + b", "numerator", None),
    ("rich_sin_x_plus_x2.txt", "rich", "d/dx sin(x + x^2)", "numerator", None),
    ("rich_norm_XtW_sq_denominator.txt", "rich", "d/dW norm(X'@W)^2", "denominator",
     None),
]


def output(fmt: str, request: str, layout: str) -> str:
    d = derive(request, layout=layout)
    if fmt == "plain":
        return plain.render(d)
    from rich.console import Console
    from mcalc.printing.rich_view import render
    buf = io.StringIO()
    render(d, Console(file=buf, width=100, color_system=None))
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


@pytest.mark.parametrize("name, fmt, request_text, layout, defect",
                         [pytest.param(*case, id=case[0]) for case in CASES])
def test_golden(name, fmt, request_text, layout, defect):
    path = GOLDEN / name
    got = output(fmt, request_text, layout)
    if defect and re.search(defect[0], got):
        pytest.xfail(f"known wrong, not pinned: {defect[1]}")
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with MCALC_UPDATE_GOLDEN=1 to create it"
    assert got == path.read_text(encoding="utf-8")
