"""A derivation as a document outline — header, sections of rows, result — with each
formula in LaTeX: the shared model of the Markdown and HTML printers (which differ only
in how they write a formula and a piece of text)."""
from __future__ import annotations

from dataclasses import dataclass

from mcalc.printing import latex as L
from mcalc.printing.plain import _SECTIONS, rule_label, shape_text, step_text, typing_text


@dataclass(frozen=True)
class Row:
    kind: str             # the step kind ('result', 'where' for the result's lines)
    formula: str          # LaTeX ('' when the row is words only)
    words: str = ""       # plain text: a note, or what follows the formula
    rule: str = ""        # the rule label, 'rule — source'


@dataclass(frozen=True)
class Outline:
    request: str
    typing: str
    method: str | None    # None without a derivative prefix
    sections: tuple[tuple[str, tuple[Row, ...]], ...]
    result: Row
    where: tuple[Row, ...]


def outline(d) -> Outline:
    """The outline of the internal derivation `d` (one symbol table and one printer for
    all steps, so the cost is linear in the number of steps)."""
    sym = L._Symbols(d)
    names = {e: n for n, e in d.where}
    p = L._Printer(names)
    sections: list[tuple[str, list[Row]]] = []
    for s in d.steps:
        title = _SECTIONS.get(s.kind, s.kind)
        if not sections or sections[-1][0] != title:
            sections.append((title, []))
        if s.kind == "note":
            row = Row(s.kind, "", step_text(s, names), rule_label(s) if s.rule else "")
        else:
            row = Row(s.kind, _one_formula(L._step_lines(s, sym, p)),
                      rule=rule_label(s) if s.rule else "")
        sections[-1][1].append(row)
    shown = d.result if d.result is not None else d.expr
    lhs = L._result_lhs(d, sym) if d.result is not None else ""
    rhs = p.tex(shown)[0]
    result = Row("result", f"{lhs} = {rhs}" if lhs else rhs, shape_text(d))
    where = tuple(
        Row("where", f"{L.name_to_latex(n, L._is_vector_shape(e.shape))} = "
                     f"{L._Printer({k: v for k, v in names.items() if v != n}).tex(e)[0]}")
        for n, e in d.where)
    return Outline(d.request, typing_text(d.types), d.method if d.result is not None else None,
                   tuple((t, tuple(rows)) for t, rows in sections), result, where)


def _one_formula(lines) -> str:
    """Lines (lhs, rhs, note) of one step as one formula: lhs = rhs = rhs2 ..."""
    out = []
    for lhs, rhs, _ in lines:
        if lhs is None:
            out.append(rhs)
        else:
            out.append(f"{lhs} = {rhs}" if not out else f"= {rhs}")
    return " ".join(out)
