"""Derivation -> Markdown with $...$ / $$...$$ math, as GitHub, Jupyter and most static
site generators render it. Text is escaped; a formula that could not sit between dollar
signs (it contains one) is shown as code instead."""
from __future__ import annotations

import re

from mcalc.printing.outline import Row, outline

_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~])")


def escape(s: str) -> str:
    """Plain text safe in Markdown inside a line: the marks that start emphasis, code,
    links, HTML, math and tables are escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(s.split()))


def code(s: str) -> str:
    """An inline code span holding s verbatim (a fence longer than any run of ` in s)."""
    s = " ".join(s.split())
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def math(formula: str, display: bool = False) -> str:
    if "$" in formula:
        return code(formula)
    return f"$$\n{formula}\n$$" if display else f"${formula}$"


def _row(r: Row) -> str:
    out = math(r.formula) if r.formula else escape(r.words)
    if r.formula and r.words:
        out += " " + escape(r.words)
    if r.rule:
        out += f" — *{escape(r.rule)}*"
    return out


def render(d) -> str:
    """The whole derivation: request, typing, one list per section, the result."""
    o = outline(d)
    head = f"**mcalc** {code(o.request)}  \ntyping: {escape(o.typing)}"
    if o.method:
        head += f" · method: {escape(o.method)}"
    parts = [head]
    for title, rows in o.sections:
        parts.append(f"**{escape(title)}**\n\n" + "\n".join(f"- {_row(r)}" for r in rows))
    result = [f"**{'result' if o.method else 'shape'}**", math(o.result.formula, True),
              escape(o.result.words) + (f" — *{escape(o.result.rule)}*" if o.result.rule
                                        else "")]
    result += [f"where {math(w.formula)}" for w in o.where]
    parts.append("\n\n".join(result))
    return "\n\n".join(parts) + "\n"
