"""json_out.render writes the steps' JSON without their dicts: it must be exactly
dumps(as_dict(d)) (the contract's object, in the one way mcalc writes JSON)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcalc.derivation import Step, replace
from mcalc.pipeline import derive
from mcalc.printing import json_out
from mcalc.printing.json_out import as_dict, dumps, render

MIX = Path(__file__).resolve().parent.parent / "benchmarks" / "mix.txt"
REQUESTS = [line.strip() for line in MIX.read_text().splitlines()
            if line.strip() and not line.startswith("#")][::7] + [
    "d/dx sum(exp(W@x + b)) where W: matrix(m, n); x: vector(n); b: vector(m)",
    "d/dX tr(X@A@X') where X: matrix(m, n); A: matrix(n, n)",
    "d/dx x*0 where x: vector(n)",                          # a zero result keeps its shape
    "d/dw sum((X@w - y)^2)/m where X: matrix(m, n); w: vector(n); y: vector(m)",
    "d/dx tanh(W2@tanh(W1@x)) where x: vector(n); W1: matrix(n, n); W2: matrix(n, n)",
    "x'@A@x where x: vector(n)",                            # only a shape: no steps
    "d/dx (x - mean(x))/sqrt(mean((x - mean(x))^2) + 0.001)",   # shared parts named: where
    # large gradients named in the differential's equation, written out in its line
    "d/dW1 sum((tanh(W8@tanh(W7@tanh(W6@tanh(W5@tanh(W4@tanh(W3@tanh(W2@"
    "tanh(W1@x + b1) + b2) + b3) + b4) + b5) + b6) + b7) + b8) - y)^2)",
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("method", [None, "chain", "differential"])
def test_render_is_dumps_of_as_dict(layout, method):
    checked = 0
    for request in REQUESTS:
        try:
            d = derive(request, (), layout, method)
        except Exception:                # (a method that does not apply to this request)
            continue
        assert render(d) == dumps(as_dict(d)), request
        checked += 1
    assert checked > len(REQUESTS) // 2


def test_render_escapes_what_is_not_printable():
    """Printable request, names and types make printable steps: anything else is looked at
    character by character, as dumps does."""
    d = derive("d/dx sin(x)*y where y: scalar")
    odd = [replace(d, request=d.request + " \x1b[2J\u202e\udcff"),
           replace(d, types={**d.types, "y\u2028": "scalar"}),
           replace(d, types={**d.types, "y": "scalar\x85"}),
           replace(d, wrt=("x\x7f",))]
    for e in odd:
        text = render(e)
        assert text == dumps(as_dict(e)) and text.isprintable()
        json.loads(text)


def test_step_heads_stay_bounded():
    """The steps' heads (kind, rule, source) are written once per process, in a table that
    is emptied when full: rule names vary with the request (`... on du2`)."""
    d = derive("d/dx sin(x)")
    names, text, steps_latex = json_out._head(d)[1:]
    json_out._step_heads.clear()
    for k in range(1100):
        s = Step("note", rule=f"rule {k}", text=f"note {k}", source="§1")
        got = json_out.step_json(s, d.layout, names, text, steps_latex)
        assert got == dumps(json_out.step_dict(s, d.layout, names, text, steps_latex))
        assert 0 < len(json_out._step_heads) <= 1024
    assert len(json_out._step_heads) < 1100 - 1024 + 1
