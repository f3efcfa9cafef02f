"""to_numpy: the generated text, evaluated at random values, against numpy by hand; and the
finite-difference harness of tests/numeric.py on derivatives worked out by hand."""
from __future__ import annotations

import inspect
import warnings
from fractions import Fraction

import numpy as np
import pytest

from mcalc import expr as E
from mcalc.printing import numpy_code
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import _TABLE as TEXT_TABLE

try:
    from numeric import (assert_close, evaluate, finite_difference, random_sizes,
                         random_values)
except ImportError:                                  # tests/ made a package
    from tests.numeric import (assert_close, evaluate, finite_difference, random_sizes,
                               random_values)

SCALAR = ("1", "1")
TYPES = {"a": "scalar", "b": "scalar", "x": "vector(n)", "y": "vector(n)", "u": "vector(m)",
         "A": "matrix(m, n)", "B": "matrix(m, n)", "C": "matrix(n, k)", "X": "matrix(n, n)",
         "Y": "matrix(n, n)", "S": "symmetric(n)"}
DIMS = {"n": "x.shape[0]", "m": "u.shape[0]", "k": "C.shape[1]"}

a, b = E.var("a", SCALAR), E.var("b", SCALAR)
x, y, u = E.var("x", ("n", "1")), E.var("y", ("n", "1")), E.var("u", ("m", "1"))
A, B = E.var("A", ("m", "n")), E.var("B", ("m", "n"))
C = E.var("C", ("n", "k"))
X, Y = E.var("X", ("n", "n")), E.var("Y", ("n", "n"))
S = E.var("S", ("n", "n"), symmetric=True)
PI = E.Expr("const", (), SCALAR, "pi")
M = E.make


def T(e):
    return M("T", e)


def neg(e):
    return M("mul", E.num(-1), e)


def sub(p, q):
    return M("add", p, neg(q))


def div(p, q):
    return M("mul", p, M("pow", q, E.num(-1)))


def lit_vector(*items):
    return E.Expr("vector", tuple(items), (str(len(items)), "1"))


def lit_matrix(rows):
    flat = tuple(e for row in rows for e in row)
    return E.Expr("matrix", flat, (str(len(rows)), str(len(rows[0]))))


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def softmax(v):
    z = np.exp(v - v.max())
    return z / z.sum()


def kron2(p, q):
    return np.kron(p, q)


col = lambda v: v.reshape(-1, 1)                     # noqa: E731
row = lambda v: v.reshape(1, -1)                     # noqa: E731

