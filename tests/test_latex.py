"""The LaTeX printer: expr_to_latex on every operator (hand-written strings for a sample,
structural checks for the rest), names, derivation_to_latex on hand-built derivations, and
a real pdflatex run on standalone documents."""
from __future__ import annotations

import os
import random
import re
import shutil
import string
import subprocess
from fractions import Fraction

import pytest

from mcalc import expr as E
from mcalc.derivation import Derivation, Step, replace
from mcalc.parser import parse_request
from mcalc.printing import latex as L
from mcalc.printing.latex import (derivation_to_latex, escape_text, expr_to_latex,
                                  name_to_latex, step_to_latex)
from mcalc.printing.text import _TABLE as TEXT_TABLE
from mcalc.build import infer

SCALAR = ("1", "1")
a, b, c = E.var("a", SCALAR), E.var("b", SCALAR), E.var("c", SCALAR)
s = E.var("s", SCALAR)
w, x, y, z = (E.var(v, ("n", "1")) for v in "wxyz")
A, B = E.var("A", ("m", "n")), E.var("B", ("n", "k"))
X, Y = E.var("X", ("n", "n")), E.var("Y", ("n", "n"))
M = E.make


def T(e):
    return M("T", e)


def neg(e):
    return M("mul", E.num(-1), e)


def div(p, q):
    return M("mul", p, M("pow", q, E.num(-1)))


def typed(text: str):
    req = parse_request(text)
    exprs, _ = infer([req.body], req.decls, text)
    return exprs[0]


def tex(e) -> str:
    return expr_to_latex(typed(e) if isinstance(e, str) else e)


