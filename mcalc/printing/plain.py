"""Derivation -> plain text (no colour), the format for pipes and golden files.

`step_text` renders one step as one line; the rich and JSON printers reuse it.
"""
from __future__ import annotations

from mcalc import expr as E
from mcalc.derivation import Derivation, Eq, Step, Total
from mcalc.printing.text import printer, where_texts
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


def total_symbol(of: str, by: str) -> str:
    """d(of)/d(by): a total derivative (P&H §4.5.2), ∂ being kept for partials."""
    return f"d{of}/d{by}"


def shape_text(d: Derivation) -> str:
    shape = d.shape
    r, c = shape
    if d.result is None:
        return f"{describe(shape)} ({r}×{c})"
    if d.vec_form:                      # (by stacked scalars: by their column, not a vec)
        by = f"({', '.join(d.groups[0])})" if d.stacked else "vec(X)"
        kind = f"vec form ∂vec(F)/∂{by}"
    elif shape == ("1", "1"):
        kind = "scalar"
    elif r == "1":
        kind = "row vector"
    elif c == "1":
        kind = "column vector"
    else:
        kind = "matrix"
    return f"{r}×{c} {kind}, {d.layout} layout"


def _terms(terms) -> str:
    """∂y/∂u2 du2/dt + …: each term a product of partial (pair) and total (Total) symbols.
    (Loops, not generators: every step of a chain prints one.)"""
    out = []
    for t in terms:
        product = []
        for pair in t:
            product.append(total_symbol(*pair) if pair.__class__ is Total else
                           partial_symbol(*pair))
        out.append(" ".join(product))
    return " + ".join(out)


def _frobenius_side(e, text, bare: bool = False) -> str:
    """One side of `:` — a sum in parentheses (unless `bare`: a side alone), so the line
    reads one way only; a zero that keeps its shape (_zero_text)."""
    op = e.op
    if op == "zeros" and e.shape != ("1", "1"):
        return _zero_text(e.shape)
    t = text(e)
    return f"({t})" if not bare and (op == "add" or op == "mul" and
                                     E.is_number(e.args[0], -1)) else t


def _zero_text(shape) -> str:
    """A zero that keeps its shape ("0" alone reads as a scalar)."""
    r, c = shape
    return "0*" + (f"ones({r})" if c == "1" else f"ones({c})'" if r == "1" else
                   f"ones({r})@ones({c})'")


def differential_text(terms, text) -> str:
    """Σ G : D as the rhs of `dy = …`: `G : D`, `D` when G is 1, `(G : D) + (H : E)`.
    A G of None is shown by its symbol (∂y/∂u3)."""
    out = []
    for G, D, *symbol in terms:
        if G is not None and G.op == "num" and G.value._numerator == 1 and \
                G.value._denominator == 1:                   # dU, not 1 : dU
            out.append(_frobenius_side(D, text, bare=len(terms) == 1))
            continue
        d = _frobenius_side(D, text)
        g = symbol[0] if G is None and symbol else _frobenius_side(G, text)
        out.append(f"{g} : {d}")
    if len(out) == 1:
        return out[0]
    return " + ".join(f"({t})" if " : " in t else t for t in out) or "0"


def eq_dict(eq: Eq, layout: str, text) -> dict:
    """A step's equation as the contract's JSON `eq`; `layout` is the derivation's."""
    if eq.kind == "define":
        return {"define": eq.of, "rhs": text(eq.rhs)}
    if eq.kind == "differential":
        return {"differential": eq.of,
                "rhs": differential_text(eq.terms, text)}
    if eq.rhs.op == "zeros" and eq.rhs.shape != ("1", "1"):
        return {**eq_dict(Eq(eq.kind, eq.of, eq.by, E.ONE, layout=eq.layout, vec=eq.vec),
                          layout, text), "rhs": _zero_text(eq.rhs.shape)}
    out = {"of": eq.of, "by": eq.by, "partial": eq.kind == "partial", "rhs": text(eq.rhs)}
    if eq.layout != layout:
        out["layout"] = eq.layout
    if eq.vec:
        out["vec"] = True
    return out


