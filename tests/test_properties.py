"""Property tests: random well-typed scalar/vector/matrix expressions, differentiated by
mcalc, agree with central finite differences; and every printed result can be fed back."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcalc.pipeline import derive
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import to_text
from numeric import assert_close, evaluate, finite_difference, random_values


def arithmetic(sub, add: str = "1"):
    """Strategies for u + v, u - v, u * v and u / (add + v^2) over `sub` (the division
    cannot divide by zero; u - u is never drawn: norm(x - x) has no derivative)."""
    return [st.builds(lambda u, v: f"({u} + {v})", sub, sub),
            st.tuples(sub, sub).filter(lambda uv: uv[0] != uv[1]).map(
                lambda uv: f"({uv[0]} - {uv[1]})"),
            st.builds(lambda u, v: f"({u} * {v})", sub, sub),
            st.builds(lambda u, v: f"({u} / ({add} + {v}^2))", sub, sub)]


DECLS = "where x, y: vector(n); a, b: scalar; A: matrix(n, n); B: matrix(m, n); z: vector(m)"
SAFE_UNARY = ("sin", "cos", "tanh", "sigmoid")


def _vector(depth):
    leaves = st.sampled_from(["x", "y", "x", "(B'@z)"])
    if depth == 0:
        return leaves
    sub, sc = _vector(depth - 1), _scalar(depth - 1)
    return st.one_of(
        leaves,
        *arithmetic(sub),
        st.builds(lambda f, u: f"{f}({u})", st.sampled_from(SAFE_UNARY), sub),
        st.builds(lambda u: f"(A@{u})", sub),
        st.builds(lambda u: f"(A'@{u})", sub),
        st.builds(lambda s, u: f"({s}*{u})", sc, sub),
        st.builds(lambda u: f"({u})^2", sub),
    )


def _scalar(depth):
    leaves = st.sampled_from(["a", "b", "sum(x)", "x'@y"])
    if depth == 0:
        return leaves
    sub = _scalar(depth - 1)
    vec = _vector(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda u: f"sum({u})", vec),
        st.builds(lambda u: f"norm({u})^2", vec),
        st.builds(lambda u, v: f"({u}'@{v})", vec, vec),
        st.builds(lambda u: f"({u}'@A@{u})", vec),
        st.builds(lambda u: f"logsumexp({u})", vec),
        st.builds(lambda u, v: f"({u} * {v})", sub, sub),
        st.builds(lambda u, v: f"({u} + {v})", sub, sub),
        st.builds(lambda f, u: f"{f}({u})", st.sampled_from(SAFE_UNARY), sub),
    )


def _matrix(depth):
    leaves = st.sampled_from(["A", "A'", "(B'@B)", "(x@y')"])
    if depth == 0:
        return leaves
    sub = _matrix(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda u, v: f"({u} @ {v})", sub, sub),
        st.builds(lambda u, v: f"({u} + {v})", sub, sub),
        st.builds(lambda u, v: f"({u} * {v})", sub, sub),
        st.builds(lambda u: f"({u})'", sub),
        st.builds(lambda f, u: f"{f}({u})", st.sampled_from(SAFE_UNARY), sub),
        st.builds(lambda s, u: f"({s}*{u})", _scalar(0), sub),
    )


def _matrix_scalar(depth):
    m = _matrix(depth)
    return st.one_of(
        st.builds(lambda u: f"tr({u})", m),
        st.builds(lambda u: f"sum({u})", m),
        st.builds(lambda u: f"norm({u})^2", m),
        st.builds(lambda u: f"(x'@{u}@y)", m),
        st.builds(lambda u: f"logdet(A'@A + {u}@{u}' + eye(n))", m),
    )


def _check(request, layout, seed):
    d = derive(f"{request} {DECLS}", layout=layout)
    rng = np.random.default_rng(seed)
    sizes = {"n": int(rng.integers(2, 5)), "m": int(rng.integers(2, 5))}
    values = random_values(d.types, sizes, rng)
    values = {k: (v * 0.5 if isinstance(v, np.ndarray) else v * 0.5) for k, v in values.items()}
    names = {e: n for n, e in d.where}
    got = evaluate(to_numpy(d.result, d.dims, names), values)
    f_np = to_numpy(d.expr, d.dims)
    want = finite_difference(lambda v: evaluate(f_np, v), values, d.wrt[0], layout)
    assert_close(got, want, rtol=1e-3, atol=1e-4)
    # the printed result is valid request language with the same value
    again = derive(f"{to_text(d.result)} {DECLS}")
    assert again.expr.shape == d.result.shape, f"{to_text(d.result)} re-parses as {again.shape}"
    assert_close(evaluate(to_numpy(again.expr, again.dims), values), got, rtol=1e-9, atol=1e-9)


SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SETTINGS
@given(_scalar(3), st.sampled_from(["x", "a", "A"]), st.sampled_from(["numerator", "denominator"]),
       st.integers(0, 2**31))
def test_scalar_expressions(body, wrt, layout, seed):
    _check(f"d/d{wrt} {body}", layout, seed)


@SETTINGS
@given(_vector(3), st.sampled_from(["x", "a"]), st.sampled_from(["numerator", "denominator"]),
       st.integers(0, 2**31))
def test_vector_expressions(body, wrt, layout, seed):
    _check(f"d/d{wrt} {body}", layout, seed)


@SETTINGS
@given(_matrix_scalar(2), st.sampled_from(["A", "x", "B"]),
       st.sampled_from(["numerator", "denominator"]), st.integers(0, 2**31))
def test_scalar_functions_of_matrix_expressions(body, wrt, layout, seed):
    _check(f"d/d{wrt} {body}", layout, seed)


@SETTINGS
@given(_matrix(2), st.sampled_from(["A", "x", "a"]),
       st.sampled_from(["numerator", "denominator"]), st.integers(0, 2**31))
def test_matrix_expressions_vec_forms(body, wrt, layout, seed):
    _check(f"d/d{wrt} {body}", layout, seed)          # vec forms use commutation(m, n)
