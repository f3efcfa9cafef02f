"""The request language of contract §1: every prefix, operator synonym and literal parses,
and errors point at the column."""
import pytest

from mcalc.errors import McalcError
from mcalc.parser import parse_decls, parse_request


@pytest.mark.parametrize("text,wrt", [
    ("d/dx f", (("x",),)), ("∂/∂x f", (("x",),)), ("grad_x f", (("x",),)),
    ("d/d(x, y) f", (("x", "y"),)), ("d/dx d/dy f", (("x",), ("y",))),
    ("d^2/dx^2 f", (("x",), ("x",))), ("f", ()), ("∂/∂θ θ", (("θ",),)),
])
def test_prefixes(text, wrt):
    assert parse_request(text).wrt == wrt


@pytest.mark.parametrize("a,b", [
    ("x * y", "x ⊗ y"), ("x * y", "x ⊙ y"), ("x * y", "x .* y"),
    ("x / y", "x ⊘ y"), ("x / y", "x ./ y"), ("x ^ 2", "x ** 2"),
    ("x'", "x^T"), ("x'", "xᵀ"), ("x'", "x.T"),
])
def test_operator_synonyms(a, b):
    ra, rb = parse_request(a).body, parse_request(b).body
    assert (ra.op, [x.text for x in ra.args]) == (rb.op, [x.text for x in rb.args])


def test_precedence():
    body = parse_request("-x^2' + a*b@c").body
    assert body.op == "add"
    neg, prod = body.args
    assert neg.op == "neg" and neg.args[0].op == "T" and neg.args[0].args[0].op == "pow"
    assert prod.op == "matmul" and prod.args[0].op == "mul"        # * and @ left to right


def test_literals_and_comparisons():
    assert parse_request("[a, b, c]").body.op == "list"
    m = parse_request("[[a, b], [c, d]]").body
    assert m.op == "list" and all(r.op == "list" for r in m.args)
    assert parse_request("x >= y").body.text == ">="


def test_where_and_type_option_declarations():
    req = parse_request("d/dw sum(w*x) + b where w, x: vector(n); b, lam: scalar; "
                        "A: matrix(m, 3); S: symmetric(n)")
    kinds = {n: (d.kind, d.dims) for d in req.decls for n in d.names}
    assert kinds["x"] == ("vector", ("n",)) and kinds["lam"] == ("scalar", ())
    assert kinds["A"] == ("matrix", ("m", "3")) and kinds["S"] == ("symmetric", ("n",))
    assert parse_decls("w, x: vector(n)")[0].names == ("w", "x")


@pytest.mark.parametrize("text,column", [("x +", 4), ("sin(x", 6), ("x $ y", 3), ("a b", 3),
                                         ("", 1)])
def test_errors_point_at_the_column(text, column):
    with pytest.raises(McalcError) as e:
        parse_request(text)
    assert e.value.column == column


# ---- d^k prefixes and where definitions ------------------------------------------------

@pytest.mark.parametrize("text, wrt", [
    ("d^3/dx^3 x^4", (("x",),) * 3),
    ("∂^2/∂x^2 x^3", (("x",),) * 2),
    ("d^2/d x^2 x^3", (("x",),) * 2),
    ("d^2/d(x, y)^2 x*y", (("x", "y"),) * 2),
    ("d/dz d^2/dx^2 x*z", (("z",), ("x",), ("x",))),
    ("d^12/dx^12 x", (("x",),) * 12),                  # any order (CONTRACT §1)
])
def test_dk_prefixes_are_k_nested_prefixes(text, wrt):
    assert parse_request(text).wrt == wrt


@pytest.mark.parametrize("text, column", [("d^3/dx^2 x", 7), ("d^0/dx^0 x", 7),
                                          ("d^10001/dx^10001 x", 11)])
def test_dk_orders_are_checked(text, column):
    with pytest.raises(McalcError) as e:
        parse_request(text)
    assert e.value.column == column


def test_where_mixes_declarations_and_definitions():
    req = parse_request("d/dx t2 where t1 = x^2; x: scalar; t2 = t1 + 1")
    assert [d.name for d in req.defs] == ["t1", "t2"]
    assert [d.names for d in req.decls] == [("x",)]
    assert req.defs[0].column == 15


def test_a_claim_may_carry_definitions_but_not_a_prefix():
    from mcalc.parser import parse_claim
    assert [d.name for d in parse_claim("2*t' where t = x").defs] == ["t"]
    with pytest.raises(McalcError, match="a claim is an expression"):
        parse_claim("d/dx x")
