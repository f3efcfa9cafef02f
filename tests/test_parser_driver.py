"""mcalc/parser.py's table driver parses exactly as lark's standalone parser does.

The driver runs the tables of mcalc/_parse_table.py; the reference here is lark's own
parse tree (mcalc/_lark_parser.py, the same grammar), with ToSyntax's callbacks applied to
it afterwards. Both must agree on every input: the same syntax (every node, text and
column) where lark accepts, and a rejection (None) where lark raises — requests from the
benchmark mixes, deep ones, multi-line ones, and random strings of the language's tokens.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcalc import _lark_parser as lk
from mcalc.errors import McalcError
from mcalc.parser import ToSyntax, _drive, parse_request
from mcalc.syntax import Syntax

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
_reference_parser = lk.Lark_StandAlone()


def lark_syntax(text: str, start: str = "request"):
    """What lark's parser makes of `text` with ToSyntax applied to its tree (a list for
    the request, as the driver's), or None if lark rejects it."""
    try:
        tree = _reference_parser.parse(text, start=start)
    except lk.LarkError:
        return None
    builder, done = ToSyntax(), {}
    stack = [(tree, False)]
    while stack:                                    # post-order, without recursion
        node, ready = stack.pop()
        if isinstance(node, lk.Token):
            done[id(node)] = (str(node), node.column)
        elif ready:
            kids = [done[id(c)] for c in node.children]
            done[id(node)] = getattr(builder, node.data, list)(kids)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
    return done[id(tree)]


def _requests(name: str) -> list[str]:
    lines = (BENCHMARKS / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_mix_parses_as_lark_parses_it():
    texts = _requests("mix.txt")
    assert len(texts) >= 300
    for text in texts:
        expected = lark_syntax(text)
        assert expected is not None and _drive(text, "request") == expected, text


def test_the_check_mix_parses_as_lark_parses_it():
    for line in _requests("check_mix.txt"):
        for part in line.split(";;"):
            assert _drive(part, "request") == lark_syntax(part), part


SAMPLES = [
    "d/dx sin(x^2)", "d/dw sum(w*x) + b where w, x: vector(n); b: scalar",
    "d^2/dx^2 x'@A@x", "d/d(x, y) [x*y, x^T]", "grad_θ -θ.T@θ ᵀ", "[[a, b], [c, d]] >= 0",
    "∂/∂x x ./ (1 + x**2) .* exp(-x)", "d^3/d(x, y)^3 x", "d^2/dx^3 x", "d/dx x where t = x; ",
    "d/dx t where t = tanh(W@x); u = t'", "d/dx f()", "d/dx max(x, 0) + min(0, x)",
    "d/dx 2^-x^+3", "d/dx 1e3 + .5 + 2. + 3.0e-2", "d/dx x ⊙ y ⊗ z ⊘ w", "d/dx x < y",
    "x: vector(n)", "d/dx x where x: matrix(03, 4); y: symmetric(n);", "d/dX tr(X) where",
    "d/dx x^Tx", "d/dx x.Tx", "d/dx x^T2", "d/d x", "d/ dx", "grad_ x", "d/dx d", "d/dx d/dy",
    "y*d/dx", "d/dx (d)/(dx)", "d /dx x", "d/dx sin(x", "d/dx x +", "", "   ", "d/dx x $",
    "d/dx x where x", "d/dx x where x: tensor(n)", "d/dx [x, [y]]", "d/dx x''ᵀ^2'",
    "d/dx x\n+ y", "d/dx\tx\r\n*\n\n  sin(x)", "d/dx x\n  $", "d/dx x where\nA: matrix(m,\nn)",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_samples_parse_as_lark_parses_them(text):
    assert _drive(text, "request") == lark_syntax(text)


@pytest.mark.parametrize("text", ["x, y: vector(n); b: scalar", "A: matrix(m, 3);",
                                  "S: symmetric(n)", "x", "x: vector", "x: scalar; ;", ""])
def test_declarations_parse_as_lark_parses_them(text):
    assert _drive(text, "decls") == lark_syntax(text, "decls")


def _flat(value) -> list:
    """A parse result as a flat list, so that deep trees compare without recursion."""
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Syntax):
            out.append((v.op, v.text, v.column, len(v.args)))
            stack.extend(v.args)
        elif isinstance(v, (list, tuple)):
            out.append((type(v).__name__, len(v)))
            stack.extend(v)
        else:
            out.append(v)
    return out


def test_deep_requests_parse_as_lark_parses_them(shallow_stack):
    n = 3000
    for text in ["d/dx " + "sin(" * n + "x" + ")" * n, "d/dx " + "-" * n + "x",
                 "d/dx " + " + ".join(["x"] * n), "d/dx " + "2^" * n + "x",
                 "d/dx x" + "'" * n, "d/dx " + "(" * n + "x" + ")" * (n - 1)]:
        ours, theirs = _drive(text, "request"), lark_syntax(text)
        assert (ours is None) == (theirs is None) and _flat(ours) == _flat(theirs), text[:40]
    assert _drive("d/dx " + "(" * n + "x" + ")" * (n - 1), "request") is None


def test_columns_count_from_the_last_line_break():
    body = _drive("d/dx x\n  + y", "request")[1]
    assert body.column == 3 and body.args[1].column == 5
    with pytest.raises(McalcError) as e:
        parse_request("d/dx x\n  $")
    assert e.value.column == 3


def test_a_space_is_ignored_in_every_lexer_state():
    """The driver skips a space without a regex match: the grammar's %ignore must take it
    in every state (as lark does), and must match it as an ignored terminal."""
    import re

    from mcalc import _parse_table as table
    for pattern in table.LEXERS:
        match = re.compile(pattern).match(" ")
        assert match is not None and match.lastgroup in table.IGNORE, pattern


def test_one_character_tokens_start_no_longer_terminal():
    """The driver reads the characters of ONE_CHARACTER_TOKENS that a lexer takes as a
    token without a regex match: whatever follows, that lexer's match must be that one
    character, as the same terminal."""
    import re
    import string

    from mcalc import _parse_table as table
    from mcalc.parser import ONE_CHARACTER_TOKENS
    after = set(string.printable) | set("".join(FRAGMENTS)) | set("∂ᵀ⊗⊙⊘é²·")
    tails = [""] + sorted(after) + [a + b for a in "*/.=<>^-+" for b in "*/.=<>^-+T"]
    taken = 0
    for pattern in table.LEXERS:
        scan = re.compile(pattern).match
        for char in ONE_CHARACTER_TOKENS:
            alone = scan(char)
            if alone is None or alone.lastgroup in table.IGNORE:
                continue
            taken += 1
            for tail in tails:
                m = scan(char + tail)
                assert m.end() == 1 and m.lastgroup == alone.lastgroup, (pattern, char + tail)
    assert taken > 20


FRAGMENTS = ["d/dx", "d/d", "∂/∂y", "d^2/dx^2", "d^2/d(x, y)^2", "grad_", "x", "y", "A", "d",
             "sin", "tr", "(", ")", "[", "]", ",", ";", ":", "=", "where", "scalar",
             "vector(n)", "matrix", "symmetric", "'", "ᵀ", "^T", ".T", "^", "**", "*", ".*",
             "⊙", "/", "./", "@", "+", "-", ">=", "<", "1", "2.5", "1e3", ".5", "07", " ",
             "\n", "\t", "n", "$", "é", "_", "T"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14), st.sampled_from(["", " "]))
