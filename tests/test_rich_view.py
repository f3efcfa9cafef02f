"""The rich view (`mcalc.printing.rich_view`): colour on a terminal, none under NO_COLOR,
fits the width it is given, and says what the plain printer says."""
from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len
from rich.console import Console

from mcalc.pipeline import derive
from mcalc.printing import plain
from mcalc.printing.rich_view import render

REQUESTS = [
    "d/dw sum(w*x) + b",
    "d/dx sin(x^2)",
    "d/dx sin(x + x^2)",
    "d/dw max(0, w'@x + b)",
    "d/dW norm(X'@W)^2",
    "d/d(x, y) x*y + sin(x)",
    "d^2/dx^2 x'@A@x",
    "d/dX A@X@B",
    "d/dx softmax(x)",
    "sum(w*x)",
]

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(s: str) -> list[str]:
    """The SGR escapes in s that set a colour (foreground or background)."""
    out = []
    for params in _SGR.findall(s):
        for p in params.split(";"):
            if p and (30 <= int(p) <= 49 or 90 <= int(p) <= 107):
                out.append(params)
                break
    return out


def rendered(request: str, layout: str = "numerator", **console) -> str:
    buf = io.StringIO()
    render(derive(request, layout=layout), Console(file=buf, **console))
    return buf.getvalue()


def terminal(request: str, **kw) -> str:
    return rendered(request, width=100, force_terminal=True, color_system="standard", **kw)


@pytest.mark.parametrize("request_text", REQUESTS[:5])
def test_colour_on_a_terminal(request_text):
    assert colour_codes(terminal(request_text))


@pytest.mark.parametrize("request_text", REQUESTS[:5])
def test_no_colour_with_no_color_flag(request_text):
    out = terminal(request_text, no_color=True)
    assert _SGR.search(out)                       # still a terminal: bold/dim remain
    assert colour_codes(out) == []


def test_no_colour_under_env_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_codes(terminal("d/dw sum(w*x) + b")) == []


def test_no_escapes_when_not_a_terminal():
    out = rendered("d/dw sum(w*x) + b", width=100)
    assert "\x1b" not in out


@pytest.mark.parametrize("request_text", REQUESTS)
@pytest.mark.parametrize("width", [40, 60, 100])
def test_fits_the_width(request_text, width):
    out = rendered(request_text, width=width, color_system=None)
    assert out.strip()
    too_wide = [line for line in out.splitlines() if cell_len(line) > width]
    assert too_wide == []


def test_markup_in_expressions_is_not_eaten():
    """`[[...]]` and `[0, 1]` are maths, not rich markup."""
    d = derive("d/d(x, y) x*y + sin(x)")
    assert "[" in plain.result_line(d)
    out = rendered("d/d(x, y) x*y + sin(x)", width=100, color_system=None)
    assert plain.result_line(d) in out
    out = rendered("d/dw max(0, w'@x + b)", width=100, color_system=None)
    assert "[0, 1]" in out


@pytest.mark.parametrize("request_text", REQUESTS[:5])
def test_says_what_the_plain_printer_says(request_text):
    d = derive(request_text)
    out = rendered(request_text, width=200, color_system=None)
    assert d.request in out
    assert plain.typing_text(d.types) in out
    assert plain.result_line(d) in out
    assert plain.shape_text(d) in out
    for s in d.steps:
        assert plain.step_text(s) in out
        if s.rule:
            assert s.rule in out


def test_shared_subexpressions_print_as_plain_prints_them():
    # deep enough to share subexpressions: steps write them by their t-names and each
    # `where` line gives its definition (not "t1 = t1"), exactly as the plain printer does
    from mcalc.printing.text import where_texts
    request_text = "d/dx " + "sin(" * 40 + "x" + ")" * 40
    d = derive(request_text)
    assert d.where
    names = {e: n for n, e in d.where}
    out = rendered(request_text, width=1000, color_system=None)
    for s in d.steps:
        assert plain.step_text(s, names) in out
    for name, text in where_texts(d.where):
        assert text != name and f"where {name} = {text}" in out


def test_sections_in_order():
    out = rendered("d/dw sin(sum(w*x)) + b", width=100, color_system=None)
    positions = [out.index(name) for name in (
        "intermediate variables", "partial derivatives", "chain rule", "substitute back",
        "result")]
    assert positions == sorted(positions)


def test_dataflow_tree_links_intermediates_down_to_the_variable():
    out = rendered("d/dw sum(w*x) + b", width=100, color_system=None)
    assert re.search(r"│ y = u2 \+ b +scalar", out)                   # the root
    assert re.search(r"└── u2 = sum\(u1\) +scalar", out)
    assert re.search(r" {4}└── u1 = w\*x +vector\(n\)", out)
    assert re.search(r" {8}└── w +vector\(n\)", out)                  # the variable, a leaf


def test_dataflow_shows_both_operands_of_a_fork():
    out = rendered("d/dx sin(x + x^2)", width=100, color_system=None)
    assert re.search(r"├── x +scalar", out)
    assert re.search(r"└── u1 = x\^2 +scalar", out)


def test_no_derivative_prefix_shows_typing_and_shape_only():
    out = rendered("sum(w*x)", width=100, color_system=None)
    assert "w, x: vector(n)" in out
    assert "sum(w*x) is a scalar (1×1)" in out
    assert "result" not in out and "step" not in out


def test_result_panel_shows_the_shape():
    out = rendered("d/dw sum(w*x) + b", width=100, color_system=None)
    assert "dy/dw = x'" in out
    assert "1×n row vector, numerator layout" in out


def test_default_console_is_stdout(capsys):
    render(derive("d/dx sin(x^2)"))
    assert "dy/dx = 2*x*cos(x^2)" in capsys.readouterr().out