# (id, expression, reference value from the values v, positive values?)
CASES = [
    # leaves
    ("num", E.num(Fraction(3, 2)), lambda v: 1.5, False),
    ("num-negative", E.num(-2), lambda v: -2.0, False),
    ("num-third", E.num(Fraction(1, 3)), lambda v: 1 / 3, False),
    ("var-scalar", a, lambda v: v["a"], False),
    ("var-vector", x, lambda v: v["x"], False),
    ("var-matrix", A, lambda v: v["A"], False),
    ("dim", div(M("sum", x), E.dim("n")), lambda v: np.mean(v["x"]), False),
    ("dim-times", M("mul", E.dim("m"), x), lambda v: len(v["u"]) * v["x"], False),
    ("const-pi", M("mul", E.num(2), PI), lambda v: 2 * np.pi, False),
    ("ones", E.ones("n"), lambda v: np.ones(len(v["x"])), False),
    ("ones-int", E.ones("3"), lambda v: np.ones(3), False),
    ("ones-product", E.ones("m*n"), lambda v: np.ones(len(v["u"]) * len(v["x"])), False),
    ("ones-1", E.ones("1"), lambda v: 1.0, False),
    ("eye", E.eye("n"), lambda v: np.eye(len(v["x"])), False),
    ("eye-int", E.eye("2"), lambda v: np.eye(2), False),
    # K@vec(A) = vec(A'): vec stacks columns, so vec(A') is A read row by row
    ("commutation", M("matmul", E.commutation("m", "n"), M("vec", A)),
     lambda v: v["A"].reshape(-1), False),
    ("commutation-int", E.commutation("2", "3"),
     lambda v: np.array([[1., 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0],
                         [0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]]), False),
    ("zeros-column", E.zeros(("n", "1")), lambda v: np.zeros(len(v["x"])), False),
    ("zeros-row", E.zeros(("1", "m")), lambda v: np.zeros(len(v["u"])), False),
    ("zeros-matrix", E.zeros(("m", "n")), lambda v: np.zeros(v["A"].shape), False),
    ("zeros-scalar", E.zeros(SCALAR), lambda v: 0.0, False),
    ("zeros-in-sum", M("add", x, E.zeros(("n", "1"))), lambda v: v["x"], False),
    # add, mul, division, negation
    ("add", M("add", x, y), lambda v: v["x"] + v["y"], False),
    ("add-scalar-expansion", M("add", x, a, E.num(1)), lambda v: v["x"] + v["a"] + 1, False),
    ("sub", sub(A, B), lambda v: v["A"] - v["B"], False),
    ("sub-sum", sub(x, M("add", y, a)), lambda v: v["x"] - (v["y"] + v["a"]), False),
    ("sub-number", M("add", a, E.num(-3)), lambda v: v["a"] - 3, False),
    ("sub-scaled", M("add", a, M("mul", E.num(-3), a, b)), lambda v: v["a"] - 3 * v["a"] * v["b"],
     False),
    ("add-nested", M("add", a, M("add", b, a)), lambda v: 2 * v["a"] + v["b"], False),
    ("mul-hadamard", M("mul", x, y), lambda v: v["x"] * v["y"], False),
    ("mul-scale", M("mul", E.num(2), a, x), lambda v: 2 * v["a"] * v["x"], False),
    ("mul-matmul-factor", M("mul", x, M("matmul", T(A), u)),
     lambda v: v["x"] * (v["A"].T @ v["u"]), False),
    ("mul-matmul-first", M("mul", M("matmul", T(A), u), x),
     lambda v: (v["A"].T @ v["u"]) * v["x"], False),
    ("mul-of-sum", M("mul", M("add", x, y), sub(x, y)),
     lambda v: (v["x"] + v["y"]) * (v["x"] - v["y"]), False),
    ("neg", neg(x), lambda v: -v["x"], False),
    ("neg-neg", neg(neg(x)), lambda v: v["x"], False),
    ("neg-matmul", neg(M("matmul", A, x)), lambda v: -(v["A"] @ v["x"]), False),
    ("neg-product", M("mul", E.num(-1), x, y), lambda v: -v["x"] * v["y"], False),
    ("div", div(x, y), lambda v: v["x"] / v["y"], False),
    ("div-scalar", div(x, a), lambda v: v["x"] / v["a"], False),
    ("div-fraction", M("mul", E.num(Fraction(-3, 4)), x, M("pow", a, E.num(-1)),
                        M("pow", y, E.num(-2))),
     lambda v: -0.75 * v["x"] / (v["a"] * v["y"] ** 2), False),
    ("div-of-product", div(M("matmul", A, x), M("add", a, b)),
     lambda v: (v["A"] @ v["x"]) / (v["a"] + v["b"]), False),
    ("div-by-neg", div(a, E.num(-2)), lambda v: v["a"] / -2, False),
    # pow
    ("pow-2", M("pow", x, E.num(2)), lambda v: v["x"] ** 2, False),
    ("pow-3-neg-base", M("pow", neg(a), E.num(3)), lambda v: (-v["a"]) ** 3, False),
    ("pow-minus-1", M("pow", x, E.num(-1)), lambda v: 1 / v["x"], False),
    ("pow-half", M("pow", x, E.num(Fraction(1, 2))), lambda v: np.sqrt(v["x"]), True),
    ("pow-minus-half", M("pow", A, E.num(Fraction(-3, 2))), lambda v: v["A"] ** -1.5, True),
    ("pow-zero", M("pow", A, E.num(0)), lambda v: np.ones(v["A"].shape), False),
    ("pow-expr", M("pow", x, a), lambda v: v["x"] ** v["a"], True),
    ("pow-of-pow", M("pow", M("pow", a, E.num(2)), E.num(3)), lambda v: v["a"] ** 6, False),
    ("pow-dim", M("pow", E.dim("n"), E.num(-1)), lambda v: 1 / len(v["x"]), False),
    # matmul by shape
    ("matmul-matrix-column", M("matmul", A, x), lambda v: v["A"] @ v["x"], False),
    ("matmul-row-matrix", M("matmul", T(u), A), lambda v: v["u"] @ v["A"], False),
    ("matmul-outer", M("matmul", x, T(y)), lambda v: np.outer(v["x"], v["y"]), False),
    ("matmul-dot", M("matmul", T(x), y), lambda v: float(v["x"] @ v["y"]), False),
    ("matmul-scalar-row", M("matmul", a, T(x)), lambda v: v["a"] * v["x"], False),
    ("matmul-column-scalar", M("matmul", x, a), lambda v: v["x"] * v["a"], False),
    ("matmul-scalars", M("matmul", a, b), lambda v: v["a"] * v["b"], False),
    ("matmul-matrices", M("matmul", A, C), lambda v: v["A"] @ v["C"], False),
    ("matmul-chain", M("matmul", T(u), A, x), lambda v: v["u"] @ v["A"] @ v["x"], False),
    ("matmul-quadratic", M("matmul", T(x), S, x), lambda v: v["x"] @ v["S"] @ v["x"], False),
    ("matmul-outer-chain", M("matmul", x, T(y), X), lambda v: np.outer(v["x"], v["y"]) @ v["X"],
     False),
    ("matmul-right-product", M("matmul", A, M("matmul", X, x)),
     lambda v: v["A"] @ (v["X"] @ v["x"]), False),
    ("matmul-of-sums", M("matmul", M("add", X, T(X)), M("add", x, y)),
     lambda v: (v["X"] + v["X"].T) @ (v["x"] + v["y"]), False),
    # transpose
    ("T-matrix", T(A), lambda v: v["A"].T, False),
    ("T-of-sum", T(M("add", X, Y)), lambda v: (v["X"] + v["Y"]).T, False),
    ("T-vector", T(x), lambda v: v["x"], False),
    ("T-scalar", T(a), lambda v: v["a"], False),
    # literals
    ("vector", lit_vector(a, b, M("mul", a, b)), lambda v: np.array([v["a"], v["b"],
                                                                      v["a"] * v["b"]]), False),
    ("vector-1", lit_vector(a), lambda v: v["a"], False),
    ("vector-dims", lit_vector(E.dim("n"), E.num(1)), lambda v: np.array([len(v["x"]), 1.0]),
     False),
    ("matrix", lit_matrix([[a, b], [E.num(0), M("pow", a, E.num(2))]]),
     lambda v: np.array([[v["a"], v["b"]], [0, v["a"] ** 2]]), False),
    ("matrix-2x3", lit_matrix([[a, b, E.num(1)], [b, a, E.num(2)]]),
     lambda v: np.array([[v["a"], v["b"], 1], [v["b"], v["a"], 2]]), False),
    ("matrix-row", lit_matrix([[a, b]]), lambda v: np.array([v["a"], v["b"]]), False),
    ("matrix-column", lit_matrix([[a], [b]]), lambda v: np.array([v["a"], v["b"]]), False),
    ("matrix-1x1", lit_matrix([[a]]), lambda v: v["a"], False),
    # indicators
    ("gt", M("gt", x, y), lambda v: (v["x"] > v["y"]).astype(float), False),
    ("ge", M("ge", x, a), lambda v: (v["x"] >= v["a"]).astype(float), False),
    ("lt", M("lt", A, B), lambda v: (v["A"] < v["B"]).astype(float), False),
    ("le", M("le", a, b), lambda v: float(v["a"] <= v["b"]), False),
    ("gt-scalars", M("gt", a, b), lambda v: float(v["a"] > v["b"]), False),
    ("le-equal", M("le", a, a), lambda v: 1.0, False),
    ("gt-times", M("mul", M("gt", x, E.num(0)), y), lambda v: (v["x"] > 0) * v["y"], False),
    # element-wise functions
    ("sin", M("sin", x), lambda v: np.sin(v["x"]), False),
    ("cos", M("cos", A), lambda v: np.cos(v["A"]), False),
    ("tan", M("tan", a), lambda v: np.tan(v["a"]), False),
    ("exp", M("exp", x), lambda v: np.exp(v["x"]), False),
    ("exp-1", M("exp", E.ONE), lambda v: np.e, False),
    ("log", M("log", x), lambda v: np.log(v["x"]), True),
    ("sqrt", M("sqrt", A), lambda v: np.sqrt(v["A"]), True),
    ("tanh", M("tanh", x), lambda v: np.tanh(v["x"]), False),
    ("sigmoid", M("sigmoid", x), lambda v: sigmoid(v["x"]), False),
    ("sigmoid-scalar", M("sigmoid", a), lambda v: sigmoid(v["a"]), False),
    ("sigmoid-neg", M("sigmoid", neg(x)), lambda v: sigmoid(-v["x"]), False),
    ("relu", M("relu", x), lambda v: np.where(v["x"] > 0, v["x"], 0.0), False),
    ("relu-scalar", M("relu", a), lambda v: max(v["a"], 0.0), False),
    ("abs", M("abs", x), lambda v: np.abs(v["x"]), False),
    ("sign", M("sign", A), lambda v: np.sign(v["A"]), False),
    ("max", M("max", x, y), lambda v: np.maximum(v["x"], v["y"]), False),
    ("min", M("min", x, a), lambda v: np.minimum(v["x"], v["a"]), False),
    ("max-scalars", M("max", a, b), lambda v: max(v["a"], v["b"]), False),
    # reductions
    ("sum-vector", M("sum", x), lambda v: v["x"].sum(), False),
    ("sum-matrix", M("sum", A), lambda v: v["A"].sum(), False),
    ("mean", M("mean", A), lambda v: v["A"].mean(), False),
    ("norm-vector", M("norm", x), lambda v: np.sqrt(np.sum(v["x"] ** 2)), False),
    ("norm-matrix", M("norm", A), lambda v: np.sqrt(np.sum(v["A"] ** 2)), False),
    ("norm-scalar", M("norm", a), lambda v: abs(v["a"]), False),
    ("logsumexp", M("logsumexp", x), lambda v: np.log(np.sum(np.exp(v["x"]))), False),
    ("logsumexp-matrix", M("logsumexp", A), lambda v: np.log(np.sum(np.exp(v["A"]))), False),
    ("dot", M("dot", x, y), lambda v: float(np.sum(v["x"] * v["y"])), False),
    ("softmax", M("softmax", x), lambda v: softmax(v["x"]), False),
    ("softmax-expr", M("softmax", M("matmul", A, x)), lambda v: softmax(v["A"] @ v["x"]), False),
    # matrix functions
    ("tr", M("tr", X), lambda v: sum(v["X"][i, i] for i in range(len(v["X"]))), False),
    ("det", M("det", X), lambda v: np.prod(np.linalg.eigvals(v["X"])).real, False),
    ("logdet", M("logdet", S), lambda v: np.log(np.linalg.det(v["S"])), False),
    ("inv", M("inv", X), lambda v: np.linalg.solve(v["X"], np.eye(len(v["X"]))), False),
    ("inv-scalar", M("inv", a), lambda v: 1 / v["a"], False),
    ("inv-in-product", M("matmul", M("inv", X), x), lambda v: np.linalg.solve(v["X"], v["x"]),
     False),
    ("diag-vector", M("diag", x), lambda v: v["x"] * np.eye(len(v["x"])), False),
    ("diag-matrix", M("diag", X), lambda v: np.array([v["X"][i, i] for i in range(len(v["X"]))]),
     False),
    ("kron-matrices", M("kron", A, C), lambda v: kron2(v["A"], v["C"]), False),
    ("kron-columns", M("kron", x, u), lambda v: kron2(col(v["x"]), col(v["u"])).ravel(), False),
    ("kron-rows", M("kron", T(x), T(u)), lambda v: kron2(row(v["x"]), row(v["u"])).ravel(), False),
    ("kron-column-row", M("kron", x, T(u)), lambda v: np.outer(v["x"], v["u"]), False),
    ("kron-row-column", M("kron", T(x), u), lambda v: np.outer(v["u"], v["x"]), False),
    ("kron-matrix-column", M("kron", A, x), lambda v: kron2(v["A"], col(v["x"])), False),
    ("kron-row-matrix", M("kron", T(u), X), lambda v: kron2(row(v["u"]), v["X"]), False),
    ("kron-scalar", M("kron", a, A), lambda v: v["a"] * v["A"], False),
    ("kron-eye", M("kron", T(C), E.eye("m")), lambda v: kron2(v["C"].T, np.eye(len(v["u"]))),
     False),
    ("vec-matrix", M("vec", A), lambda v: np.concatenate([v["A"][:, j] for j in
                                                          range(v["A"].shape[1])]), False),
    ("vec-transpose", M("vec", T(A)), lambda v: v["A"].reshape(-1), False),
    ("vec-column", M("vec", x), lambda v: v["x"], False),
    ("vec-row", M("vec", T(u)), lambda v: v["u"], False),
    ("vec-in-diag", M("diag", M("vec", M("cos", A))),
     lambda v: np.diag(np.cos(v["A"]).flatten(order="F")), False),
]


