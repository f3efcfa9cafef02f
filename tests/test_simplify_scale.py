"""The simplifier at size (issue #16): long products and chains simplify under a small
recursion limit, and what one Simplifier remembers across the steps of a derivation never
changes a result (a fresh Simplifier gives the same)."""
from __future__ import annotations

from mcalc import expr as E
from mcalc.simplify import Simplifier
from mcalc.types import SCALAR

N = 5000


def test_5000_factor_product_is_one_power(shallow_stack):
    x = E.var("x", SCALAR)
    e = x
    for _ in range(N - 1):
        e = E.Expr("mul", (e, x), SCALAR)
    assert Simplifier()(e) == E.Expr("pow", (x, E.num(N)), SCALAR)


def test_5000_matrix_chain_is_one_flat_product(shallow_stack):
    a, x = E.var("A", ("n", "n")), E.var("x", ("n", "1"))
    e = a
    for _ in range(N - 1):
        e = E.Expr("matmul", (e, a), ("n", "n"))
    e = E.Expr("matmul", (e, x), ("n", "1"))
    s = Simplifier()
    out = s(e)
    assert out.op == "matmul" and out.args == (a,) * N + (x,)
    # the prefixes A@A, A@A@A, ... built on the way are not all kept (N²/2 operands)
    assert sum(len(v.args) for v in s.memo.values()) < 4 * N


def test_5000_deep_sin_is_left_as_it_is(shallow_stack):
    e = E.var("x", SCALAR)
    for _ in range(N):
        e = E.Expr("sin", (e,), SCALAR)
    assert Simplifier()(e) is e


def test_a_growing_chain_simplifies_as_a_fresh_simplifier_would(shallow_stack):
    """The chain rule's shape for x*x*...*x: d_k = x*d_(k-1) + u_(k-1), too big for the
    algebra past a few dozen steps (remembered, not re-walked); and a product that grows by
    one factor a step (sin(sin(...x))'s cos(u_k)*...), with Kronecker factors among them."""
    x = E.var("x", SCALAR)
    shared = Simplifier()
    d = E.Expr("mul", (E.num(2), x), SCALAR)
    for k in range(1, 300):
        u = E.var(f"u{k}", SCALAR)
        d = shared(E.Expr("add", (E.Expr("mul", (x, d), SCALAR), u), SCALAR))
        if k % 37 == 0 or k < 6:
            raw = d
            assert Simplifier()(raw) == raw          # a fixed point, whichever simplifier
    p = E.var("x", SCALAR)
    u = x
    a, b = E.var("A", ("m", "m")), E.var("B", ("n", "n"))
    kron = E.Expr("kron", (a, b), ("m*n", "m*n"))
    p = kron
    for k in range(300):
        u = E.Expr("sin", (u,), SCALAR)
        step = E.Expr("mul", (E.Expr("cos", (u,), SCALAR), p), p.shape)
        got = shared(step)
        assert got == Simplifier()(step)
        p = got
    twice = Simplifier()(E.Expr("mul", (p, kron), p.shape))
    assert [f.op for f in twice.args].count("kron") == 1


GROWING = [
    "d/dx " + "sin(" * 60 + "x" + ")" * 60,
    "d/dx " + "tanh(" * 20 + "x" + ")" * 20,
    "d/dx exp(sin(cos(x)))*relu(sin(x))*(sin(x) > 0)",
    "d/dx sin(exp(sin(x^2)))*sin(x)^2",
    "d/dx log(sigmoid(sin(exp(x))))",
    "d/dx sqrt(sin(sin(x))) + sin(sin(x))*cos(sin(x))",
    "d/dw sum(tanh(W@tanh(w*x))) where W: matrix(n, n); x: vector(n)",
    "d/dx sin(x)*sin(sin(x))*sin(sin(sin(x)))",
]


def test_a_grown_product_is_the_general_ways(monkeypatch):
    """simplify._grow (a product extended by new factors without walking it) gives exactly
    what mul_ gives the general way, and fires the same rewrites."""
    from mcalc import simplify as S
    from mcalc.pipeline import derive
    grow, checked, general = S._grow, [], []

    def both(s, factors, shape, product):
        if general:                             # mul_ asked below: the general way
            return None
        got = grow(s, factors, shape, product)
        if got is not None:
            fired = list(s.fired)
            general.append(True)
            assert S.mul_(s, factors, shape) is got
            general.pop()
            assert s.fired == fired
            checked.append(got)
        return got

    monkeypatch.setattr(S, "_grow", both)
    for text in GROWING:
        derive(text)
    assert len(checked) > 60