def balanced(t: str) -> bool:
    depth = 0
    for i, ch in enumerate(t):
        if ch in "{}" and i and t[i - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and t.count(r"\left") == t.count(r"\right") and \
        t.count(r"\begin{") == t.count(r"\end{")


def no_double_script(t: str) -> bool:
    """x^{a}^{b} is a TeX error: after a ^{...} group the next token must not be ^."""
    i = 0
    while True:
        i = t.find("^{", i)
        if i < 0:
            return True
        depth, j = 0, i + 1
        while j < len(t):
            depth += {"{": 1, "}": -1}.get(t[j], 0)
            if depth == 0:
                break
            j += 1
        if t[j + 1:j + 2] == "^":
            return False
        i += 2


# ---- expressions: exact strings ------------------------------------------------------------

EXACT = [
    ("x'@A@x where x: vector(n)", r"\mathbf{x}^{T} A \mathbf{x}"),
    ("sum(w*x) + b", r"\operatorname{sum}\left(\mathbf{w} \circ \mathbf{x}\right) + b"),
    ("x/y where x, y: vector(n)", r"\mathbf{x} \oslash \mathbf{y}"),
    ("x/n where x: vector(n)", r"\frac{\mathbf{x}}{n}"),
    ("a/b", r"\frac{a}{b}"),
    ("1/x where x: vector(n)", r"1 \oslash \mathbf{x}"),
    ("kron(A, B)", r"A \otimes B"),
    ("(A + A')@x where A: matrix(n, n); x: vector(n)", r"\left(A + A^{T}\right) \mathbf{x}"),
    ("x*(A@y) where x, y: vector(n); A: matrix(n, n)",
     r"\mathbf{x} \circ \left(A \mathbf{y}\right)"),
    ("X^2 where X: matrix(m, n)", r"X^{\circ 2}"),
    ("x^2 where x: vector(n)", r"\mathbf{x}^{2}"),
    ("a^b^c", r"a^{b^{c}}"),
    ("(a + b)^2", r"\left(a + b\right)^{2}"),
    ("(a + b)*c", r"\left(a + b\right) c"),
    ("a - 2*b", r"a - 2 b"),
    ("-x", r"-x"),
    ("inv(A) where A: matrix(n, n)", r"A^{-1}"),
    ("inv(A') where A: matrix(n, n)", r"\left(A^{T}\right)^{-1}"),
    ("(x')' where x: vector(n)", r"\left(\mathbf{x}^{T}\right)^{T}"),
    ("diag(x) where x: vector(n)", r"\operatorname{diag}\left(\mathbf{x}\right)"),
    ("tr(X) + det(X) + logdet(X) where X: matrix(n, n)",
     r"\operatorname{tr}\left(X\right) + \det\left(X\right) + \log\det\left(X\right)"),
    ("sigmoid(w'@x) where w, x: vector(n)", r"\sigma\left(\mathbf{w}^{T} \mathbf{x}\right)"),
    ("norm(x) + norm(X) where x: vector(n); X: matrix(m, n)",
     r"\left\lVert \mathbf{x} \right\rVert + \left\lVert X \right\rVert_{F}"),
    ("abs(a) + sqrt(a)", r"\left|a\right| + \sqrt{a}"),
    ("dot(a, b) where a, b: vector(n)", r"\mathbf{a} \cdot \mathbf{b}"),
    ("max(0, x) where x: vector(n)", r"\operatorname{relu}\left(\mathbf{x}\right)"),
    ("x > 0", r"\mathbb{I}\left[x > 0\right]"),
    ("x >= y", r"\mathbb{I}\left[x \geq y\right]"),
    ("x < y", r"\mathbb{I}\left[x < y\right]"),
    ("x <= y", r"\mathbb{I}\left[x \leq y\right]"),
    ("[a, b*c, -d]", r"\begin{bmatrix} a \\ b c \\ -d \end{bmatrix}"),
    ("[[a, b], [c, d]]", r"\begin{bmatrix} a & b \\ c & d \end{bmatrix}"),
    ("e + pi", r"e + \pi"),
    ("sum(y)/N where y: vector(N)", r"\frac{\operatorname{sum}\left(\mathbf{y}\right)}{N}"),
    ("θ*λ", r"\theta \lambda"),
    ("W1@b_2 where W1: matrix(m, n); b_2: vector(n)", r"W_{1} \mathbf{b}_{2}"),
    ("lam*x where x: vector(n); lam: scalar", r"\mathit{lam} \, \mathbf{x}"),
    ("A@B@X - A@(B@X) where A: matrix(n, n); B: matrix(n, n)", r"A B X - A \left(B X\right)"),
]


@pytest.mark.parametrize("request_text, expected", EXACT, ids=[r for r, _ in EXACT])
def test_exact(request_text, expected):
    assert tex(request_text) == expected


def test_scalar_times_matrix_product_and_fractions():
    assert tex(M("mul", E.num(2), M("matmul", X, w))) == r"2 X \mathbf{w}"
    assert tex(M("mul", E.num(Fraction(1, 2)), x)) == r"\frac{\mathbf{x}}{2}"
    assert tex(M("mul", E.num(Fraction(-3, 2)), x)) == r"-\frac{3 \mathbf{x}}{2}"
    assert tex(M("mul", E.num(2), div(M("matmul", T(A), A), E.dim("m")))) == \
        r"2 \frac{A^{T} A}{m}"
    assert tex(M("add", a, neg(M("mul", E.num(2), b)))) == r"a - 2 b"
    assert tex(E.num(Fraction(1, 3))) == r"\frac{1}{3}"
    assert tex(E.num(Fraction(-5))) == "-5"
    assert tex(E.num(Fraction(1, 4))) == "0.25"
    assert tex(M("mul", s, E.Expr("pow", (E.num(2), a), SCALAR))) == r"s \cdot 2^{a}"


def test_hadamard_division_by_several():
    assert tex(div(x, M("mul", y, z))) == \
        r"\mathbf{x} \oslash \left(\mathbf{y} \circ \mathbf{z}\right)"
    assert tex(div(M("mul", x, y), z)) == \
        r"\left(\mathbf{x} \circ \mathbf{y}\right) \oslash \mathbf{z}"
    assert tex(div(x, s)) == r"\frac{\mathbf{x}}{s}"


def test_scalars_come_first_and_circ_only_between_non_scalars():
    t = tex(M("mul", x, s, y))
    assert t == r"s \mathbf{x} \circ \mathbf{y}"


def test_leaves():
    assert tex(E.ones("n")) == r"\mathbf{1}"
    assert tex(E.eye("n")) == "I"
    assert tex(E.zeros(("n", "1"))) == r"\mathbf{0}"
    assert tex(E.zeros(("m", "n"))) == r"\mathbf{0}"
    assert tex(E.zeros(("1", "n"))) == r"\mathbf{0}^{T}"
    assert tex(E.zeros(SCALAR)) == "0"
    assert tex(E.dim("N")) == "N"
    assert tex(E.Expr("const", (), SCALAR, "pi")) == r"\pi"


FUNCTION_COMMANDS = {
    "sin": r"\sin\left(", "cos": r"\cos\left(", "tan": r"\tan\left(", "exp": r"\exp\left(",
    "log": r"\log\left(", "tanh": r"\tanh\left(", "relu": r"\operatorname{relu}\left(",
    "sign": r"\operatorname{sign}\left(", "softmax": r"\operatorname{softmax}\left(",
    "sum": r"\operatorname{sum}\left(", "mean": r"\operatorname{mean}\left(",
    "logsumexp": r"\operatorname{logsumexp}\left(", "vec": r"\operatorname{vec}\left(",
    "max": r"\max\left(", "min": r"\min\left(",
}


@pytest.mark.parametrize("f", sorted(FUNCTION_COMMANDS))
def test_function_commands(f):
    args = (x, y) if f in ("max", "min") else (X,) if f == "vec" else (x,)
    t = tex(M(f, *args))
    assert t.startswith(FUNCTION_COMMANDS[f])
    assert t.endswith(r"\right)")
    assert balanced(t)


def test_every_operator_of_the_text_printer_has_a_latex_form():
    assert set(TEXT_TABLE) <= set(L._TABLE)


def _all_ops():
    """One expression per operator, in a few contexts each (operand of +, of @, of ', of ^)."""
    n = ("n", "1")
    lit = E.Expr("vector", (a, M("mul", b, c)), ("2", "1"))
    mat = E.Expr("matrix", (a, b, c, a), ("2", "2"))
    es = [M(f, x) for f in ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid",
                            "relu", "abs", "sign", "softmax")]
    es += [M(f, x) for f in ("sum", "mean", "norm", "logsumexp")]
    es += [M(f, X) for f in ("tr", "det", "logdet", "inv", "diag", "vec")]
    es += [M("diag", x), M("max", x, y), M("min", x, y), M("dot", x, y), M("kron", A, B),
           M("gt", x, y), M("ge", x, y), M("lt", x, y), M("le", x, y), lit, mat,
           M("pow", X, E.num(3)), M("pow", x, a), M("pow", x, E.num(-2)), T(X), T(T(x)),
           M("matmul", A, B), div(x, y), div(x, a), neg(x), M("mul", x, y),
           E.ones("n"), E.eye("n"), E.zeros(n), E.dim("n"), E.num(Fraction(2, 3))]
    out = []
    for e in es:
        out.append(e)
        if e.is_scalar:
            out += [M("add", e, a), M("mul", e, x), M("pow", e, E.num(2)), neg(e)]
        if e.shape[0] == e.shape[1] and not e.is_scalar:
            out += [T(e), M("pow", e, E.num(2)), M("matmul", e, e), M("inv", e)]
        if e.is_column:
            out += [T(e), M("matmul", T(e), e), M("mul", e, M("add", e, e))]
    return out


