"""Derivation -> plain text (no colour), the format for pipes and golden files.

`step_text` renders one step as one line; the rich and JSON printers reuse it.
"""
from __future__ import annotations

from mcalc.derivation import Derivation, Step
from mcalc.printing.text import printer
from mcalc.printing.text import to_text as _to_text
from mcalc.types import describe


def typing_text(types: dict) -> str:
    """'w, x: vector(n); b: scalar' — names grouped by type, in order of appearance."""
    groups: dict[str, list[str]] = {}
    for name, t in types.items():
        groups.setdefault(t, []).append(name)
    return "; ".join(f"{', '.join(names)}: {t}" for t, names in groups.items()) or "(no variables)"


def rule_label(s: Step) -> str:
    """The rule a step applies, with its source: 'element-wise product — P&H §4.2'."""
    return f"{s.rule} — {s.source}" if s.source else s.rule


def partial_symbol(of: str, by: str) -> str:
    return f"∂{of}/∂{by}"


def shape_text(d: Derivation) -> str:
    r, c = d.shape
    if d.result is None:
        return f"{describe(d.shape)} ({r}×{c})"
    kind = describe(d.shape)
    if d.vec_form:
        kind = "vec form ∂vec(F)/∂vec(X)"
    elif d.shape == ("1", "1"):
        kind = "scalar"
    elif r == "1":
        kind = "row vector"
    elif c == "1":
        kind = "column vector"
    else:
        kind = "matrix"
    return f"{r}×{c} {kind}, {d.layout} layout"


def _terms(terms) -> str:
    return " + ".join(" ".join(partial_symbol(*p) for p in t) for t in terms)


def step_text(s: Step, names: dict | None = None, text=None) -> str:
    """One step as one line; `names` prints shared subexpressions by their t-names.
    `text` (from mcalc.printing.text.printer(names)) shares the work between steps."""
    def to_text(e):
        return text(e) if text is not None else _to_text(e, names)

    if s.kind == "define":
        return f"{s.lhs} = {to_text(s.rhs)}"
    if s.kind == "partial":
        return f"{partial_symbol(*s.lhs)} = {to_text(s.rhs)}"
    if s.kind == "chain":
        via = f"{_terms(s.terms)} = " if s.terms and s.terms != ((s.lhs,),) and \
            "components" not in s.terms[0][0] else ""
        if s.rhs is None:                  # a large product: its factors are shown above
            return f"{partial_symbol(*s.lhs)} = {via[:-3]}"
        return f"{partial_symbol(*s.lhs)} = {via}{to_text(s.rhs)}"
    if s.kind == "differential":
        if s.rhs is None:                  # a large gradient, named by what it is
            return f"d{s.lhs} = {s.text} : {to_text(s.by)}"
        if s.rhs.op == "num" and s.rhs.value == 1:
            return f"d{s.lhs} = {to_text(s.by)}"
        return f"d{s.lhs} = {to_text(s.rhs)} : {to_text(s.by)}"
    if s.kind in ("substitute", "simplify", "component"):
        shown = to_text(s.rhs) if s.rhs is not None else "(too large to show; simplified below)"
        return f"{partial_symbol(*s.lhs)} = {shown}"
    return f"{s.text} {to_text(s.rhs)}" if s.rhs is not None else s.text


_SECTIONS = {"define": "intermediate variables", "partial": "partial derivatives",
             "chain": "chain rule", "differential": "differential method",
             "substitute": "substitute back", "simplify": "simplify", "note": "note",
             "component": "definition method: component by component"}


def render(d: Derivation) -> str:
    lines = [f"request: {d.request}", f"typing:  {typing_text(d.types)}"]
    if d.result is None:
        lines.append(f"shape:   {_to_text(d.expr)} is a {shape_text(d)}")
        return "\n".join(lines) + "\n"
    lines.append(f"method:  {d.method}")
    current = None
    names = {e: n for n, e in d.where}
    text = printer(names)
    for s in d.steps:
        section = _SECTIONS[s.kind]
        if section != current:
            lines.append("")
            lines.append(section)
            current = section
        rule = f"    [{rule_label(s)}]" if s.rule else ""
        extra = f"    ({describe(s.rhs.shape)})" if s.kind == "define" else ""
        lines.append(f"  {step_text(s, names, text)}{extra}{rule}")
    lines += ["", "result", f"  {result_line(d)}", f"  shape: {shape_text(d)}"]
    for name, e in d.where:
        lines.append(f"  where {name} = {_to_text(e, names_below(d.where, name))}")
    return "\n".join(lines) + "\n"


def result_symbol(d: Derivation) -> str:
    """∂y/∂w, ∂²y/∂x², ∂²y/∂x∂y, ∂y/∂(x, y)."""
    if len(d.wrt) == 1 or d.stacked:
        group = tuple(dict.fromkeys(d.wrt))        # d^k/d(x, y)^k: k copies of (x, y)
        by = d.wrt[0] if len(d.wrt) == 1 else f"({', '.join(group)})"
        k = len(d.wrt) // len(group)
        return f"∂{d.of}/∂{by}" if k == 1 else f"∂{_SUP.get(k, k)}{d.of}/∂{by}{_SUP.get(k, k)}"
    order = len(d.wrt)
    if len(set(d.wrt)) == 1:
        return f"∂{_SUP.get(order, order)}{d.of}/∂{d.wrt[0]}{_SUP.get(order, order)}"
    return f"∂{_SUP.get(order, order)}{d.of}/" + "".join(f"∂{w}" for w in d.wrt)


_SUP = {2: "²", 3: "³"}


def result_line(d: Derivation) -> str:
    return f"{result_symbol(d)} = {_to_text(d.result, dict((e, n) for n, e in d.where))}"


def names_below(where, name) -> dict:
    """The names defined before `name` (a definition refers only to earlier ones)."""
    out = {}
    for n, e in where:
        if n == name:
            break
        out[e] = n
    return out


def one_line(d: Derivation) -> str:
    """The batch form: one line per request."""
    r, c = d.shape
    if d.result is None:
        return f"{d.request}  =>  {describe(d.shape)}"
    names = {e: n for n, e in d.where}
    where = "".join(f"; {n} = {_to_text(e, names_below(d.where, n))}" for n, e in d.where)
    return f"{d.request}  =>  {_to_text(d.result, names)}    [{r}×{c}]" + \
        (f"    where {where[2:]}" if where else "")
