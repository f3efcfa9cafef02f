"""Type inference by the contract's rules, and shape errors that name both shapes."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcalc.pipeline import typed
from mcalc.errors import McalcError


def types_of(text):
    return typed(text)[3].as_strings()


@pytest.mark.parametrize("text,expected", [
    ("d/dw sum(w*x) + b", {"w": "vector(n)", "x": "vector(n)", "b": "scalar"}),
    ("A@x + b", {"A": "matrix(m, n)", "x": "vector(n)", "b": "vector(m)"}),
    ("x'@A@x", {"x": "vector(n)", "A": "matrix(n, n)"}),
    ("tr(X@inv(X))", {"X": "matrix(n, n)"}),
    ("X'@W", {"X": "matrix(m, n)", "W": "matrix(m, k)"}),
    ("norm(y - X@w)^2 + lam*norm(w)^2",
     {"y": "vector(n)", "X": "matrix(n, m)", "w": "vector(m)", "lam": "scalar"}),
    ("2*x'@A'@A", {"x": "vector(n)", "A": "matrix(m, n)"}),
    ("sin(x)", {"x": "scalar"}),
])
def test_inference(text, expected):
    assert types_of(text) == expected


def test_declarations_win_and_dimension_names_are_scalars():
    req, body, _, typing = typed("mean(y) - sum(y)/N where y: vector(N)")
    assert typing.as_strings() == {"y": "vector(N)"} and body.shape == ("1", "1")


def test_type_option():
    assert typed("x + y", ["x: vector(k)"])[3].as_strings() == {"x": "vector(k)",
                                                               "y": "vector(k)"}


@pytest.mark.parametrize("text,words", [
    ("A*x where A: matrix(m, n); x: vector(n)", ["matrix(m, n)", "vector(n)", "did you mean @"]),
    ("x + y where x: vector(n); y: vector(m)", ["vector(n)", "vector(m)"]),
    ("x + y' where x, y: vector(n)", ["transpose"]),
    ("tr(x) where x: vector(n)", ["square"]),
    ("foo(x)", ["unknown function"]),
    ("w@x where w, x: vector(n)", ["vector(n)", "transpose the left operand"]),
    ("x^y where y: vector(n)", ["exponent"]),
])
def test_shape_errors(text, words):
    with pytest.raises(McalcError) as e:
        typed(text)
    assert e.value.column > 0
    for w in words:
        assert w in e.value.message


# ---- vec and kron: sizes that are products of dimensions ---------------------------------

def _typing(text):
    from mcalc.pipeline import derive
    return derive(text).types


def test_vec_and_kron_sizes_follow_their_operands():
    assert _typing("kron(x, y) + z") == {"x": "vector(n)", "y": "vector(m)", "z": "vector(m*n)"}
    assert _typing("vec(X) + z")["z"] == "vector(m*n)"
    assert _typing("sum(kron(A, x)*B)")["B"] == "matrix(k*n, m)"


def test_a_product_size_fixed_from_outside_names_the_factors():
    assert _typing("commutation(m, n)@vec(X)") == {"X": "matrix(m, n)"}
    assert _typing("vec(X)'@vec(Y) where X: matrix(m, n)")["Y"] == "matrix(m, n)"


@pytest.mark.parametrize("text, typing", [
    ("vec(I) + x where x: vector(n*n)", {"x": "vector(n*n)"}),
    ("A@x where A: matrix(m, 2*n); x: vector(n*2)", {"A": "matrix(m, 2*n)",
                                                      "x": "vector(2*n)"}),
    ("kron(x, y) + z where x: vector(m); y: vector(n); z: vector(m*n)",
     {"x": "vector(m)", "y": "vector(n)", "z": "vector(m*n)"}),
])
def test_a_declared_size_may_be_a_product_of_dimensions(text, typing):
    """The typing mcalc prints (vector(n*n) for vec(I) + x) can be declared back."""
    assert _typing(text) == typing


@pytest.mark.parametrize("text", ["x where x: vector(0)", "x where x: vector(0*n)"])
def test_a_zero_size_is_refused_at_its_declaration(text):
    with pytest.raises(McalcError, match="dimensions must be positive") as e:
        _typing(text)
    assert e.value.column == 9


def test_a_product_of_dimensions_is_written_with_a_star():
    with pytest.raises(McalcError, match=r"written with '\*', not '⊗'") as e:
        _typing("x where x: vector(m⊗n)")
    assert e.value.column == 20


def test_equal_products_of_dimensions_cancel_a_common_factor():
    """2·r = 2·c makes r = c: tr(kron(X, eye(2))) needs a square X (sizes are positive)."""
    assert _typing("tr(kron(X, eye(2)))") == {"X": "matrix(n, n)"}
    assert _typing("kron(x, y) + kron(z, y)")["z"] == _typing("kron(x, y) + kron(z, y)")["x"]
    from mcalc.pipeline import derive
    from mcalc.printing.text import to_text
    assert to_text(derive("d/dX tr(kron(X, eye(2)))").result) == "2*eye(n)"


@pytest.mark.parametrize("text, typing", [
    ("vec(I) + x", {"x": "vector(n*n)"}),                     # I's size: named for x
    ("x + kron(a, x)", {"x": "vector(n)", "a": "scalar"}),    # n = a·n: a is 1
    ("kron(kron(x, 2), a) + x", {"x": "vector(n)", "a": "scalar"}),
    ("A + kron(x, kron(x, A))", {"A": "matrix(m, n)", "x": "scalar"}),   # m = x·(x·m): x is 1
    # m·p = k·n with nothing to cancel: matched in order (no typing at all before)
    ("tr(kron(X, Y))", {"X": "matrix(n, n)", "Y": "matrix(m, m)"}),
    # A's columns are a product with a product for a factor: named once that one is
    ("kron(I, x') + kron(x, A)", {"x": "vector(n)", "A": "matrix(m, m*n*n)"}),
    ("kron(X, Y)@kron(A, B)", {"X": "matrix(m, n)", "Y": "matrix(p, k)", "A": "matrix(n, q)",
                               "B": "matrix(k, r)"}),
])
def test_products_of_dimensions_that_only_the_product_names(text, typing):
    assert _typing(text) == typing


@pytest.mark.parametrize("text, words", [
    ("d/dx vec(softmax(I)) + x", r"softmax\(\) takes a vector"),
    ("d/dx x <= kron(A, x)", "shape mismatch"),                 # n = m·n with A a matrix
])
def test_impossible_products_of_dimensions_are_shape_errors(text, words):
    from mcalc.pipeline import derive
    with pytest.raises(McalcError, match=words):
        derive(text)


_ATOMS = ["x", "y", "A", "B", "a", "n", "2", "0.5", "e", "I", "ones(n)", "eye(n)", "x'", "A'"]
_UNARY = ["sin", "exp", "log", "sqrt", "relu", "sum", "norm", "softmax", "tr", "det", "inv",
          "diag", "vec"]


def _random_text():
    leaf = st.sampled_from(_ATOMS)
    return st.recursive(leaf, lambda sub: st.one_of(
        st.builds(lambda f, u: f"{f}({u})", st.sampled_from(_UNARY), sub),
        st.builds(lambda f, u, v: f"{f}({u}, {v})", st.sampled_from(["kron", "max", "dot"]),
                  sub, sub),
        st.builds(lambda u, o, v: f"({u}{o}{v})",
                  sub, st.sampled_from([" + ", " - ", "*", "/", "@", "^", " <= "]), sub)),
        max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_random_text(), st.sampled_from(["d/dx ", "d/dA ", "d^2/da^2 ", "d/d(x, a) ", ""]))
def test_any_request_is_typed_and_derived_or_refused_with_a_reason(body, prefix):
    """Random requests (shapes that may not fit at all): an answer, or McalcError with its
    one-line message — never another exception (an internal error is a bug)."""
    from mcalc.pipeline import derive
    try:
        derive(prefix + body)
    except McalcError as e:
        assert "\n" not in str(e)