def _values(seed, positive=False):
    rng = np.random.default_rng(seed)
    sizes = random_sizes({"n", "m", "k"}, rng)
    return random_values(TYPES, sizes, rng, positive=positive)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_to_numpy_matches_numpy_by_hand(case, seed):
    _, e, reference, positive = case
    text = to_numpy(e, DIMS)
    v = _values(seed, positive)
    got = evaluate(text, v)
    want = reference(v)
    assert_close(got, want, rtol=1e-10, atol=1e-12, what=text)
    # the contract's value kinds: scalars are floats, vectors 1-D, matrices 2-D
    if e.shape == SCALAR:
        assert isinstance(got, float), (text, type(got))
    else:
        assert np.ndim(got) == (2 if "1" not in e.shape else 1), (text, np.shape(got))


def _ops(e, out):
    out.add(e.op)
    for arg in e.args:
        _ops(arg, out)
    return out


def test_every_operator_is_covered():
    covered = set()
    for _, e, _, _ in CASES:
        _ops(e, covered)
    assert set(TEXT_TABLE) <= set(numpy_code._TABLE), set(TEXT_TABLE) - set(numpy_code._TABLE)
    assert set(numpy_code._TABLE) <= covered, set(numpy_code._TABLE) - covered


def test_unknown_operator_is_an_error():
    with pytest.raises(ValueError, match="frobnicate"):
        to_numpy(E.Expr("frobnicate", (x,), x.shape), DIMS)