@pytest.mark.parametrize("e", _all_ops(), ids=lambda e: repr(e))
def test_structure(e):
    t = tex(e)
    assert t and t.isascii()
    assert balanced(t), t
    assert no_double_script(t), t
    assert "\n" not in t


def test_shared_subexpression_names():
    shared = M("matmul", X, w)
    e = M("add", M("mul", E.num(2), shared), x)
    assert expr_to_latex(e, {shared: "t1"}) == r"2 \mathbf{t}_{1} + \mathbf{x}"
    assert expr_to_latex(M("tr", X), {X: "t2"}) == r"\operatorname{tr}\left(t_{2}\right)"


# ---- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, bold, expected", [
    ("x", False, "x"), ("x", True, r"\mathbf{x}"), ("X", False, "X"),
    ("θ", False, r"\theta"), ("θ", True, r"\boldsymbol{\theta}"), ("λ", False, r"\lambda"),
    ("Σ", False, r"\Sigma"), ("Ω", False, r"\Omega"), ("Α", False, "A"), ("ω", True,
                                                                          r"\boldsymbol{\omega}"),
    ("φ", False, r"\varphi"), ("ϕ", False, r"\phi"), ("ε", False, r"\varepsilon"),
    ("W1", False, "W_{1}"), ("b_2", True, r"\mathbf{b}_{2}"), ("x12", False, "x_{12}"),
    ("θ1", True, r"\boldsymbol{\theta}_{1}"), ("x₁", False, "x_{1}"),
    ("lam", False, r"\mathit{lam}"), ("lam", True, r"\mathbf{lam}"),
    ("lambda", False, r"\mathit{lambda}"), ("x_hat", False, r"x_{\mathrm{hat}}"),
    ("W_out", False, r"W_{\mathrm{out}}"), ("b_in_2", False, r"b_{\mathrm{in},2}"),
    ("ŷ", False, r"\hat{y}"), ("ℓ", False, r"\ell"), ("t1", False, "t_{1}"),
])
def test_names(name, bold, expected):
    assert name_to_latex(name, bold) == expected


