"""Results keep their shape when fed back (CONTRACT §2: the result is printed in the
request language). Truth is independent of the code under test: central finite
differences of hand-written numpy functions, and shapes written out by hand.

- Cancellation (x/x, sqrt(x)/sqrt(x)) must not leave a scalar where an array stood.
- A zero array prints as 0*ones(n), 0*ones(n)', 0*ones(m)@ones(n)' (README "Conventions").
- The Simplifier's invariant: its output has its input's shape, in the tree and in the text.
- Property: printed results (and simplified expressions) re-parse with the same
  declarations to the same shape and the same values.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcalc
from mcalc import expr as E
from mcalc.pipeline import derive, typed
from mcalc.printing.latex import expr_to_latex as to_latex
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import to_text
from mcalc.simplify import Simplifier, simplify
from numeric import assert_close, evaluate, finite_difference, random_values
from test_properties import arithmetic

N = 4


def _fd(f, values, wrt, layout="numerator"):
    return finite_difference(f, values, wrt, layout)


def _fed_back_shape(d, decls):
    """The shape the printed result has when parsed again with the same declarations."""
    return typed(f"{to_text(d.result)} {decls}")[1].shape


# ---- bug 1: cancellation keeps the broadcast shape ---------------------------------------

def test_norm_of_sqrt_is_a_row():
    d = derive("d/dx norm(sqrt(x)) where x: vector(n)")
    assert to_text(d.result) == "ones(n)'/(2*norm(sqrt(x)))"
    assert d.result.shape == ("1", "n") == _fed_back_shape(d, "where x: vector(n)")
    rng = np.random.default_rng(1)
    for scale in (0.1, 1.0, 30.0):
        x = rng.uniform(0.5, 2.0, N) * scale
        got = evaluate(to_numpy(d.result, {"n": "np.shape(x)[0]"}), {"x": x})
        want = _fd(lambda v: np.linalg.norm(np.sqrt(v["x"])), {"x": x}, "x")
        assert_close(got, want, rtol=1e-5, what=f"scale {scale}")


@pytest.mark.parametrize("request_text,text,shape", [
    ("d/dx 2*sqrt(x)/sqrt(x) where x: vector(n)", "0*ones(n)@ones(n)'", ("n", "n")),
    ("d/dx sum(x - x) where x: vector(n)", "0*ones(n)'", ("1", "n")),
    ("d/dx logsumexp(x - x) where x: vector(n)", "0*ones(n)'", ("1", "n")),
    ("d/dX sum(X - X) where X: matrix(m, n)", "0*ones(n)@ones(m)'", ("n", "m")),
    ("d/da x*a/a where x: vector(n); a: scalar", "0*ones(n)", ("n", "1")),
])
def test_zero_derivatives_keep_their_shape(request_text, text, shape):
    d = derive(request_text)
    decls = request_text[request_text.index("where"):]
    assert to_text(d.result) == text
    assert d.result.shape == shape == _fed_back_shape(d, decls)
    values = random_values(d.types, {"n": 3, "m": 2}, np.random.default_rng(0), positive=True)
    got = evaluate(to_numpy(d.result, d.dims), values)
    assert np.shape(got) == np.shape(_fd(lambda v: evaluate(to_numpy(d.expr, d.dims), v),
                                         values, d.wrt[0]))
    assert not np.any(got)


def test_api_result_and_latex_of_a_zero_row():
    d = mcalc.derive("d/dx sum(x - x) where x: vector(n)")
    assert (d.result, d.shape) == ("0*ones(n)'", ("1", "n"))
    assert d.latex == r"\mathbf{0}^{T}"
    assert np.shape(d.function()(x=np.ones(5))) == (5,)


@pytest.mark.parametrize("shape,text,tex", [
    (("n", "1"), "0*ones(n)", r"\mathbf{0}"),
    (("1", "n"), "0*ones(n)'", r"\mathbf{0}^{T}"),
    (("m", "n"), "0*ones(m)@ones(n)'", r"\mathbf{0}"),
    (("1", "1"), "0", "0"),
])
def test_zero_leaf_prints_with_its_shape(shape, text, tex):
    z = E.zeros(shape)
    assert to_text(z) == text and to_latex(z) == tex
    assert typed(text)[1].shape == shape
    x = E.var("x", shape)
    assert to_text(E.make("add", x, z)) == f"x + {text}"         # as an operand too


def test_zero_row_transposed_and_scaled_parses_back():
    z = E.zeros(("1", "n"))
    for e in (E.make("T", z), E.make("mul", E.var("a", ("1", "1")), z)):
        assert typed(to_text(e) + " where a: scalar")[1].shape == e.shape


# ---- the Simplifier's invariant ------------------------------------------------------------

@pytest.mark.parametrize("op", ["mul", "add"])
def test_invariant_spreads_a_scalar_that_claims_an_array(op):
    a = E.var("a", ("1", "1"))
    for shape, ones in ((("n", "1"), "ones(n)"), (("1", "n"), "ones(n)'"),
                        (("m", "n"), "ones(m)@ones(n)'")):
        broken = E.Expr(op, (E.num(2), a), shape)          # prints as a scalar: the bug
        fixed = Simplifier().keep_shape(broken, shape)
        assert fixed.shape == shape
        assert to_text(fixed).endswith(ones)
        assert typed(to_text(fixed) + " where a: scalar")[1].shape == shape


def test_invariant_spreads_a_scalar_result():
    a = E.var("a", ("1", "1"))
    out = Simplifier().keep_shape(a, ("m", "n"))
    assert to_text(out) == "a*ones(m)@ones(n)'" and out.shape == ("m", "n")


@pytest.mark.parametrize("text,want", [
    ("x/x", "ones(n)"), ("x'/x'", "ones(n)'"), ("A/A", "ones(m)@ones(n)'"),
    ("2*A/A", "2*ones(m)@ones(n)'"), ("a*x/x", "a*ones(n)"), ("x^0", "ones(n)"),
    ("exp(x)/exp(x)", "ones(n)"), ("(x - x)'", "0*ones(n)'"), ("A - A", "0*ones(m)@ones(n)'"),
])
def test_cancellation_keeps_the_shape(text, want):
    decls = " where x: vector(n); a: scalar; A: matrix(m, n)"
    e = typed(text + decls)[1]
    out = simplify(e)
    assert to_text(out) == want
    assert out.shape == e.shape == typed(want + decls)[1].shape


def test_symmetric_transpose_made_by_the_engine_still_simplifies():
    s = E.var("S", ("n", "n"), True)
    fired = []
    assert simplify(E.make("T", s), fired) is s and "transpose rules" in fired


# ---- property: printed results feed back with their shape and value -------------------------

DECLS = "where x, y: vector(n); a, b: scalar; A: matrix(n, n); B: matrix(m, n); z: vector(m)"


def _cancelling(depth):
    """Vector expressions in which factors and terms cancel (x/x, x - x, sqrt(x)/sqrt(x))."""
    leaves = st.sampled_from(["x", "y", "(x/x)", "(y - y)", "(sqrt(x*x + 1)/sqrt(x*x + 1))",
                              "(a*x/x)", "(B'@z)", "(exp(y)/exp(y))"])
    if depth == 0:
        return leaves
    sub = _cancelling(depth - 1)
    sc = st.sampled_from(["a", "b", "sum(x)", "norm(x)", "(x'@y)", "(a/a)"])
    return st.one_of(
        leaves,
        *arithmetic(sub),
        st.builds(lambda u: f"(({u}^2 + 1) / ({u}^2 + 1))", sub),
        st.builds(lambda u: f"({u} - {u})", sub),
        st.builds(lambda u: f"(A@{u})", sub),
        st.builds(lambda s, u: f"({s}*{u})", sc, sub),
        st.builds(lambda f, u: f"{f}({u})", st.sampled_from(["sin", "tanh", "sigmoid"]), sub),
    )


def _outer(u):
    return st.sampled_from([u, f"sum({u})", f"norm({u})^2", f"logsumexp({u})", f"({u})'@y",
                            f"(A@{u})'"])


def _feeds_back(request, layout, seed):
    d = derive(f"{request} {DECLS}", layout=layout)
    rng = np.random.default_rng(seed)
    sizes = {"n": int(rng.integers(2, 5)), "m": int(rng.integers(2, 5))}
    values = random_values(d.types, sizes, rng, positive=True)
    got = evaluate(to_numpy(d.result, d.dims), values)
    f_np = to_numpy(d.expr, d.dims)
    want = _fd(lambda v: evaluate(f_np, v), values, d.wrt[0], layout)
    assert_close(got, want, rtol=1e-4, atol=1e-5, what=request)
    printed = to_text(d.result)
    again = derive(f"{printed} {DECLS}")
    assert again.expr.shape == d.result.shape, f"{printed}: {again.expr.shape}"
    assert_close(evaluate(to_numpy(again.expr, again.dims), values), got, rtol=1e-9,
                 atol=1e-12, what=printed)


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SETTINGS
@given(_cancelling(2).flatmap(_outer), st.sampled_from(["x", "a", "y", "A"]),
       st.sampled_from(["numerator", "denominator"]), st.integers(0, 2**31))
def test_derivatives_feed_back_with_shape_and_value(body, wrt, layout, seed):
    _feeds_back(f"d/d{wrt} {body}", layout, seed)


@SETTINGS
@given(_cancelling(3).flatmap(_outer), st.integers(0, 2**31))
def test_simplified_expressions_feed_back(text, seed):
    _, e, _, typing = typed(f"{text} {DECLS}")
    out = simplify(e)
    printed = to_text(out)
    back = typed(f"{printed} {DECLS}")[1]
    assert out.shape == back.shape == e.shape, printed
    rng = np.random.default_rng(seed)
    values = random_values(typing.as_strings(), {"n": 3, "m": 2}, rng, positive=True)
    dims = {"n": "np.shape(x)[0]", "m": "np.shape(z)[0]"}
    assert_close(evaluate(to_numpy(back, dims), values), evaluate(to_numpy(e, dims), values),
                 rtol=1e-8, atol=1e-10, what=f"{text} -> {printed}")


@pytest.mark.parametrize("before,printed", [
    ("a*A/2", "a/2*A"),                        # not 1*a/2*A
    ("0.5*a*b*A", "a*b/2*A"),
    ("x/norm(x)", "x/norm(x)"),
    ("A/2", "A/2"),
    ("2*a/3*A", "2*a/3*A"),
])
def test_a_scalar_fraction_in_front_of_an_array(before, printed):
    decls = "where a, b: scalar; A: matrix(n, n); x: vector(n)"
    e = typed(f"{before} {decls}")[1]
    out = simplify(e)
    assert to_text(out) == printed
    assert typed(f"{printed} {decls}")[1].shape == e.shape
