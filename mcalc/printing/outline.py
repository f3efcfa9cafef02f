"""A derivation as a document outline — header, sections of rows, result — with each
formula in LaTeX: the shared model of the Markdown and HTML printers (which differ only
in how they write a formula and a piece of text)."""
from __future__ import annotations

from dataclasses import dataclass

from mcalc.printing import latex as L
from mcalc.printing.latex_layout import once
from mcalc.printing.plain import rule_label, section, shape_text, step_text, typing_text


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
    all steps, so the cost is linear in the number of steps). The result is shown once:
    a last equation that states it is left out of the steps, as in the LaTeX output."""
    sym = L.Symbols(d)
    names = {e: n for n, e in d.where}
    p = L.Printer(names, sym)
    lines = [L.step_lines(s, sym, p) if s.kind != "note" else [] for s in d.steps]
    result_rule = ""
    if d.result is not None:
        result = (L.result_lhs(d, sym), p.tex(d.result)[0], "")
        last = next((i for i in range(len(lines) - 1, -1, -1)
                     if any(lhs is not None for lhs, _, _ in lines[i])), None)
        if last is not None:
            lines[last], (_, _, moved) = once(lines[last], result)
            if moved:                         # the dropped line carried the step's rule
                result_rule = rule_label(d.steps[last])
        result = Row("result", f"{result[0]} = {result[1]}" if result[0] else result[1],
                     shape_text(d), result_rule)
    else:
        result = Row("result", p.tex(d.expr)[0], shape_text(d))
    sections: list[tuple[str, list[Row]]] = []
    for s, step in zip(d.steps, lines):
        if s.kind == "note":
            row = Row(s.kind, "", step_text(s, names), rule_label(s) if s.rule else "")
        elif step:
            row = Row(s.kind, L.one_formula(step), rule=rule_label(s) if s.rule else "")
        else:
            continue                          # the result's own line: shown below
        title = section(s, sections[-1][0] if sections else None)
        if not sections or sections[-1][0] != title:
            sections.append((title, []))
        sections[-1][1].append(row)
    where = tuple(Row("where", f"{n} = {tex}") for n, tex in p.where(d.where))
    return Outline(d.request, typing_text(d.types), d.method if d.result is not None else None,
                   tuple((t, tuple(rows)) for t, rows in sections), result, where)