def test_names_of_letters_and_digits_print_as_the_rules_say():
    """(name_to_latex prints those, the most common, without going through its rules)"""
    rng = random.Random(5)
    letters = string.ascii_letters
    for _ in range(2000):
        name = "".join(rng.choice(letters) for _ in range(rng.randint(1, 4))) + \
            "".join(rng.choice(string.digits) for _ in range(rng.choice((0, 0, 1, 2, 3))))
        for bold in (False, True):
            assert name_to_latex(name, bold) == L._name_by_rules(name, bold), name


@pytest.mark.parametrize("name", ["_x", "x_", "a__b", "x1y", "ж", "αβγ", "é_ü", "Ⅻ",
                                  "名前"])
def test_odd_names_stay_ascii_and_balanced(name):
    for bold in (False, True):
        t = name_to_latex(name, bold)
        assert t.isascii() and balanced(t), t


def test_every_greek_letter_has_a_command():
    for ch in "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ":
        t = name_to_latex(ch)
        assert t.isascii() and (t.startswith("\\") or len(t) == 1), (ch, t)


def test_unicode_variables_in_expressions():
    assert tex("θ*x where θ: vector(n)") == r"\boldsymbol{\theta} \circ \mathbf{x}"
    assert tex("Σ@μ where μ: vector(n); Σ: matrix(n, n)") == r"\Sigma \boldsymbol{\mu}"


def test_escape_text():
    assert escape_text(r"50% of_the {time} & #1 $5 ~x^2 \ done") == \
        (r"50\% of\_the \{time\} \& \#1 $\$$5 \textasciitilde{}x\textasciicircum{}2 "
         r"\textbackslash{} done")
    assert escape_text("a < b > c | d") == r"a \textless{} b \textgreater{} c \textbar{} d"
    assert escape_text("P&H §4.5 ∂y/∂x = Bᵀ") == \
        r"P\&H $\S$4.5 $\partial$y/$\partial$x = B$^{T}$"
    assert escape_text("x--y") == "x-{}-y"
    assert escape_text("θ é ж").isascii()


# ---- derivations --------------------------------------------------------------------------

N1 = ("n", "1")
u1, u2 = E.var("u1", N1), E.var("u2", SCALAR)
NOTE = r"50% of_the {time} & #1 $5 ~x^2 \ done"


