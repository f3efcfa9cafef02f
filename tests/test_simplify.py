"""Each named rewrite of mcalc.simplify, on typed expressions; values are kept (the
numeric tests check whole derivations), shapes are never lost."""
import pytest

from mcalc.pipeline import typed
from mcalc.printing.text import to_text
from mcalc.simplify import REWRITES, simplify

DECLS = " where x, v, a, b: vector(n); A, B: matrix(n, n); S: symmetric(n); c: scalar"


@pytest.mark.parametrize("before,after,rewrite", [
    ("ones(n)'@diag(x)", "x'", "1ᵀdiag(v) = vᵀ"),
    ("diag(x)@ones(n)", "x", "1ᵀdiag(v) = vᵀ"),
    ("diag(a)@diag(b)", "diag(a*b)", "diag(a)diag(b) = diag(a⊗b)"),
    ("diag(a)@v", "a*v", "diag(a)v = a⊗v"),
    ("ones(n)'@v", "sum(v)", "1ᵀv = sum(v)"),
    ("A@x + A'@x", "(A + A')@x", "factor common operand"),
    ("A'@B'", "(B@A)'", "transpose rules"),
    ("(A@B + B)'", "(A@B)' + B'", "transpose rules"),
    ("S'", "S", "transpose rules"),
    ("x'' + 2*x + x", "4*x", "like terms"),
    ("2*3*x*x", "6*x^2", "fold constants"),
    ("eye(n)@A", "A", "identity"),
    ("(2*A)@B", "2*A@B", "scalars out of products"),
    ("exp(c)/(1 + exp(c))", "sigmoid(c)", "exp(u)/(1 + exp(u)) = sigmoid(u)"),
    ("kron(A, B)@kron(A, B)", "kron(A@A, B@B)", "mixed product (A⊗B)(C⊗D) = AC⊗BD"),
    ("A@(B@x)", "A@B@x", "associativity"),
])
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