def test_no_eval_in_the_module():
    source = inspect.getsource(numpy_code)
    assert "eval(" not in source and "exec(" not in source


# ---- texts ---------------------------------------------------------------------------

@pytest.mark.parametrize("e, text", [
    (x, "x"),
    (T(x), "x"),
    (T(A), "A.T"),
    (M("matmul", A, x), "A @ x"),
    (M("matmul", x, T(y)), "np.outer(x, y)"),
    (M("matmul", T(x), y), "x @ y"),
    (sub(x, y), "x - y"),
    (neg(x), "-x"),
    (div(M("sum", x), E.dim("n")), "np.sum(x) / x.shape[0]"),
    (M("mul", E.num(2), M("matmul", X, x)), "2.0 * (X @ x)"),
    (M("mul", y, M("matmul", X, x)), "y * (X @ x)"),
    (M("add", M("matmul", X, x), M("matmul", T(X), x)), "X @ x + X.T @ x"),
    (M("matmul", M("add", X, T(X)), x), "(X + X.T) @ x"),
    (M("gt", x, a), "np.greater(x, a) * 1.0"),
    (M("relu", x), "np.maximum(x, 0.0)"),
    (M("logdet", X), "np.linalg.slogdet(X)[1]"),
    (M("vec", X), "np.ravel(X, order='F')"),
    (PI, "np.pi"),
    (E.num(Fraction(1, 4)), "0.25"),
    (M("pow", x, E.num(Fraction(1, 2))), "np.power(x, 0.5)"),
    (M("pow", x, E.num(2)), "x ** 2"),
    (lit_vector(a, b), "np.array([a, b], dtype=float)"),
])
def test_texts(e, text):
    assert to_numpy(e, DIMS) == text


