"""Derivation -> HTML with the math as MathML (converted from the LaTeX printer's output
by latex2mathml): a fragment for notebooks and pages, or with --standalone a complete
page. No scripts, no fonts or styles from the network: browsers render MathML natively.

Elements carry classes (mcalc, mcalc-step, mcalc-rule, mcalc-result, ...) for styling;
each step row has data-kind, the step's kind."""
from __future__ import annotations

import re
from html import escape

from mcalc.printing.outline import Row, outline


_FROBENIUS = re.compile(r" : ")
_FUNCTION_NAME = re.compile(r"<mo>([A-Za-z]{2,})</mo>")


def mathml(formula: str, display: bool = False) -> str:
    """The LaTeX formula as a <math> element; code text if it cannot be converted.
    The Frobenius product's colon gets the spacing of a relation (latex2mathml makes it
    an identifier), and function names (relu, sum, tr) are identifiers, as in MathML's
    own sin, not operators with operator spacing."""
    from latex2mathml.converter import convert
    try:
        out = convert(_FROBENIUS.sub(r" \;:\; ", formula),
                      display="block" if display else "inline")
    except Exception:            # latex2mathml has no error class of its own
        return f'<code class="mcalc-latex">{escape(formula)}</code>'
    return _FUNCTION_NAME.sub(r'<mspace width="0.167em" /><mi>\1</mi>', out)


def _row(r: Row) -> str:
    cell = mathml(r.formula) if r.formula else escape(r.words)
    if r.formula and r.words:
        cell += " " + escape(r.words)
    rule = f'<td class="mcalc-rule">{escape(r.rule)}</td>' if r.rule else "<td></td>"
    return f'<tr class="mcalc-step" data-kind="{escape(r.kind)}"><td>{cell}</td>{rule}</tr>'


def render(d) -> str:
    """The derivation as an HTML fragment (one <div class="mcalc">)."""
    o = outline(d)
    out = ['<div class="mcalc">',
           f'<p class="mcalc-request"><code>{escape(o.request)}</code></p>',
           f'<p class="mcalc-typing">typing: {escape(o.typing)}'
           + (f"; method: {escape(o.method)}" if o.method else "") + "</p>"]
    if o.sections:
        out.append('<table class="mcalc-steps">')
        for title, rows in o.sections:
            out.append(f'<tr class="mcalc-section"><th colspan="2">{escape(title)}</th></tr>')
            out += [_row(r) for r in rows]
        out.append("</table>")
    out.append(f'<div class="mcalc-result">{mathml(o.result.formula, True)}'
               f'<p class="mcalc-shape">{escape(o.result.words)}</p>')
    if o.result.rule:
        out.append(f'<p class="mcalc-rule">{escape(o.result.rule)}</p>')
    out += [f'<p class="mcalc-where">where {mathml(w.formula)}</p>' for w in o.where]
    out += ["</div>", "</div>"]
    return "\n".join(out) + "\n"


_STYLE = """body { font-family: serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }
.mcalc-steps { border-collapse: collapse; }
.mcalc-steps td, .mcalc-steps th { padding: 0.25em 0.75em; vertical-align: middle; }
.mcalc-section th { text-align: left; font-style: italic; padding-top: 1em; }
.mcalc-rule { color: #555; font-size: 0.9em; }
.mcalc td:first-child, .mcalc-result { overflow-x: auto; max-width: 50em; }
.mcalc-steps math { math-style: normal; }
.mcalc-result { margin-top: 1.5em; }"""


def standalone(d) -> str:
    """A complete HTML page: UTF-8, inline style, no scripts, nothing from the network."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>mcalc: {escape(d.request)}</title>\n<style>\n{_STYLE}\n</style>\n"
            f"</head>\n<body>\n{render(d)}</body>\n</html>\n")
