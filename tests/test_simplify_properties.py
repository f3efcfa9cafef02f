"""Property tests of the simplifier alone: for random well-typed expressions — the
property suite's generators plus element-wise quotients, sums of fractions, logistic and
softmax shapes that exercise mcalc.algebra — the simplified expression has the value of
the unsimplified one (evaluated at random points, three scales), keeps its shape, and
prints as text that parses back to the same shape."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcalc.pipeline import typed
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import to_text
from mcalc.simplify import simplify
from numeric import assert_close, evaluate, random_values
from test_properties import DECLS, _matrix, _scalar, _vector, arithmetic


def _algebra(depth):
    """Element-wise expressions of x, y (vectors) and a, b (scalars) with quotients."""
    leaves = st.sampled_from(["x", "y", "a", "b", "exp(x)", "exp(-y)", "sigmoid(x)",
                              "exp(x)/sum(exp(x))", "(x > 0)", "relu(x)", "abs(x)",
                              "sign(x)", "abs(a)^3", "sign(a)"])
    names = st.sampled_from(["x", "y", "a", "b"])
    if depth == 0:
        return leaves
    sub = _algebra(depth - 1)
    return st.one_of(
        leaves,
        *arithmetic(sub, "2"),
        # exp of names only: exp(exp(...)^2) overflows in floats whichever form is used
        st.builds(lambda u: f"(1/(1 + exp(-{u})))", names),
        st.builds(lambda u: f"(exp({u})/(1 + exp({u})))", names),
        st.builds(lambda u, v: f"({u}/(1 + {v}^2) - {u}*{v}^2/(1 + {v}^2)^2)", sub, sub),
        st.builds(lambda u, k: f"({u} + 1)^{k}", sub, st.integers(2, 3)),
        st.builds(lambda u, c: f"({c}*{u} + {c}*{u}^2)", sub, st.sampled_from(["2", "0.5", "9"])),
    )


def _same_value(text):
    _, e, _, typing = typed(text + " " + DECLS)
    out = simplify(e)
    assert out.shape == e.shape
    printed = to_text(out)
    _, back, _, _ = typed(printed + " " + DECLS)
    assert back.shape == e.shape, f"{printed} does not parse back"
    dims = {d: "np.shape(x)[0]" if d == "n" else "np.shape(z)[0]" for d in ("n", "m")}
    f_in, f_out = to_numpy(e, dims), to_numpy(out, dims)
    types = {k: v for k, v in typing.as_strings().items()}
    rng = np.random.default_rng(len(text))
    for scale in (0.3, 1.0, 2.0):
        values = {k: v * scale for k, v in
                  random_values(types, {"n": 3, "m": 2}, rng).items()}
        want = evaluate(f_in, values)
        if not np.all(np.isfinite(want)):
            continue
        assert_close(evaluate(f_out, values), want, rtol=1e-7, atol=1e-9,
                     what=f"{text} -> {printed}")


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(_algebra(3))
def test_algebra_keeps_values(text):
    _same_value(text)


@SETTINGS
@given(st.one_of(_vector(2), _scalar(2), _matrix(2)))
def test_rewrites_keep_values(text):
    _same_value(text)


def _jacobian_shapes(depth):
    """The shapes element-wise Jacobians take: sums of scaled diag(v), eye(n), products of
    diagonals, vec(M)*vec(N) + c, all-ones arrays (A/A) inside element-wise algebra,
    quotients by sum(exp(x)) next to a product that ends in exp(x), sums times a diagonal
    and Gram matrices."""
    vec, mat = _vector(depth), _matrix(depth)
    coeff = st.sampled_from(["2", "-1", "0.5", "a"])
    diagonal = st.one_of(st.builds(lambda u: f"diag({u})", vec), st.just("eye(n)"),
                         st.builds(lambda u, v: f"(diag({u})@diag({v}))", vec, vec),
                         st.builds(lambda u: f"(({u})*eye(n))'", mat))
    vecs = st.one_of(st.builds(lambda u: f"vec({u})", mat), st.just("vec(A/A)"))
    return st.one_of(
        st.builds(lambda c, u, v: f"({c}*{u} + {v})", coeff, diagonal, diagonal),
        st.builds(lambda u, v, w: f"({u} - {v} + {w})", diagonal, diagonal, diagonal),
        st.builds(lambda c, u, v: f"({u}*{v} + {c})", coeff, vecs, vecs),
        st.builds(lambda c, u, v: f"({c}*{u} - {v})", coeff, vecs, vecs),
        st.builds(lambda u: f"({u} - A/A + 1)", mat),
        st.builds(lambda m: f"({m}@exp(x)/sum(exp(x)))", mat),
        st.builds(lambda m, c: f"({c}*exp(x)'@{m}/sum(exp(x)))", mat, coeff),
        # a diagonal distributed over a sum, softmax written out, a Gram matrix transposed
        st.builds(lambda u, v, w: f"(({u} + {v})@{w})", diagonal, diagonal, diagonal),
        st.builds(lambda c, u, w: f"(({c}*eye(n) - {u}@ones(n)')@{w})", coeff, vec, diagonal),
        st.builds(lambda w, c: f"({w}@(eye(n) + {c}*ones(n)@x'))", diagonal, coeff),
        st.builds(lambda m: f"(({m} - 1)@diag(x))", mat),
        st.builds(lambda c: f"({c}*exp(x)@exp(x)'/sum(exp(x))^2 + diag(exp(x))/sum(exp(x)))",
                  coeff),
        st.builds(lambda c: f"(inv(A'@A)' + {c}*(A@diag(x)@A')' + (A@A@A')')", coeff),
    )


@SETTINGS
@given(_jacobian_shapes(1))
def test_diag_vec_and_softmax_rewrites_keep_values(text):
    _same_value(text)


# A sum of whole multiples of atoms' powers, or c times one: _textbook skips the forms of
# those _kept_as_is says cannot be shorter. The skip must change nothing: neither the
# result nor the rules cited (nor their order).
_FAMILIES = {      # atoms of one shape (and scalars, which element-wise products take)
    "scalar": ["a", "b", "sin(a)", "exp(b)", "tanh(a + b)", "abs(a)", "sign(b)",
               "sigmoid(a)", "log(b^2 + 1)", "(a > 0)", "relu(a)", "(x'@y)", "norm(x)",
               "sum(exp(x))", "sqrt(a^2 + 1)", "abs(b)"],
    "vector": ["x", "y", "exp(x)", "sin(y)", "sigmoid(x)", "(A@x)", "abs(x)", "sign(y)",
               "(B'@z)", "softmax(x)"],
    "matrix": ["A", "A'", "diag(x)", "x@y'", "eye(n)", "inv(A)", "(A@A')", "diag(y)"],
}


@st.composite
def _whole_sums(draw):
    family = draw(st.sampled_from(sorted(_FAMILIES)))
    atoms = st.sampled_from(_FAMILIES[family])
    scalars = st.sampled_from(_FAMILIES["scalar"] + ["1"])
    g = draw(st.sampled_from(["1", "2", "3"]))            # a divisor the terms may share

    def term():
        factors = [draw(atoms)] + draw(st.lists(st.one_of(atoms, scalars), max_size=2))
        if family == "scalar" and draw(st.booleans()):
            factors = ["1"]                     # a constant term
        powered = [f if f == "1" else f"({f})^{draw(st.integers(1, 3))}" for f in factors]
        k = draw(st.sampled_from(["1", "-1", "2", "-3", "5", "1/2"]))
        return f"{g}*{k}*{'*'.join(powered)}"

    total = " + ".join(term() for _ in range(draw(st.integers(2, 4))))
    c = draw(st.sampled_from(["", "2*", "3*", "12*", "-2*", "1/2*"]))
    return f"{c}({total})"


def _simplified(text, shortcut):
    import mcalc.simplify as S
    _, e, _, _ = typed(text + " " + DECLS)
    kept = S._kept_as_is
    fired: list = []
    try:
        if not shortcut:
            S._kept_as_is = lambda s, e, level: False
        out = S.simplify(e, fired)
    finally:
        S._kept_as_is = kept
    return out, fired


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_whole_sums())
def test_a_sum_kept_as_it_is_is_what_the_algebra_gives(text):
    assert _simplified(text, True) == _simplified(text, False)


def test_sums_are_kept_as_they_are_without_their_forms():
    import mcalc.simplify as S
    from mcalc.expr import Expr, num
    kept = [(2, "diag(x) - x@y'"), (3, "1 - sigmoid(a)"), (7, "A + B'@z@x'"),
            (2, "a*b - sin(a) + 1"), (1, "6*a + 2*b"), (1, "6*a + 6"), (1, "4*a - 2*b*sin(a)")]
    shorter = [(2, "3*a + 5*b"), (2, "a^2 + 2*a + 1"), (-2, "a - b"), (2, "a*b + a"),
               (3, "1 - a - b"), (1, "2*a + 2*b"), (1, "6*a - 4*b - 2*sin(a)")]
    for c, text in kept + shorter:              # (the latter: expanded, factored, -c)
        _, e, _, _ = typed(text + " " + DECLS)
        s = S.Simplifier()
        s(e)
        total = s.memo[e]                       # (its canonical form, before the algebra)
        cluster = total if c == 1 else Expr("mul", (num(c), total), total.shape)
        assert total.op == "add"
        assert S._kept_as_is(s, cluster, S._worth(s, cluster)) == ((c, text) in kept), text
    for c, text in kept:
        text = f"{c}*({text})"
        out, fired = _simplified(text, True)
        assert (out, fired) == _simplified(text, False), text
