"""Type inference by the contract's rules, and shape errors that name both shapes."""
import pytest

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


def test_equal_products_of_dimensions_cancel_a_common_factor():
    """2·r = 2·c makes r = c: tr(kron(X, eye(2))) needs a square X (sizes are positive)."""
    assert _typing("tr(kron(X, eye(2)))") == {"X": "matrix(n, n)"}
    assert _typing("kron(x, y) + kron(z, y)")["z"] == _typing("kron(x, y) + kron(z, y)")["x"]
    from mcalc.pipeline import derive
    from mcalc.printing.text import to_text
    assert to_text(derive("d/dX tr(kron(X, eye(2)))").result) == "2*eye(n)"
