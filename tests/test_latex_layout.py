"""LaTeX that fits the page: long derivations compiled by pdflatex have no overfull box,
the result is shown once, and the line breaking keeps the formula intact."""
from __future__ import annotations

import re
import subprocess

import pytest

from mcalc.pipeline import derive
from mcalc.printing import latex_layout as LL
from mcalc.printing.latex import derivation_to_latex

try:
    from test_latex import _need_pdflatex
except ImportError:                                  # tests/ made a package
    from tests.test_latex import _need_pdflatex

LONG = [
    ("d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)", "numerator", None),
    ("d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)", "denominator", None),
    ("d/dW1 sum((W3@relu(W2@relu(W1@x + b1) + b2) + b3 - y)^2)", "numerator", None),
    ("d/dW1 sum((W3@tanh(W2@tanh(W1@x + b1) + b2) + b3 - y)^2)", "denominator", None),
    ("d/dW1 sum((W2@tanh(W1@x + b1) + b2 - y)^2)", "denominator", None),
    ("d/dW1 sum((W2@sigmoid(W1@x + b1) + b2 - y)^2)", "numerator", "chain"),
    ("d/dX tr(X'@A@X)", "numerator", "definition"),
    ("d/dX tr(A@X@B)", "numerator", None),
    ("d/dX tr(A@X@B)", "denominator", "definition"),
    ("d^2/dx^2 x'@A@x", "numerator", None),
    ("d^2/dx^2 logsumexp(x)", "numerator", None),
    ("d^2/dw^2 sum(log(1 + exp(-y*(X@w))))", "numerator", None),
    ("d/dθ -y'@log(softmax(X@θ))", "numerator", None),
    ("d/dw norm(X@w - y)^2 + lam*norm(w)^2 where lam: scalar", "denominator", None),
    ("d/dX tr(X'@A@X) where X: matrix(3, 3)", "numerator", "definition"),
    ("d/dX norm(A@X@B - C)^2 + lam*tr(X'@X) where lam: scalar", "denominator", None),
    ("d/dW1 sum((" + "tanh(W{}@".format(32) + "".join(f"tanh(W{k}@" for k in range(31, 0, -1))
     + "x + b1)" + "".join(f" + b{k})" for k in range(2, 33)) + " - y)^2)", "numerator", None),
]


def compile_log(doc: str, tmp_path) -> str:
    exe = _need_pdflatex()
    (tmp_path / "doc.tex").write_text(doc, encoding="ascii")
    proc = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode",
                           "-no-shell-escape", "doc.tex"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=300)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return log


@pytest.mark.parametrize("request_text,layout,method", LONG,
                         ids=[f"{r} {l} {m}" for r, l, m in LONG])
def test_long_derivations_fit_the_page(request_text, layout, method, tmp_path):
    d = derive(request_text, layout=layout, method=method)
    log = compile_log(derivation_to_latex(d, standalone=True), tmp_path)
    overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
    assert not overfull, f"overfull boxes of {overfull} pt"


@pytest.mark.parametrize("request_text,layout,method", LONG[:4] + LONG[7:8],
                         ids=[r for r, _, _ in LONG[:4] + LONG[7:8]])
def test_the_result_is_shown_once(request_text, layout, method):
    d = derive(request_text, layout=layout, method=method)
    doc = derivation_to_latex(d)
    result_row = doc.split(r"\\[1ex]")[-1]
    rhs = result_row.split("&=", 1)[1].split(r"\qquad \text{shape")[0]
    first = re.sub(r"\\[bB]igl|\\[bB]igr|\\left|\\right|\\\\|&\\qquad \{\}|\s", "", rhs)
    body = re.sub(r"\\[bB]igl|\\[bB]igr|\\left|\\right|\\\\|&\\qquad \{\}|\s", "", doc)
    assert body.count("&=" + first) == 1          # as a right-hand side: (BA)^T holds BA too


def test_breaks_are_at_operators_and_keep_every_token():
    s = " + ".join(rf"\left(a_{{{k}}} \circ \left(B_{{{k}}} - c\right)\right)" for k in range(30))
    lines = LL.break_formula(s, 200, 180)
    assert len(lines) > 3
    assert all(LL.width(x) <= 200 for x in lines)
    for x in lines[1:]:
        assert x.startswith("+")                     # at the top-level sum, not inside
    assert re.sub(r"\s", "", "".join(lines)) == re.sub(r"\s", "", s)


def test_a_break_inside_parentheses_uses_big_delimiters():
    inner = " + ".join(f"x_{{{k}}}" for k in range(60))
    lines = LL.break_formula(rf"2 \left({inner}\right)^{{T}}", 200, 180)
    assert len(lines) > 2
    joined = " ".join(lines)
    assert r"\bigl(" in joined and r"\bigr)" in joined and r"\left" not in joined


def test_width_estimates_grow_with_content():
    assert LL.width("x") < LL.width("x + y") < LL.width(r"x + y + \frac{a}{b}")
    assert LL.width(r"\frac{a + b + c}{d}") < LL.width("a + b + c + d")
    assert LL.width(r"\begin{smallmatrix} a & b \end{smallmatrix}") < \
        LL.width(r"\begin{bmatrix} a & b \end{bmatrix}")
    assert LL.width(r"\text{a b}") > LL.width("ab")
    deep = r"\left(" * 5000 + "x" + r"\right)" * 5000     # no recursion
    assert LL.width(deep) > 0 and LL.break_formula(deep, 100, 80)


def test_long_notes_wrap():
    fit = LL.Fitter([r"\frac{\partial y}{\partial x}"])
    row = fit.words(r"\text{" + "word " * 80 + r"}\ \begin{bmatrix} a & b \end{bmatrix}")
    assert r"\parbox" in row and r"\begin{bmatrix}" in row and row.count(r"\\") == 1


def test_a_wide_matrix_is_set_in_column_blocks():
    d = derive("d/dX tr(X'@A@X) where X: matrix(3, 3)", method="definition")
    doc = derivation_to_latex(d)
    blocks = re.findall(r"\\left([\[.])\\begin\{smallmatrix\}(.*?)\\end\{smallmatrix\}"
                        r"\\right([\].])", doc)
    assert len(blocks) >= 2
    assert blocks[0][0] == "[" and blocks[-1][2] == "]"
    assert sum(b[1].split(r" \\ ")[0].count("&") + 1 for b in blocks) == 3   # 3 columns
    for b in blocks:                                   # no row break inside a matrix
        assert r"\qquad {}" not in b[1] and b[1].count(r" \\ ") == 2