def chain_derivation(layout="numerator", where=()):
    steps = (
        Step("define", "u1", M("mul", w, x)),
        Step("define", "u2", M("sum", u1)),
        Step("define", "y", M("add", u2, b)),
        Step("partial", ("y", "u2"), E.ONE, rule="sum rule"),
        Step("partial", ("u2", "u1"), T(E.ones("n")), rule="sum reduction"),
        Step("partial", ("u1", "w"), M("diag", x), rule="element-wise product"),
        Step("chain", ("y", "w"), M("matmul", T(E.ones("n")), M("diag", x)),
             rule="vector chain rule (P&H §4.5.3)",
             terms=((("y", "u2"), ("u2", "u1"), ("u1", "w")),)),
        Step("substitute", ("y", "w"), M("matmul", T(E.ones("n")), M("diag", x))),
        Step("simplify", ("y", "w"), T(x), rule="ones(n)'@diag(x) = x'"),
        Step("note", text=NOTE),
    )
    result = T(x) if layout == "numerator" else x
    return Derivation(request="d/dw sum(w*x) + b", wrt=("w",), layout=layout, method="chain",
                      types={"w": "vector(n)", "x": "vector(n)", "b": "scalar"},
                      expr=M("add", M("sum", M("mul", w, x)), b), result=result, steps=steps,
                      where=where)


def differential_derivation():
    U1 = E.var("U1", ("m", "n"))
    dX = E.Expr("var", (), ("n", "n"), "d(X)", "differential")
    dU1 = E.Expr("var", (), ("m", "n"), "d(U1)", "differential")
    C = E.var("C", ("n", "m"))
    f = M("tr", M("matmul", M("matmul", A, X), C))
    G = M("matmul", T(A), T(C))
    steps = (
        Step("define", "U1", M("matmul", A, X)),
        Step("define", "y", M("tr", M("matmul", U1, C))),
        Step("differential", "y", rule="trace", terms=((T(C), dU1, "∂y/∂U1"),)),
        Step("differential", "y", rule="matrix product (right operand)",
             terms=((T(C), M("matmul", A, dX), "∂y/∂U1"),)),
        Step("differential", "y", rule="Frobenius product: A : BC = BᵀA : C (003)",
             terms=((G, dX, "∂y/∂X"),)),
    )
    return Derivation(request="d/dX tr(A@X@C)", wrt=("X",), layout="numerator",
                      method="differential",
                      types={"A": "matrix(m, n)", "X": "matrix(n, n)", "C": "matrix(n, m)"},
                      expr=f, result=T(G), steps=steps)


def test_chain_derivation_lines():
    out = derivation_to_latex(chain_derivation())
    lines = out.strip().split("\n")
    assert lines[0] == r"\begin{align*}" and lines[-1] == r"\end{align*}"
    assert out.count(r"\begin{align*}") == 1
    body = [re.sub(r" \\\\(\[1ex\])?$", "", ln) for ln in lines[1:-1]]
    assert body[0] == r"\mathbf{u}_{1} &= \mathbf{w} \circ \mathbf{x}"
    assert body[1] == r"u_{2} &= \operatorname{sum}\left(\mathbf{u}_{1}\right)"
    assert body[2] == r"y &= u_{2} + b"
    assert body[5] == (r"\frac{\partial \mathbf{u}_{1}}{\partial \mathbf{w}} &= "
                       r"\operatorname{diag}\left(\mathbf{x}\right) \qquad"
                       r"\text{(element-wise product)}")
    assert body[6] == (r"\frac{\mathrm{d} y}{\mathrm{d} \mathbf{w}} &= \frac{\partial y}"
                       r"{\partial u_{2}} \frac{\partial u_{2}}{\partial \mathbf{u}_{1}} "
                       r"\frac{\partial \mathbf{u}_{1}}{\partial \mathbf{w}} \qquad"
                       r"\text{(vector chain rule (P\&H $\S$4.5.3))}")
    assert body[7] == r"&= \mathbf{1}^{T} \operatorname{diag}\left(\mathbf{x}\right)"
    # the substitution repeats the chain's value: not printed twice; the last step is the
    # result, shown once, below, with its rule and shape (on a row of their own: too long)
    assert body[8] == "& " + r"\text{" + escape_text(NOTE) + "}"
    tail = out.split(r"\\[1ex]")[1]
    assert tail.startswith("\n" + r"\frac{\mathrm{d} y}{\mathrm{d} \mathbf{w}} &= \mathbf{x}^{T} \\")
    assert r"\text{(ones(n)'@diag(x) = x')}" in tail
    assert r"\text{shape } 1 \times n\text{, numerator layout}" in tail
    assert out.isascii()


