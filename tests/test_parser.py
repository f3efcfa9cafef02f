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
