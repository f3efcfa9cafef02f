"""Derivation -> one JSON object (contract §3 'JSON'), and the one way mcalc writes JSON.

Strict JSON always: a non-finite number is the string "nan", "inf" or "-inf" (what
`allow_nan=False` would refuse), and every non-printable character is escaped, so the
text is one line of valid UTF-8 that is safe on a terminal.
"""
from __future__ import annotations

import json
import math

from mcalc.derivation import Derivation
from mcalc.printing import latex
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.plain import differential_text, eq_dict, shape_text, step_text
from mcalc.printing.text import printer, where_texts


def as_dict(d: Derivation) -> dict:
    out, names, text, steps_latex = _head(d)
    out["steps"] = [step_dict(s, d.layout, names, text, steps_latex) for s in d.steps]
    return out


def _head(d: Derivation) -> tuple:
    """(as_dict(d) but its steps, which come last; the printers its steps share: names,
    text, steps_latex as step_dict takes them)."""
    shown = d.result if d.result is not None else d.expr
    names = {e: n for n, e in d.where}
    text = printer(names)
    steps_latex, expr_latex = latex.derivation_printers(d)
    return {
        "request": d.request,
        "wrt": list(d.wrt),
        "layout": d.layout,
        "method": d.method,
        "types": dict(d.types),
        "result": text(shown),
        "shape": list(shown.shape),
        "shape_text": shape_text(d),
        "vec_form": d.vec_form,
        "where": dict(where_texts(d.where)) if d.where else {},     # (the contract's schema)
        "latex": expr_latex(shown),
        "numpy": to_numpy(shown, d.dims, names, d.types),
    }, names, text, steps_latex


def step_dict(s, layout: str, names: dict, text, steps_latex) -> dict:
    """One step as JSON: kind, rule, source, text, latex, and `eq` for an equation.
    `text` and `steps_latex` are the derivation's printers (mcalc.printing.text.printer,
    latex.derivation_printers), shared by its steps."""
    line, tex = step_text(s, names, text), steps_latex(s)
    if s.eq is None:
        return {"kind": s.kind, "rule": s.rule, "source": s.source, "text": line, "latex": tex}
    # (one literal: a key added to a dict of five would grow it, on most steps)
    return {"kind": s.kind, "rule": s.rule, "source": s.source, "text": line, "latex": tex,
            "eq": eq_dict(s.eq, layout, text)}


def render(d: Derivation) -> str:
    """dumps(as_dict(d)), written without building the steps' dicts (most of the text)."""
    head, names, text, steps_latex = _head(d)
    layout = d.layout
    steps = ", ".join([step_json(s, layout, names, text, steps_latex) for s in d.steps])
    out = f"{_strict(head)[:-1]}, \"steps\": [{steps}]}}"
    # Every string of a derivation is printed from the request's text, the types' and
    # mcalc's own printable words: when those are printable, so is the whole text.
    if d.request.isprintable() and all(n.isprintable() for n in d.wrt) and \
            all(n.isprintable() and t.isprintable() for n, t in d.types.items()):
        return out
    return _printable(out)


_string = json.encoder.encode_basestring        # "s" as the encoder writes it (C, with _json)
_step_heads: dict = {}                          # (kind, rule, source) -> '{"kind": ...'


def step_json(s, layout: str, names: dict, text, steps_latex) -> str:
    """dumps(step_dict(s, ...)): its kind, rule and source written once per process (the
    rules are few; their names vary a little: the table is emptied when it is full).
    (An equation has no float: no walk for non-finite ones.)"""
    key = s.kind, s.rule, s.source
    head = _step_heads.get(key)
    if head is None:
        if len(_step_heads) == 1024:
            _step_heads.clear()
        head = _step_heads[key] = \
            f"{_strict({'kind': s.kind, 'rule': s.rule, 'source': s.source})[:-1]}, \"text\": "
    line = step_text(s, names, text)
    tex = _string(steps_latex(s))
    if s.eq is None:
        return f"{head}{_string(line)}, \"latex\": {tex}}}"
    return f"{head}{_string(line)}, \"latex\": {tex}, \"eq\": {_eq_json(s, line, layout, text)}}}"