def test_every_line_is_a_row():
    out = derivation_to_latex(chain_derivation())
    rows = out.strip().split("\n")[1:-1]
    assert all(r.endswith(("\\\\", "\\\\[1ex]")) for r in rows[:-1])
    assert all("&" in r for r in rows)


def test_denominator_layout_and_where():
    shared = M("mul", w, x)
    d = chain_derivation("denominator", where=(("t1", shared),))
    d = replace(d, result=M("add", shared, x))
    out = derivation_to_latex(d)
    assert r"\text{, denominator layout}" in out
    assert r"\text{shape } n \times 1" in out
    assert r"&= \mathbf{t}_{1} + \mathbf{x}" in out
    assert r"\text{where } \mathbf{t}_{1} &= \mathbf{w} \circ \mathbf{x}" in out


def test_differential_derivation():
    out = derivation_to_latex(differential_derivation())
    assert r"dy &= C^{T} : dU_{1} \qquad\text{(trace)}" in out
    assert r"&= C^{T} : A dX \qquad" in out
    assert r"&= A^{T} C^{T} : dX \\" "\n" \
        r"& \qquad\text{(Frobenius product: A : BC = B$^{T}$A : C (003))}" in out
    assert r"\frac{\mathrm{d} y}{\mathrm{d} X} &= \left(A^{T} C^{T}\right)^{T}" in out


def test_vec_form_second_derivative_and_stacked_heads():
    d = differential_derivation()
    vec = replace(d, vec_form=True, steps=())
    out = derivation_to_latex(vec)
    assert r"\frac{\mathrm{d} \operatorname{vec}\left(" in out
    assert r"{\mathrm{d} \operatorname{vec}\left(X\right)}" in out
    assert r"\text{, vec form}" in out
    hess = Derivation(request="d^2/dx^2 x'@X@x", wrt=("x", "x"), layout="numerator",
                      method="chain", types={"x": "vector(n)", "X": "matrix(n, n)"},
                      expr=M("matmul", M("matmul", T(x), X), x),
                      result=M("add", X, T(X)))
    assert r"\frac{\mathrm{d}^{2} y}{\mathrm{d} \mathbf{x}^{2}} &= X + X^{T}" in \
        derivation_to_latex(hess)
    stacked = Derivation(request="d/d(a, b) a*b", wrt=("a", "b"), layout="numerator",
                         method="chain", types={"a": "scalar", "b": "scalar"},
                         expr=M("mul", a, b), result=E.Expr("matrix", (b, a), ("1", "2")),
                         steps=(Step("chain", ("∇", "a,b"), E.Expr("matrix", (b, a), ("1", "2")),
                                     rule="stack"),))
    out = derivation_to_latex(stacked)
    assert r"\frac{\mathrm{d} y}{\mathrm{d} \left(a, b\right)}" in out
    assert r"\partial^{2}" not in out


def test_no_derivative_prefix():
    d = Derivation(request="x'@X@x", wrt=(), layout="numerator", method="chain",
                   types={"x": "vector(n)", "X": "matrix(n, n)"},
                   expr=M("matmul", M("matmul", T(x), X), x), result=None)
    out = derivation_to_latex(d)
    assert r"& \mathbf{x}^{T} X \mathbf{x} \qquad \text{shape } 1 \times 1" in out
    assert "layout" not in out


def test_components_and_unknown_step_kinds_do_not_crash():
    d = chain_derivation()
    extra = (Step("chain", ("y", "a"), E.Expr("vector", (a, b), ("2", "1")), rule="literal",
                  terms=((("y", "components"), ("components", "a")),)),
             Step("component", ("y_1", "a"), E.ONE, rule="definition"),
             Step("mystery", text="something new"))
    out = derivation_to_latex(replace(d, steps=d.steps + extra))
    assert "components" not in out
    assert r"\text{mystery: something new}" in out


