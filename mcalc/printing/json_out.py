"""Derivation -> one JSON object (contract §3 'JSON')."""
from __future__ import annotations

import json

from mcalc.derivation import Derivation
from mcalc.printing import latex
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.plain import eq_dict, shape_text, step_text
from mcalc.printing.text import printer, to_text, where_texts


def as_dict(d: Derivation) -> dict:
    shown = d.result if d.result is not None else d.expr
    names = dict((e, n) for n, e in d.where)
    text = printer(names)
    steps_latex = latex.step_renderer(d)
    out = {
        "request": d.request,
        "wrt": list(d.wrt),
        "layout": d.layout,
        "method": d.method,
        "types": dict(d.types),
        "result": to_text(shown, names),
        "shape": list(shown.shape),
        "shape_text": shape_text(d),
        "vec_form": d.vec_form,
        "latex": latex.expr_to_latex(shown, names),
        "numpy": to_numpy(shown, d.dims, names, d.types),
        "steps": [step_dict(s, d.layout, names, text, steps_latex) for s in d.steps],
    }
    if d.where:
        out["where"] = dict(where_texts(d.where))
    return out


def step_dict(s, layout: str, names: dict, text, steps_latex) -> dict:
    """One step as JSON: kind, rule, source, text, latex, and `eq` for an equation.
    `text` and `steps_latex` are the derivation's printers (mcalc.printing.text.printer,
    latex.step_renderer), shared by its steps."""
    out = {"kind": s.kind, "rule": s.rule, "source": s.source,
           "text": step_text(s, names, text), "latex": steps_latex(s)}
    if s.eq is not None:
        out["eq"] = eq_dict(s.eq, layout, text)
    return out


def render(d: Derivation) -> str:
    return json.dumps(as_dict(d), ensure_ascii=False)