def test_random_token_strings_parse_as_lark_parses_them(parts, glue):
    text = glue.join(parts)
    for start in ("request", "decls"):
        assert _drive(text, start) == lark_syntax(text, start)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="dx^2'(),;:=+-*/@.[]ᵀ∂ \nwhere", max_size=20))
def test_random_text_parses_as_lark_parses_it(text):
    assert _drive(text, "request") == lark_syntax(text)


def test_rejected_text_reports_lark_error_and_the_parser_is_reused():
    from mcalc import parser
    for text, message in [("d/dx sin(", "error (column 10): unexpected end of input"),
                          ("d/dx x $ y", "error (column 8): unexpected character '$'"),
                          ("x )", "error (column 3): unexpected ')'")]:
        with pytest.raises(McalcError) as e:
            parse_request(text)
        assert e.value.one_line() == message
    assert parser._standalone is not None


def test_tables_rejecting_what_lark_accepts_is_an_internal_error(monkeypatch):
    """The driver and lark's module are generated together; if they ever disagree, the
    request fails loudly (an internal error) instead of being reported as bad input."""
    from mcalc import parser
    monkeypatch.setattr(parser, "_drive", lambda text, start: None)
    with pytest.raises(RuntimeError, match="grammar_build"):
        parse_request("d/dx sin(x)")


def test_number_literals_kept_are_bounded():
    from mcalc import build
    from mcalc.pipeline import typed
    for k in range(build._NUMBERS_KEPT + 50):
        typed(f"d/dx {k + 0.5}*x")
    assert 0 < len(build._numbers) <= build._NUMBERS_KEPT