def test_dims_mapping():
    dims = {"n": "x.shape[0]", "m": "len(u)", "k": "4"}
    assert to_numpy(E.ones("n"), dims) == "np.ones(x.shape[0])"
    assert to_numpy(E.eye("m"), dims) == "np.eye(len(u))"
    assert to_numpy(E.zeros(("m", "n")), dims) == "np.zeros((len(u), x.shape[0]))"
    assert to_numpy(E.zeros(("1", "n")), dims) == "np.zeros(x.shape[0])"
    assert to_numpy(E.ones("7"), dims) == "np.ones(7)"                 # integers as themselves
    assert to_numpy(E.ones("m*n"), dims) == "np.ones(len(u) * x.shape[0])"
    assert to_numpy(E.dim("k"), dims) == "4"
    assert to_numpy(E.dim("q"), dims) == "q"                          # unmapped: the name
    # a dimension leaf whose size text is not atomic is parenthesised
    e = M("mul", E.num(2), M("pow", E.dim("n"), E.num(-1)))
    assert to_numpy(e, {"n": "p + 1"}) == "2.0 / (p + 1)"
    assert evaluate(to_numpy(e, {"n": "p + 1"}), {"p": 3}) == 0.5
    # product dims evaluate
    v = {"x": np.zeros(3), "u": np.zeros(2)}
    assert evaluate(to_numpy(E.ones("m*n"), dims), v).shape == (6,)
    assert evaluate(to_numpy(E.zeros(("n", "m")), dims), v).shape == (3, 2)
    assert evaluate(to_numpy(M("mul", E.dim("m*n"), E.ones("k")), dims), v).tolist() == [6.0] * 4