def _eq_json(s, line: str, layout: str, text) -> str:
    """dumps(eq_dict(s.eq, layout, text)) of the step s printed as `line`, written directly
    (no dict and no encoder call on every step), the rare forms by eq_dict."""
    eq = s.eq
    kind, of, rhs = eq.kind, eq.of, eq.rhs
    if of.__class__ is not str:                 # (not a name: eq_dict's general form)
        return _encode(eq_dict(eq, layout, text))
    if kind == "define":
        return f"{{\"define\": {_string(of)}, \"rhs\": {_string(text(rhs))}}}"
    if kind == "differential":
        # The step's line is d<lhs> = <its terms' text>: when the equation's terms are the
        # step's own (a G that is None is written by its symbol in the line alone), that
        # text is the equation's rhs, not printed again.
        terms, shown = eq.terms, s.terms
        same = of == s.lhs and len(terms) == len(shown) and all(
            G is not None and G is t[0] and D is t[1] for (G, D), t in zip(terms, shown))
        rhs_text = line[len(of) + 4:] if same else differential_text(terms, text)
        return f"{{\"differential\": {_string(of)}, \"rhs\": {_string(rhs_text)}}}"
    if eq.by.__class__ is str and not (rhs.op == "zeros" and rhs.shape != ("1", "1")):
        extra = ("" if eq.layout == layout else f", \"layout\": {_string(eq.layout)}") + \
            (", \"vec\": true" if eq.vec else "")
        return (f"{{\"of\": {_string(of)}, \"by\": {_string(eq.by)}, \"partial\": "
                f"{'true' if kind == 'partial' else 'false'}, \"rhs\": {_string(text(rhs))}"
                f"{extra}}}")
    return _encode(eq_dict(eq, layout, text))


def _finite(value):
    """`value` with every non-finite float replaced by its string (JSON data is shallow:
    a counterexample's matrix is the deepest part). Only a counterexample has floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# json.dumps with options builds a new encoder at every call: one serves every call. The
# data is built here, never circular: no need to track the containers being encoded.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)
# _ENCODER.encode makes its C encoder anew at every call (Python code), and that encoder
# escapes every key again: a C encoder kept for _REUSE calls saves both. Not for ever: it
# memoises the keys it has encoded, and keys (variable names) come from the requests.
_MAKE_ENCODER = json.encoder.c_make_encoder          # (None without the _json accelerator)
_REUSE = 256
_kept: list = [None, 0]                                # the C encoder, its calls so far


def _encode(value) -> str:
    """_ENCODER.encode(value)."""
    if _MAKE_ENCODER is None:
        return _ENCODER.encode(value)
    encoder, calls = _kept
    if encoder is None or calls == _REUSE:
        encoder = _kept[0] = _MAKE_ENCODER(None, _ENCODER.default, json.encoder.encode_basestring,
                                           None, ": ", ", ", False, False, False)
        calls = 0
    _kept[1] = calls + 1
    return "".join(encoder(value, 0))


def dumps(value) -> str:
    """One line of strict JSON (see the module's docstring)."""
    return _printable(_strict(value))


def _strict(value) -> str:
    """JSON of value, a non-finite float written as a string."""
    try:                        # most data has no float at all: no walk to replace them
        return _encode(value)
    except ValueError:          # a non-finite float
        return _encode(_finite(value))


def _printable(text: str) -> str:
    """The JSON text with every non-printable character escaped."""
    if text.isprintable():
        return text
    # json escapes only U+0000..U+001F; the others (DEL, C1 controls, bidi overrides,
    # lone surrogates from undecodable arguments) can only sit inside strings here
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    """JSON's \\uXXXX escape (a surrogate pair beyond the Basic Multilingual Plane); a
    lone surrogate (an undecodable byte of an argument) is U+FFFD, as strict parsers
    refuse its escape."""
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