def test_step_to_latex_is_one_formula():
    d = chain_derivation()
    for st in d.steps:
        t = step_to_latex(st)
        assert "&" not in t.replace(r"\&", "") and "\n" not in t and balanced(t), t
    assert step_to_latex(d.steps[6], d).startswith(r"\frac{\mathrm{d} y}{\mathrm{d} \mathbf{w}} = ")
    assert step_to_latex(d.steps[0]) == r"\mathbf{u}_{1} = \mathbf{w} \circ \mathbf{x}"


def test_standalone_document():
    out = derivation_to_latex(chain_derivation(), standalone=True)
    assert out.startswith("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n")
    assert r"\allowdisplaybreaks" in out and r"\begin{document}" in out
    assert out.endswith("\\end{document}\n")
    assert r"\texttt{d/dw sum(\allowbreak{}w*x) \allowbreak{}+ b}" in out   # breakable
    assert out.isascii()


def wide_derivation(cols=12):
    row = tuple(E.var(f"a{i}", SCALAR) for i in range(cols))
    lit = E.Expr("matrix", row + row, ("2", str(cols)))
    return Derivation(request="[[" + ", ".join(f"a{i}" for i in range(cols)) + "], ...]",
                      wrt=(), layout="numerator", method="chain",
                      types={f"a{i}": "scalar" for i in range(cols)}, expr=lit, result=None)


def test_wide_matrix_literals_raise_max_matrix_cols():
    assert r"\setcounter{MaxMatrixCols}{12}" in derivation_to_latex(wide_derivation(),
                                                                     standalone=True)
    assert "MaxMatrixCols" not in derivation_to_latex(wide_derivation(3), standalone=True)


def long_derivation(terms=3000):
    e = M("add", *(M("mul", E.num(k + 1), M("sin", M("mul", E.num(k + 1), a)))
                   for k in range(terms)))
    return Derivation(request="d/da " + "+".join(f"sin({k}*a)" for k in range(terms)),
                      wrt=("a",), layout="numerator", method="chain", types={"a": "scalar"},
                      expr=e, result=e)


def test_long_lines_are_folded():
    out = derivation_to_latex(long_derivation(), standalone=True)
    assert max(len(line) for line in out.split("\n")) <= 1000


def unicode_derivation():
    θ, μ = E.var("θ", N1), E.var("μ", SCALAR)
    Σ = E.var("Σ", ("n", "n"))
    e = M("add", M("matmul", M("matmul", T(θ), Σ), θ), M("mul", μ, M("sum", θ)))
    g = M("add", M("matmul", T(θ), M("add", Σ, T(Σ))), M("mul", μ, T(E.ones("n"))))
    return Derivation(request="d/dθ θ'@Σ@θ + μ*sum(θ) where θ: vector(n); Σ: matrix(n, n)",
                      wrt=("θ",), layout="numerator", method="chain",
                      types={"θ": "vector(n)", "Σ": "matrix(n, n)", "μ": "scalar"},
                      expr=e, result=g,
                      steps=(Step("define", "u1", M("matmul", T(θ), Σ)),
                             Step("note",
                                  text="∂θ/∂θ is the identity; ε-δ “quoted” — ok §1 ¶2")))


def kitchen_sink_derivation():
    """Every operator in a define step, with odd names and specials in the rule names."""
    steps = tuple(Step("define", f"u{i}", e, rule=f"op #{i} & 100% {{x_y}}")
                  for i, e in enumerate(_all_ops()))
    return Derivation(request="d/dx everything -- ~all~ ^ops^ \\ <here> | $5",
                      wrt=("x",), layout="denominator", method="chain",
                      types={"x": "vector(n)", "a": "scalar"}, expr=x, result=E.eye("n"),
                      steps=steps, vec_form=False)