# ---- shared subexpressions -------------------------------------------------------------

def test_walrus_names():
    t1 = M("matmul", A, x)
    t2 = M("add", t1, u)
    e = M("sum", M("mul", t2, t1))
    text = to_numpy(e, DIMS, {t1: "t1", t2: "t2"})
    assert text == "((t1 := A @ x), (t2 := t1 + u), np.sum(t2 * t1))[-1]"
    v = _values(3)
    assert_close(evaluate(text, v), np.sum((v["A"] @ v["x"] + v["u"]) * (v["A"] @ v["x"])))


def test_walrus_order_follows_dependencies():
    t1 = M("matmul", A, x)
    t2 = M("sigmoid", t1)
    e = M("add", M("matmul", T(t2), u), M("dot", t1, t1))
    text = to_numpy(e, DIMS, {t2: "s", t1: "z"})          # given in the wrong order
    assert text.index("(z :=") < text.index("(s :=")
    assert text.count("A @ x") == 1
    v = _values(4)
    z = v["A"] @ v["x"]
    assert_close(evaluate(text, v), sigmoid(z) @ v["u"] + z @ z)


def test_walrus_order_keeps_the_names_order_where_dependencies_allow():
    inner = M("matmul", A, x)
    outer = M("sigmoid", inner)
    apart = M("exp", u)
    e = M("add", M("sum", M("mul", outer, apart)), M("dot", inner, inner))
    text = to_numpy(e, DIMS, {outer: "a", inner: "b", apart: "c"})
    # a waits for b; once b is placed, a comes before c, as in the given order
    assert text.index("(b :=") < text.index("(a :=") < text.index("(c :=")
    v = _values(3)
    z = v["A"] @ v["x"]
    assert_close(evaluate(text, v), np.sum(sigmoid(z) * np.exp(v["u"])) + z @ z)


def test_walrus_unused_names_and_named_root():
    t1 = M("matmul", A, x)
    unused = M("exp", x)
    assert to_numpy(M("sum", t1), DIMS, {unused: "t9", t1: "t1"}) == \
        "((t1 := A @ x), np.sum(t1))[-1]"
    assert to_numpy(t1, DIMS, {t1: "t1"}) == "((t1 := A @ x), t1)[-1]"
    assert to_numpy(M("sum", t1), DIMS, {}) == "np.sum(A @ x)"
    with pytest.raises(ValueError):
        to_numpy(t1, DIMS, {t1: "not a name"})


def test_walrus_inside_operators():
    t1 = M("add", x, y)
    e = M("add", neg(t1), M("matmul", X, t1), M("softmax", t1))
    text = to_numpy(e, DIMS, {t1: "t1"})
    assert text.count("x + y") == 1
    v = _values(5)
    s = v["x"] + v["y"]
    assert_close(evaluate(text, v), -s + v["X"] @ s + softmax(s))


