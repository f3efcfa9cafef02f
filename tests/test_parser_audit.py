"""Gaps a contract audit found in parsing and typing (contract §1): a name declared twice,
a name both a variable and a dimension, near-miss derivative prefixes, a claim's
definition of a request variable, and @ with a scalar operand. Each is a one-line error at
the column of the problem, or (where the language allows it) a typing."""
import pytest

from mcalc.checker import check
from mcalc.errors import McalcError
from mcalc import derive
from mcalc.pipeline import typed


def error_of(text, types=()):
    with pytest.raises(McalcError) as e:
        typed(text, types)
    return e.value


# ---- a name declared twice ------------------------------------------------------------

@pytest.mark.parametrize("text,column,first,second", [
    ("x where x: scalar; x: vector(n)", 20, "scalar", "vector(n)"),
    ("x + y where x, y: scalar; y: vector(n)", 27, "scalar", "vector(n)"),
    ("x where y: scalar; x: vector(n); z, x: matrix(n, n)", 37, "vector(n)", "matrix(n, n)"),
    ("tr(S) where S: symmetric(n); S: matrix(n, n)", 30, "symmetric(n)", "matrix(n, n)"),
    ("x where x: vector(n); x: vector(m)", 23, "vector(n)", "vector(m)"),
])
def test_a_name_declared_twice_with_two_types_is_an_error_at_the_second(text, column, first,
                                                                         second):
    e = error_of(text)
    assert e.column == column and text[column - 1] in "xyS"
    assert "declared twice" in e.message and f"as {first} and as {second}" in e.message


def test_a_type_option_and_a_where_that_disagree_is_an_error_at_the_where():
    e = error_of("sum(x) where x: vector(n)", ["x: scalar"])
    assert e.column == 14 and "declared twice, as scalar and as vector(n)" in e.message


@pytest.mark.parametrize("text,types,expected", [
    ("x where x: vector(n); x: vector(n)", (), "vector(n)"),
    ("x where x: vector(03); x: vector(3)", (), "vector(3)"),
    ("x where x: vector(m*n); x: vector(n*m)", (), "vector(m*n)"),
    ("sum(x) where x: vector(n)", ("x: vector(n)",), "vector(n)"),
])
def test_the_same_type_declared_again_is_accepted(text, types, expected):
    assert typed(text, types)[3].as_strings()["x"] == expected


@pytest.mark.parametrize("text,types,column,use", [
    ("n*sum(x) where n: scalar; x: vector(n)", (), 37, "(vector(n))"),
    ("n*sum(x) where x: vector(n); n: scalar", (), 30, "(vector(n))"),
    ("d/dn n*sum(x) where n: scalar; x: vector(n)", (), 42, "(vector(n))"),
    ("sum(x) where x: vector(x)", (), 24, "(vector(x))"),
    ("A@x where A: matrix(m, n); m: scalar", (), 28, "(matrix(m, n))"),
    ("n*sum(x) where x: vector(n)", ("n: scalar",), 26, "(vector(n))"),
    ("n*ones(n) where n: scalar", (), 8, "(ones(n))"),
])
def test_a_declared_variable_used_as_a_dimension_is_an_error_naming_both(text, types, column,
                                                                         use):
    e = error_of(text, types)
    assert e.column == column
    name = text[column - 1]
    assert f"'{name}' is a declared variable, not a dimension" in e.message
    assert f"({name}: " in e.message and use in e.message


def test_a_dimension_is_no_variable_to_differentiate_by():
    with pytest.raises(McalcError, match="'n' is a dimension"):
        derive("d/dn n where x: vector(n)")
    # a dimension used in the expression is that size (contract §1), not an error
    assert derive("d/dx n*sum(x) where x: vector(n)").result == "n*ones(n)'"


# ---- near-miss derivative prefixes ---------------------------------------------------