def _need_pdflatex() -> str:
    exe = shutil.which("pdflatex")
    if exe is None:
        if "CI" in os.environ:
            pytest.fail("pdflatex is not installed, and CI is set: install the apt package "
                        "texlive-latex-base (it brings texlive-base and texlive-binaries)")
        pytest.skip("pdflatex is not on PATH (with CI set this test fails instead)")
    return exe


@pytest.mark.parametrize("make", [chain_derivation, differential_derivation, unicode_derivation,
                                  kitchen_sink_derivation, wide_derivation, long_derivation],
                         ids=lambda f: f.__name__)
def test_standalone_compiles(make, tmp_path):
    exe = _need_pdflatex()
    (tmp_path / "doc.tex").write_text(derivation_to_latex(make(), standalone=True),
                                      encoding="ascii")
    proc = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode",
                           "-no-shell-escape", "-recorder", "doc.tex"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=300)
    log = (tmp_path / "doc.log").read_text(errors="replace") if \
        (tmp_path / "doc.log").exists() else proc.stdout
    errors = re.findall(r"^!.*(?:\n.*){0,3}", log, flags=re.M)
    assert proc.returncode == 0, "\n".join(errors) or proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
    assert "Missing character" not in log
    # only the Type 1 fonts of texlive-base: no bitmap font made by metafont on the fly
    assert "/pk/" not in (tmp_path / "doc.fls").read_text(errors="replace")


REAL_REQUESTS = [
    ("d/dw sum(w*x) + b", "numerator"),
    ("d/dx sin(x + x^2)", "numerator"),
    ("d/d(x, y) [3*x^2*y, 2*x + y^8]", "numerator"),
    ("d/dw max(0, w'@x + b)", "numerator"),
    ("d/dW norm(X'@W)^2", "denominator"),
    ("d/dX det(X)", "denominator"),
    ("d/dX tr(inv(X))", "denominator"),
    ("d/dx x'@S@x where S: symmetric(n)", "denominator"),
    ("d/dθ -y'@log(softmax(X@θ)) where λ: scalar", "numerator"),
    ("d/dz softmax(z)", "numerator"),
    ("d/dX A@X@B", "numerator"),
    ("d^2/dx^2 logsumexp(x)", "numerator"),
    ("d/dW1 sum((W2@tanh(W1@x + b1) + b2 - y)^2)", "denominator"),
]


@pytest.mark.parametrize("request_text,layout", REAL_REQUESTS, ids=[r for r, _ in REAL_REQUESTS])
def test_real_derivations_compile(request_text, layout, tmp_path):
    """The engine's own derivations — vectors, matrices, symmetric matrices, unicode
    names, softmax, vec forms, Hessians — compile with pdflatex -halt-on-error."""
    from mcalc.pipeline import derive
    exe = _need_pdflatex()
    doc = derivation_to_latex(derive(request_text, layout=layout), standalone=True)
    (tmp_path / "doc.tex").write_text(doc, encoding="ascii")
    proc = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode",
                           "-no-shell-escape", "doc.tex"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0


def test_symbols_take_a_name_shape_from_its_first_appearance_in_any_step():
    # The table reads the steps only as far as a look-up needs; what it answers must be
    # what reading them all first would: the first appearance wins, a 'define' updates it.
    v, u = E.var("v", ("n", "1")), E.var("u1", ("n", "1"))
    steps = (Step("note", text="start"),
             Step("define", "u1", M("mul", E.num(2), v)),
             Step("partial", ("u1", "v"), M("diag", E.ones("n"))),
             Step("define", "u1", M("sum", u)),            # a second pass: u1 a scalar
             Step("simplify", ("y", "w"), M("mul", E.num(3), E.var("w", ("n", "1")))))
    sym = L.Symbols(None, steps)
    assert sym("w") == r"\mathbf{w}"                     # seen only in the last step
    assert sym("u1") == r"\mathbf{u}_{1}"                # the first pass's vector
    assert sym("q") == "q"                               # nowhere: a scalar
    sym.define("u1", ("1", "1"))
    assert sym("u1") == "u_{1}"
    assert sym.partial("u1", "w") == r"\frac{\partial u_{1}}{\partial \mathbf{w}}"
