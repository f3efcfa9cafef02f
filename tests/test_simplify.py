"""Each named rewrite of mcalc.simplify, on typed expressions; values are kept (the
numeric tests check whole derivations), shapes are never lost."""
import numpy as np
import pytest

from mcalc.pipeline import typed
from mcalc.printing.text import to_text
from mcalc.simplify import REWRITES, simplify

DECLS = " where x, v, a, b: vector(n); A, B: matrix(n, n); S: symmetric(n); c: scalar"


# (before, after, rewrite): laws of inverses, diagonals and Kronecker products, each also
# checked by value below (numpy, written out here)
ALGEBRA_LAWS = [
    ("inv(inv(A))", "A", "inverse laws", lambda v: v["A"]),
    ("B@inv(A)@A", "B", "inverse laws", lambda v: v["B"]),
    ("A'@inv(A)'@B", "B", "inverse laws", lambda v: v["B"]),
    ("inv(A)@A", "eye(n)", "inverse laws", lambda v: np.eye(len(v["A"]))),
    ("diag(diag(x))", "x", "diagonal matrices", lambda v: v["x"]),
    ("diag(c*diag(x))", "c*x", "diagonal matrices", lambda v: v["c"] * v["x"]),
    ("diag(3*eye(n))", "3*ones(n)", "diagonal matrices", lambda v: 3 * np.ones(len(v["x"]))),
    ("diag(ones(n)@ones(n)')", "ones(n)", "diagonal matrices",
     lambda v: np.ones(len(v["x"]))),
    ("norm(diag(x))", "norm(x)", "diagonal matrices", lambda v: np.linalg.norm(v["x"])),
    ("diag(c*x@a')", "c*a*x", "diagonal matrices", lambda v: v["c"] * v["a"] * v["x"]),
    ("diag(ones(n)@x' + 2*diag(a) - eye(n))", "x + 2*a - 1", "diagonal matrices",
     lambda v: v["x"] + 2 * v["a"] - 1),
    ("kron(eye(n), eye(n))", "eye(n*n)", "Kronecker laws",
     lambda v: np.eye(len(v["x"]) ** 2)),
    ("kron(a', x)", "x@a'", "Kronecker laws", lambda v: np.outer(v["x"], v["a"])),
    ("kron(eye(n), c*vec(A)')@kron(vec(eye(n)), eye(n))", "c*A'", "unvec",
     lambda v: v["c"] * v["A"].T),
    ("kron(vec(eye(n))', eye(n))@kron(eye(n), vec(A)*c)", "c*A", "unvec",
     lambda v: v["c"] * v["A"]),
    ("sin(vec(A)) + exp(vec(B))", "vec(sin(A) + exp(B))", "vec of an element-wise function",
     lambda v: (np.sin(v["A"]) + np.exp(v["B"])).reshape(-1, order="F")),
    ("kron(x, a')", "x@a'", "Kronecker laws", lambda v: np.outer(v["x"], v["a"])),
    ("kron(x', x) + x@x'", "2*x@x'", "Kronecker laws", lambda v: 2 * np.outer(v["x"], v["x"])),
    ("tr(A')", "tr(A)", "transpose rules", lambda v: np.trace(v["A"])),
    ("det((A@B)')", "det(A@B)", "transpose rules", lambda v: np.linalg.det(v["A"] @ v["B"])),
    ("logdet(A')", "logdet(A)", "transpose rules", lambda v: np.log(np.linalg.det(v["A"]))),
    ("abs(x)*sign(x)", "x", "abs(u)*sign(u) = u", lambda v: v["x"]),
    ("2*sign(x)*abs(x)^3", "2*x*abs(x)^2", "abs(u)*sign(u) = u",
     lambda v: 2 * v["x"] * np.abs(v["x"]) ** 2),
    ("x*sign(x)", "abs(x)", "abs(u)*sign(u) = u", lambda v: np.abs(v["x"])),
    ("x*abs(x)*sign(x)", "x^2", "abs(u)*sign(u) = u", lambda v: v["x"] ** 2),
    ("ones(n)'@ones(n)", "n", "1ᵀv = sum(v)", lambda v: len(v["x"])),
    ("inv(A'@A)'", "inv(A'@A)", "transpose rules", lambda v: np.linalg.inv(v["A"].T @ v["A"])),
    ("(B'@B)'", "B'@B", "transpose rules", lambda v: v["B"].T @ v["B"]),
    ("ones(n)'@(x - mean(x))", "0", "centred sums vanish", lambda v: 0.0),
    ("c*mean(mean(x) - x)", "0", "centred sums vanish", lambda v: 0.0),
    ("(eye(n) - x@ones(n)')@diag(x)", "diag(x) - x@x'", "distribute a diagonal matrix",
     lambda v: np.diag(v["x"]) - np.outer(v["x"], v["x"])),
    ("diag(a)@(eye(n) + 2*ones(n)@b')", "diag(a) + 2*a@b'", "distribute a diagonal matrix",
     lambda v: np.diag(v["a"]) + 2 * np.outer(v["a"], v["b"])),
    ("diag(exp(x))/sum(exp(x))", "diag(softmax(x))", "exp(x)/sum(exp(x)) = softmax(x)",
     lambda v: np.diag(np.exp(v["x"]) / np.exp(v["x"]).sum())),
    ("exp(x)@exp(x)'/sum(exp(x))^2", "softmax(x)@softmax(x)'",
     "exp(x)/sum(exp(x)) = softmax(x)",
     lambda v: np.outer(np.exp(v["x"]), np.exp(v["x"])) / np.exp(v["x"]).sum() ** 2),
    ("ones(n)@exp(x)'/sum(exp(x))", "ones(n)@softmax(x)'", "exp(x)/sum(exp(x)) = softmax(x)",
     lambda v: np.outer(np.ones(len(v["x"])), np.exp(v["x"]) / np.exp(v["x"]).sum())),
    # numbers and roots the fuzzing audit found left as written (1^0.5, 4^0.5, sqrt(u)^2)
    ("c*1^c + 1^0.5", "c + 1", "fold constants", lambda v: v["c"] + 1),
    ("4^0.5*x + (9/4)^(3/2)*a", "2*x + 27/8*a", "fold constants",
     lambda v: 2 * v["x"] + 27 / 8 * v["a"]),
    ("sqrt(0.25)*x", "x/2", "fold constants", lambda v: 0.5 * v["x"]),
    ("sqrt(abs(x))^4 + sqrt(0.5)^2", "abs(x)^2 + 0.5", "sqrt(u)^2 = u",
     lambda v: np.abs(v["x"]) ** 2 + 0.5),
    ("min(x, x) + max(c, c)*(x < x) + (x >= x)", "x + 1", "fold constants",
     lambda v: v["x"] + 1),
    ("inv(eye(n) + A')'", "inv(eye(n) + A)", "transpose rules",     # inv(M)' = inv(M')
     lambda v: np.linalg.inv(np.eye(len(v["A"])) + v["A"])),
    ("inv(B'@A')'", "inv(A@B)", "transpose rules", lambda v: np.linalg.inv(v["A"] @ v["B"])),
    ("c*x@(c*(x'@A))", "c^2*x@x'@A", "associativity",             # not x@(x'@A)
     lambda v: v["c"] ** 2 * np.outer(v["x"], v["x"]) @ v["A"]),
]