@pytest.mark.parametrize("text,column,says", [
    ("d / dx x^2", 1, "as d/dx, without spaces around '/'"),
    ("d/ dx x^2", 1, "as d/dx, without spaces"),
    ("d /dx sin(x)", 1, "as d/dx, without spaces"),
    ("∂ / ∂x x^2", 1, "as ∂/∂x, without spaces"),
    ("d / d(x, y) x*y", 1, "as d/d(x, y), without spaces"),
    ("d/dx d / dy x*y", 6, "as d/dy, without spaces"),
    ("d / dx (x^2)", 1, "as d/dx, without spaces"),         # a call of dx, to typing
    ("d²/dx² x^3", 1, "as d^2/dx^2 (superscripts are not powers)"),
    ("∂³/∂x³ x^4", 1, "as ∂^3/∂x^3"),
    ("d²/d(x, y)² x*y", 1, "as d^2/d(x, y)^2"),
])
def test_near_miss_prefixes_say_how_to_write_them(text, column, says):
    e = error_of(text)
    assert e.column == column and says in e.message


@pytest.mark.parametrize("text,column,message", [
    ("d/dx x x", 8, "unexpected 'x'"),                 # no prefix near: the usual message
    ("d / dx + (", 11, "unexpected end of input"),
    ("a / dx (x)", 5, "unknown function 'dx'"),
])
def test_other_errors_keep_their_messages(text, column, message):
    e = error_of(text)
    assert (e.column, e.message) == (column, message)


def test_a_spaced_division_stays_a_division():
    assert typed("d / dx - x")[3].as_strings() == {"d": "scalar", "dx": "scalar",
                                                   "x": "scalar"}


@pytest.mark.parametrize("text,column,byte", [
    ("d/dx x\udcff", 7, "0xff"),
    ("d/dx é\udcc3 + x", 7, "0xc3"),
    ("d/d\udc80 x", 4, "0x80"),                        # before any other error
])
def test_an_undecodable_byte_of_an_argument_is_not_valid_utf8(text, column, byte):
    e = error_of(text)
    assert (e.column, e.message) == (column, f"not valid UTF-8 (byte {byte})")


def test_an_undecodable_byte_in_a_type_option_is_not_valid_utf8():
    e = error_of("x", ["x: vec\udcfftor(n)"])
    assert (e.column, e.message) == (7, "not valid UTF-8 (byte 0xff)")


# ---- a claim's definition of a request variable ----------------------------------------

@pytest.mark.parametrize("request_text", ["d/dx x^2", "d/dx x^2 where x: vector(n)",
                                          "d/dx sum(x*y)"])
def test_a_claim_defining_a_request_variable_says_so(request_text):
    with pytest.raises(McalcError) as e:
        check(request_text, "2*x' where x = y")
    assert e.value.column == 12
    assert "'x' is a variable of the request; a claim cannot define it" in e.value.message
    assert "declared" not in e.value.message


# ---- @ with a scalar operand --------------------------------------------------------------

@pytest.mark.parametrize("text,column,side,named", [
    ("x@b where b: scalar", 3, "right", "b"),
    ("x@2", 3, "right", "2"),
    ("2@A", 1, "left", "2"),
    ("b@x' where b: scalar", 1, "left", "b"),
    ("x@b", 3, "right", "b"),                          # b: scalar by inference
    ("x@pi", 3, "right", "pi"),
    ("A@x@sum(y)", 5, "right", None),
    ("x@-b where b: scalar", 3, "right", None),
    ("x@b' where b: scalar", 4, "right", None),
    ("x@t where t = sum(y)", 3, "right", "t"),
    ("x@(2*(y'@z))", 5, "right", None),
])
def test_a_scalar_operand_of_matmul_is_an_error_suggesting_star(text, column, side, named):
    e = error_of(text)
    assert e.column == column
    assert e.message.startswith(f"the {side} operand of @ is a scalar")
    assert "scale with *" in e.message
    if named:
        assert f"('{named}')" in e.message


@pytest.mark.parametrize("text", ["(x'@y)@z'", "x'@y@z'", "t@z' where t = x'@y",
                                  "-(x'@y)@z'", "(x'@y)'@z'", "x@y'", "x'@A@x"])
def test_a_one_by_one_matrix_product_stays_an_operand_of_matmul(text):
    typed(text)


def test_the_star_the_message_suggests_is_the_scaling():
    assert derive("d/dx sum(x*b) where b: scalar").result == "b*ones(n)'"