def test_shared_dag_prints_each_node_once_in_time():
    names, e = {}, x
    for i in range(40):                  # 2**40 leaves if the DAG were walked as a tree
        e = M("add", e, e)
        names[e] = f"t{i + 1}"
    text = to_numpy(e, DIMS, names)
    assert text.count(":=") == 40
    v = _values(6)
    assert_close(evaluate(text, v), 2.0 ** 40 * v["x"], rtol=1e-12)
    # without names the text doubles at each level, but each node is printed once
    small = x
    for _ in range(10):
        small = M("add", small, small)
    assert to_numpy(small, DIMS).count("x") == 2 ** 10


def test_deep_tree_is_not_recursive():
    e = x
    for _ in range(3000):
        e = M("sin", e)
    text = to_numpy(e, DIMS)
    assert text.count("np.sin(") == 3000


# ---- numerical stability ----------------------------------------------------------------

def test_stable_forms():
    big = {"x": np.array([1000.0, 1000.0, -1000.0]), "a": -1000.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_close(evaluate(to_numpy(M("logsumexp", x), DIMS), big), 1000 + np.log(2))
        assert_close(evaluate(to_numpy(M("softmax", x), DIMS), big), [0.5, 0.5, 0.0])
        assert_close(evaluate(to_numpy(M("sigmoid", x), DIMS), big), [1.0, 1.0, 0.0])
        assert evaluate(to_numpy(M("sigmoid", a), DIMS), big) == pytest.approx(np.exp(-1000))


# ---- the harness -----------------------------------------------------------------------

def test_random_sizes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sizes = random_sizes(frozenset({"m", "n", "k"}), rng)
        assert set(sizes) == {"m", "n", "k"}
        assert all(2 <= s <= 5 for s in sizes.values())
        assert len(set(sizes.values())) == 3
    many = random_sizes([f"d{i}" for i in range(7)] + ["3"], rng)
    assert len(many) == 7 and all(2 <= s <= 5 for s in many.values())
    assert random_sizes({"n", "m"}, 7) == random_sizes({"m", "n"}, 7)


def test_random_values():
    from mcalc.types import VarType
    rng = np.random.default_rng(1)
    sizes = {"n": 3, "m": 4}
    types = {"a": "scalar", "x": "vector(n)", "A": "matrix(m, n)", "X": "matrix(n, n)",
             "S": "symmetric(n)", "V": VarType("vector", ("m", "1")), "F": "matrix(2, n)"}
    v = random_values(types, sizes, rng)
    assert isinstance(v["a"], float)
    assert v["x"].shape == (3,) and v["V"].shape == (4,)
    assert v["A"].shape == (4, 3) and v["F"].shape == (2, 3)
    assert np.array_equal(v["S"], v["S"].T)
    for name in ("X", "S"):
        assert np.linalg.cond(v[name]) < 100
    p = random_values(types, sizes, rng, positive=True)
    for value in p.values():
        assert np.all(np.asarray(value) > 0)


def test_evaluate_namespace():
    assert evaluate("np.sum(x) + a", {"x": np.ones(3), "a": 1.0}) == 4.0


def test_assert_close_messages():
    assert_close(1.0, 1.0 + 1e-9)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_close(np.ones(3), np.ones((3, 1)))
    with pytest.raises(AssertionError, match="transposed"):
        m = np.arange(4.0).reshape(2, 2)
        assert_close(m, m.T)
    with pytest.raises(AssertionError, match="a = 2·b"):
        assert_close(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="worst at index"):
        assert_close(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def _check_fd(f, values, wrt, numerator, denominator=None):
    assert_close(finite_difference(f, values, wrt), numerator, what="numerator")
    expected = denominator if denominator is not None else np.asarray(numerator).T
    assert_close(finite_difference(f, values, wrt, layout="denominator"), expected,
                 what="denominator")


def test_fd_scalar_by_scalar():
    v = {"a": 0.7}
    got = finite_difference(lambda w: w["a"] ** 3, v, "a")
    assert isinstance(got, float)
    assert_close(got, 3 * 0.7 ** 2)


def test_fd_scalar_by_vector():
    v = _values(10)
    _check_fd(lambda w: np.sum(np.sin(w["x"])), v, "x", np.cos(v["x"]), np.cos(v["x"]))
    assert finite_difference(lambda w: np.sum(np.sin(w["x"])), v, "x").ndim == 1


def test_fd_vector_by_scalar():
    v = _values(11)
    _check_fd(lambda w: w["a"] * w["x"], v, "a", v["x"], v["x"])


def test_fd_vector_by_vector():
    v = _values(12)
    _check_fd(lambda w: w["A"] @ w["x"], v, "x", v["A"], v["A"].T)
    _check_fd(lambda w: np.tanh(w["x"]), v, "x", np.diag(1 - np.tanh(v["x"]) ** 2))


def test_fd_scalar_by_matrix():
    v = _values(13)
    # d/dZ tr(A@Z) for Z (n×m): A in numerator layout, A' in denominator
    z = {**v, "Z": np.random.default_rng(0).standard_normal(v["A"].shape[::-1])}
    _check_fd(lambda w: np.trace(w["A"] @ w["Z"]), z, "Z", v["A"], v["A"].T)
    # d/dX x'Xy = x y' (denominator), y x' (numerator)
    _check_fd(lambda w: w["x"] @ w["X"] @ w["y"], v, "X", np.outer(v["y"], v["x"]),
              np.outer(v["x"], v["y"]))
    # symmetric S perturbed as a general matrix: d/dS x'Sx = x x' unconstrained
    _check_fd(lambda w: w["x"] @ w["S"] @ w["x"], v, "S", np.outer(v["x"], v["x"]))


def test_fd_matrix_by_scalar():
    v = _values(14)
    _check_fd(lambda w: w["a"] ** 2 * w["A"], v, "a", 2 * v["a"] * v["A"], 2 * v["a"] * v["A"].T)


def test_fd_vec_forms():
    v = _values(15)
    rng = np.random.default_rng(2)
    P = rng.standard_normal((2, v["A"].shape[0]))
    Q = rng.standard_normal((v["A"].shape[1], 3))
    # d/dA P@A@Q = kron(Q', P)
    _check_fd(lambda w: P @ w["A"] @ Q, v, "A", np.kron(Q.T, P))
    # element-wise g(X): diag(vec(g'(X)))
    _check_fd(lambda w: np.sin(w["A"]), v, "A", np.diag(np.cos(v["A"]).reshape(-1, order="F")))
    # vector by matrix: d/dA A@x = kron(x', I)
    _check_fd(lambda w: w["A"] @ w["x"], v, "A", np.kron(v["x"][None, :], np.eye(len(v["u"]))))
    # matrix by vector: d/dx x u' = kron(u, I) (vec(x u') = kron(u, I) x)
    _check_fd(lambda w: np.outer(w["x"], w["u"]), v, "x", np.kron(v["u"][:, None],
                                                                  np.eye(len(v["x"]))))


def test_fd_of_generated_text():
    """The harness and to_numpy together: the derivative's text, checked numerically."""
    v = _values(16)
    f = to_numpy(M("sum", M("sin", M("matmul", A, x))), DIMS)
    grad_text = to_numpy(M("matmul", T(M("cos", M("matmul", A, x))), A), DIMS)   # numerator
    assert_close(finite_difference(lambda w: evaluate(f, w), v, "x"), evaluate(grad_text, v))
    g = to_numpy(M("logdet", X), DIMS)
    assert_close(finite_difference(lambda w: evaluate(g, w), v, "X"),
                 evaluate(to_numpy(M("inv", X), DIMS), v))            # numerator: inv(X)
    h = to_numpy(M("matmul", A, X), DIMS)
    assert_close(finite_difference(lambda w: evaluate(h, w), v, "X"),
                 evaluate(to_numpy(M("kron", E.eye("n"), A), DIMS), v))


def test_fd_layout_is_checked():
    with pytest.raises(ValueError):
        finite_difference(lambda w: w["a"], {"a": 1.0}, "a", layout="sideways")


def test_numpy_printer_is_iterative_at_any_depth(shallow_stack):
    # (texts are ropes: a 9,000-deep tree once cost 300 MiB of copied strings)
    e = x
    for _ in range(9000):
        e = M("sin", e)
    assert to_numpy(e, DIMS) == "np.sin(" * 9000 + "x" + ")" * 9000
