"""Depth and size without recursion (issue #16): the parser and the text printer walk
iteratively, so deep and long requests parse, type and print under a small recursion
limit; the depth cap is 10,000 levels and beyond it the error is one line."""
from __future__ import annotations

import pytest

from mcalc import expr as E
from mcalc.errors import McalcError
from mcalc.parser import MAX_DEPTH, _drive, parse_request
from mcalc.pipeline import derive, typed
from mcalc.printing.plain import names_below
from mcalc.printing.text import to_text, where_texts
from mcalc.types import SCALAR
from test_parser_driver import lark_syntax

N = 5000


DEEP = {
    "sin 5000 deep": "d/dx " + "sin(" * N + "x" + ")" * N,
    "5000-term sum": "d/dx " + " + ".join(f"{k}*x" for k in range(1, N + 1)),
    "5000-factor product": "d/dx " + "*".join(["x"] * N),
    "5000-matrix chain": "d/dx sum(" + "@".join(["A"] * N) + "@x)",
    "x + (x + (... 5000 deep": "d/dx " + "x + (" * N + "x" + ")" * N,
    "unary minus 5000 deep": "d/dx " + "-" * N + "x",
    "5000 transposes": "d/dx x" + "'" * N,
    "powers 5000 deep": "d/dx " + "2^" * N + "x",
}


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_and_long_requests_parse_and_type(name, shallow_stack):
    req, body, _, typing = typed(DEEP[name])
    assert req.wrt == (("x",),)
    assert body.size > N
    assert "x" in typing.vars


def test_depth_beyond_the_cap_is_one_clean_error():
    text = "d/dx " + "sin(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(McalcError) as e:
        parse_request(text)
    assert "nested too deeply" in e.value.one_line() and "\n" not in e.value.one_line()
    assert MAX_DEPTH >= 10_000


ORDINARY = ["d/dx sin(x^2)", "d/dw sum(w*x) + b", "d/dx x'@A@x where x: vector(n); A: matrix(n, n)",
            "d/d(x, y) x^2 + x*y", "d^2/dx^2 -x^3/2", "d/dx [x^2, sin(x)] - +x",
            "d/dX tr(A@X@B) where X: matrix(m, n)", "d/dx (x > 0)*x^1.5 + 2e-3"]


@pytest.mark.parametrize("text", ORDINARY)
def test_syntax_built_while_parsing_matches_lark_parse_tree(text):
    assert _drive(text, "request") == lark_syntax(text)          # a parse tree, then syntax


def test_text_printer_is_iterative(shallow_stack):
    x = E.var("x", SCALAR)
    e = x
    for _ in range(10_000):
        e = E.Expr("sin", (e,), SCALAR)
    assert to_text(e) == "sin(" * 10_000 + "x" + ")" * 10_000
    s = x
    for k in range(2, N):
        s = E.Expr("add", (s, E.Expr("mul", (E.num(-k), x), SCALAR)), SCALAR)
    assert to_text(s) == "x" + "".join(f" - {k}*x" for k in range(2, N))


def test_where_texts_write_each_definition_with_the_earlier_names():
    e = "x"
    for k in range(1, 13):
        e = f"tanh(W{k}@{e} + b{k})"
    d = derive(f"d/dW1 sum(({e} - y)^2)")
    assert len(d.where) > 10
    assert where_texts(d.where) == [(n, to_text(e, names_below(d.where, n))) for n, e in d.where]


def test_text_of_a_deep_chain_takes_memory_in_proportion_to_its_length(shallow_stack):
    """A node's text shares its operand's (a rope): copying would hold 20,000 strings of
    average length 50,000 (1 GB) while printing sin(sin(...x)) 20,000 deep."""
    import tracemalloc
    x = E.var("x", SCALAR)
    e = x
    for _ in range(20_000):
        e = E.Expr("sin", (e,), SCALAR)
    tracemalloc.start()
    try:
        text = to_text(e)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(text) == 100_001
    assert peak < 200 * len(text)               # bytes: linear (copying: 10,000 per character)