def step_text(s: Step, names: dict | None = None, text=None) -> str:
    """One step as one line; `names` prints shared subexpressions by their t-names.
    `text` (from mcalc.printing.text.printer(names)) shares the work between steps."""
    to_text = text if text is not None else lambda e: _to_text(e, names)
    if s.kind == "define":
        return f"{s.lhs} = {to_text(s.rhs)}"
    if s.kind == "name":                    # v6 = du6/dx = cos(u5)*v5
        return f"{s.lhs} = {_terms(s.terms)} = {to_text(s.rhs)}"
    if s.kind == "partial":
        of, by = s.lhs
        if s.eq is not None and s.eq.vec:          # ∂vec(of)/∂vec(by): say so
            of, by = f"vec({of})", f"vec({by})"
        # one operand's share of a product rule (x^x) is a term, not an equation
        term = "term: " if s.eq is None else ""
        return f"{term}{partial_symbol(of, by)} = {to_text(s.rhs)}"
    if s.kind == "chain":
        via = f"{_terms(s.terms)} = " if s.terms and s.terms != ((s.lhs,),) and \
            "components" not in s.terms[0][0] else ""
        lhs = total_symbol(*s.lhs)           # a chain step states a total derivative
        if s.rhs is None:                  # a large product: its factors are shown above
            return f"{lhs} = {via[:-3]}"
        if s.product is not None:          # the product, then what the rewrites make of it
            via += f"{to_text(s.product)} = "
        return f"{lhs} = {via}{to_text(s.rhs)}"
    if s.kind == "differential":
        return f"d{s.lhs} = {differential_text(s.terms, to_text)}"
    if s.kind in ("substitute", "simplify", "component", "layout", "identify"):
        shown = to_text(s.rhs) if s.rhs is not None else "(too large to show; simplified below)"
        # a component's derivative holds the other components fixed: a partial
        symbol = partial_symbol if s.kind == "component" else total_symbol
        return f"{symbol(*s.lhs)} = {shown}"
    return f"{s.text} {to_text(s.rhs)}" if s.rhs is not None else s.text


SECTIONS = {"define": "intermediate variables", "partial": "partial derivatives",
            "chain": "chain rule", "differential": "differential method",
            "substitute": "substitute back", "simplify": "simplify", "note": "note",
            "layout": "layout", "identify": "identification",
            "component": "definition method: component by component",
            "name": "names"}


def section(s: Step, current: str | None) -> str:
    """The heading of a step: a name for a large derivative stays with the steps that use
    it, under theirs."""
    return current if s.kind == "name" and current else SECTIONS[s.kind]


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
        title = section(s, current)
        if title != current:
            lines.append("")
            lines.append(title)
            current = title
        rule = f"    [{rule_label(s)}]" if s.rule else ""
        extra = f"    ({describe(s.rhs.shape)})" if s.kind in ("define", "name") else ""
        lines.append(f"  {step_text(s, names, text)}{extra}{rule}")
    lines += ["", "result", f"  {result_line(d)}", f"  shape: {shape_text(d)}"]
    lines += [f"  where {name} = {text}" for name, text in where_texts(d.where)]
    return "\n".join(lines) + "\n"


def result_symbol(d: Derivation) -> str:
    """dy/dw, d²y/dx², d²y/dxdy, dy/d(x, y), d²y/d(x1, x2)² — one d per prefix written (the
    result is a total derivative, P&H §4.5.2)."""
    groups = d.groups or ((tuple(d.wrt),) if d.stacked else tuple((w,) for w in d.wrt))
    merged: list = []                          # [label, power], equal neighbours merged
    for g in groups:
        label = g[0] if len(g) == 1 else f"({', '.join(g)})"
        if merged and merged[-1][0] == label:
            merged[-1][1] += 1
        else:
            merged.append([label, 1])
    order = len(groups)
    den = "".join(f"d{label}{_sup(k) if k > 1 else ''}" for label, k in merged)
    return f"d{_sup(order) if order > 1 else ''}{d.of}/{den}"


def _sup(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


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
    if not d.where:                          # (most requests: nothing named)
        return f"{d.request}  =>  {_to_text(d.result)}    [{r}×{c}]"
    names = {e: n for n, e in d.where}
    where = "; ".join(f"{n} = {text}" for n, text in where_texts(d.where))
    return f"{d.request}  =>  {_to_text(d.result, names)}    [{r}×{c}]    where {where}"