def test_the_diagonal_of_a_sum_is_split_only_when_every_term_has_one():
    e = typed("diag(A + x@a')" + DECLS)[1]
    assert to_text(simplify(e)) == "diag(A + x@a')"


@pytest.mark.parametrize("kept", ["(A + eye(n))@diag(x)", "(A - 1)@diag(x)"])
def test_a_diagonal_matrix_is_distributed_only_when_every_term_takes_it(kept):
    """A@diag(x) keeps its product, and the 1 in A - 1 is the all-ones matrix (J@diag(x)
    is ones(n)@x', not diag(x)): the sum stays whole, and no rewrite is named."""
    from mcalc.evaluate import evaluate
    e = typed(kept + DECLS)[1]
    fired = []
    out = simplify(e, fired)
    assert "distribute a diagonal matrix" not in fired
    rng = np.random.default_rng(3)
    v = {"A": rng.standard_normal((4, 4)), "x": rng.standard_normal(4)}
    assert np.allclose(np.asarray(evaluate(out, v, {"n": 4})),
                       np.asarray(evaluate(e, v, {"n": 4})), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("before,after,rewrite,value", ALGEBRA_LAWS)
def test_algebra_laws_keep_values(before, after, rewrite, value):
    from mcalc.evaluate import evaluate
    e = typed(before + DECLS)[1]
    rng = np.random.default_rng(5)
    n = 4
    v = {k: rng.standard_normal((n, n)) + n * np.eye(n) for k in ("A", "B")}
    v.update({k: rng.standard_normal(n) for k in ("x", "v", "a", "b")}, c=1.7,
             S=np.eye(n))
    got = np.asarray(evaluate(simplify(e), v, {"n": n}))
    assert np.allclose(got, value(v), rtol=1e-10, atol=1e-10)
    assert np.allclose(np.asarray(evaluate(e, v, {"n": n})), value(v), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("before,after,rewrite", [
    ("ones(n)'@diag(x)", "x'", "1ᵀdiag(v) = vᵀ"),
    ("diag(x)@ones(n)", "x", "1ᵀdiag(v) = vᵀ"),
    ("diag(a)@diag(b)", "diag(a*b)", "diag(a)diag(b) = diag(a⊗b)"),
    ("diag(a)@v", "a*v", "diag(a)v = a⊗v"),
    ("ones(n)'@v", "sum(v)", "1ᵀv = sum(v)"),
    ("A@x + A'@x", "(A + A')@x", "factor common operand"),
    ("A'@B'", "(B@A)'", "transpose rules"),
    ("(A' + B'@A')'", "A + A@B", "transpose rules"),
    ("x'' + 2*x + x", "4*x", "like terms"),
    ("2*3*x*x", "6*x^2", "fold constants"),
    ("eye(n)@A", "A", "identity"),
    ("(2*A)@B", "2*A@B", "scalars out of products"),
    ("exp(c)/(1 + exp(c))", "sigmoid(c)", "exp(u)/(1 + exp(u)) = sigmoid(u)"),
    ("kron(A, B)@kron(A, B)", "kron(A@A, B@B)", "mixed product (A⊗B)(C⊗D) = AC⊗BD"),
    ("A@(B@x)", "A@B@x", "associativity"),
    ("diag(a) + 2*diag(b)", "diag(a + 2*b)", "diag and vec are linear"),
    ("eye(n) + diag(x)", "diag(x + 1)", "diag and vec are linear"),
    ("vec(A)*vec(B)", "vec(A*B)", "diag and vec are linear"),
    ("vec(A) + vec(B) + 1", "vec(A + B + 1)", "diag and vec are linear"),
    ("vec(A/A)", "ones(n*n)", "diag and vec are linear"),
    ("diag(a)@diag(1/a)", "eye(n)", "diag(a)diag(b) = diag(a⊗b)"),
    ("eye(n)*eye(n)", "eye(n)", "fold constants"),
    ("(A*eye(n))'", "A*eye(n)", "transpose rules"),
    ("sum(x*(A@x))", "x'@A@x", "sum(u⊗v) = uᵀv"),
    ("sum(x'*(A@x)')", "x'@A@x", "sum(u⊗v) = uᵀv"),
    ("c*(A@x) + 2*c*(A'@x)", "c*(A + 2*A')@x", "factor common operand"),
    ("A@exp(x)/sum(exp(x))", "A@softmax(x)", "exp(x)/sum(exp(x)) = softmax(x)"),
    ("2*exp(x)'@A/sum(exp(x))", "2*softmax(x)'@A", "exp(x)/sum(exp(x)) = softmax(x)"),
] + [row[:3] for row in ALGEBRA_LAWS])
def test_rewrites(before, after, rewrite):
    e = typed(before + DECLS)[1]
    fired = []
    out = simplify(e, fired)
    assert to_text(out) == after
    assert out.shape == e.shape
    assert rewrite in fired
    assert rewrite in {name for name, _, _ in REWRITES}


def test_a_transpose_is_never_dropped():
    e = typed("x'" + DECLS)[1]
    assert to_text(simplify(e)) == "x'" and simplify(e).shape == ("1", "n")


def test_zero_keeps_its_shape():
    e = typed("x - x" + DECLS)[1]
    assert simplify(e).shape == ("n", "1")


def test_ten_thousand_levels_without_recursion():
    """The simplifier walks with explicit stacks: a 10,000-deep tree is simplified with
    Python's default recursion limit, in each shape of nesting."""
    import sys
    from mcalc import expr as E
    x, y = E.var("x", ("n", "1")), E.var("y", ("1", "1"))
    sys_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        for step in (lambda e, i: E.make("sin", e),
                     lambda e, i: E.make("add", e, E.make("mul", E.num(i % 5 + 1), x)),
                     lambda e, i: E.make("mul", e, E.make("cos", x)) if i % 2 else
                     E.make("mul", E.make("add", x, E.num(1)), e),
                     lambda e, i: E.make("add", E.make("mul", e, y), E.num(1))):
            e = x
            for i in range(10_000):
                e = step(e, i)
            assert simplify(e).shape == ("n", "1")
    finally:
        sys.setrecursionlimit(sys_limit)


@pytest.mark.parametrize("before,after", [
    ("exp(x)/sum(exp(x))", "softmax(x)"),
    ("1/(1 + exp(-c))", "sigmoid(c)"),
    ("log(exp(c))", "c"),
    ("sqrt(x'@x)", "norm(x)"),
    ("1/2*A + 1/2*A'", "(A + A')/2"),
    ("c/(1 + c) + 1/(1 + c)", "1"),
    ("(a - b)*(a + b) + b^2", "a^2"),
    ("relu(x)*(x > 0)", "x*(x > 0)"),
    ("1 - A/A", "0*ones(n)@ones(n)'"),                      # the all-ones matrix is 1 here
    ("sum(softmax(x))*c", "c"),
    ("3/c*A - 3/c^3*B", "3*(A/c - B/c^3)"),               # the number alone taken out
    ("(x + ones(n))*c - c", "c*x"),
])
def test_textbook_algebra(before, after):
    e = typed(before + DECLS)[1]
    fired = []
    assert to_text(simplify(e, fired)) == after and fired


def test_rational_roots_are_factored_when_shorter():
    e = typed("2*c^3 - 3*c^2 + c" + DECLS)[1]             # σ'' in σ: c(1 - c)(1 - 2c)
    assert to_text(simplify(e)) == "c*(1 - c)*(1 - 2*c)"


def test_names_with_numbers_are_ordered_as_numbers():
    """u2 before u10: a deep chain's product reads cos(u1)*cos(u2)*…*cos(u10)."""
    e = typed("cos(x10)*cos(x2)*x10*x1*cos(x1) where x1, x2, x10: scalar")[1]
    assert to_text(simplify(e)) == "x1*x10*cos(x1)*cos(x2)*cos(x10)"


def test_a_comparison_inside_a_call_has_the_calls_brackets_only():
    e = typed("diag(x > 0)@x + sum(vec(A > 0))" + DECLS)[1]
    printed = to_text(simplify(e))
    assert printed == "x*(x > 0) + sum(vec(A > 0))"
    assert typed(printed + DECLS)[1].shape == e.shape


@pytest.mark.parametrize("text", ["B@x + x'@A@x", "x'@B + x'@A@x", "B@x + c*x'@A@x"])
def test_a_scalar_spread_over_a_sum_shares_no_operand(text):
    """x'@A@x in a vector sum is a scalar spread over the vector, not a product ending in
    x: B@x + x'@A@x is not (B + x'@A)@x (found by the property tests)."""
    e = typed(text + DECLS)[1]
    out = simplify(e)
    assert to_text(out) == text and out.shape == e.shape


def test_a_transpose_stays_outside_a_sum_when_that_is_shorter():
    e = typed("(A@B + B)'" + DECLS)[1]                      # (A@B)' + B' is longer
    fired = []
    assert to_text(simplify(e, fired)) == "(A@B + B)'" and fired == []


def test_factors_whose_order_keys_tie_are_ordered_by_their_whole_trees():
    """sin(sin(sin(x))) and sin(sin(sin(y))) agree to the depth order keys look at: the
    fingerprint of the whole tree settles it, the same way whatever the input order."""
    import mcalc.simplify as S
    texts = {to_text(simplify(typed(f"{u}*{v}" + DECLS)[1]))
             for u, v in [("sin(sin(sin(x)))", "sin(sin(sin(v)))"),
                          ("sin(sin(sin(v)))", "sin(sin(sin(x)))")]}
    assert len(texts) == 1, texts
    s = S.Simplifier()
    e = typed("sin(sin(sin(x)))*sin(sin(sin(v)))" + DECLS)[1]
    s(e)
    a, b = (f.args[0].args[0] for f in [e.args[0], e.args[1]])
    assert S.fingerprint(a, s.keys, {}) != S.fingerprint(b, s.keys, {})
