"""Derivation -> a rich terminal view: header, dataflow tree, step table, result panel.

Imported lazily (only for `--format rich`), so rich is imported nowhere else. The text of
every line comes from the plain printer (`step_text`, `typing_text`, `shape_text`,
`result_line`); this module only lays it out and colours it. Colour follows rich's
Console: none under NO_COLOR or when stdout is not a terminal; the width is the
terminal's (pass a Console with `width=` to pin it, as the tests do).

All user text goes in as `Text`, never as console markup: `[[a, b]]` is a matrix, not a
style tag.
"""
from __future__ import annotations

import re
from bisect import bisect_left

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from mcalc.derivation import Derivation, Step
from mcalc.printing.plain import (result_line, rule_label, shape_text, step_text,
                                  typing_text)
from mcalc.printing.plain import section as plain_section
from mcalc.printing.text import printer, to_text, where_texts
from mcalc.types import describe

# ---- styles: one table, one place ---------------------------------------------------

STYLES = {
    "title":        "bold",
    "key":          "bold cyan",
    "section":      "bold magenta",
    "step":         "dim",
    "rule":         "italic dim",
    "shape":        "dim",
    "note":         "italic yellow",
    "partial":      "bold cyan",       # ∂y/∂w, dy/dw
    "wrt":          "bold green",      # the variable differentiated by
    "intermediate": "yellow",          # u1, U1, y
    "function":     "blue",            # sin(, norm(
    "number":       "magenta",
    "result":       "bold",
    "border":       "cyan",
    "result_border": "green",
}

# ∂y/∂w (a partial) and dy/dw (a total derivative), whole
_PARTIAL = re.compile(r"∂[²³]?[\w∇]*/(?:∂(?:\([^)]*\)|[\w∇,]+)[²³]?)+"
                      r"|(?<![\w∂])d[²³]?[\w∇]+/(?:d(?:\([^)]*\)|[\w∇,]+)[²³]?)+")
_FUNCTION = re.compile(r"(?<![\w.])[^\W\d]\w*(?=\()")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?(?![\w])")


_WORD = re.compile(r"(?<![\w∂])\w+(?![\w(])")     # a whole word, not a function's name


class _Names:
    """Finds the words that are one of `names` or its differential (dx): a set lookup per
    word, so a line costs its length however many names there are (a regex alternation
    of the names would cost length × names)."""

    def __init__(self, names):
        self.names = frozenset(names)

    def finditer(self, s: str):
        for m in _WORD.finditer(s):
            w = m.group()
            if w in self.names or (w[0] == "d" and w[1:] in self.names):
                yield m


def _names_pattern(names) -> _Names | None:
    names = {n for n in names if n}
    return _Names(names) if names else None


class _Highlighter:
    """Colours an expression line: partial symbols, the variables differentiated by,
    intermediates, functions and numbers (later rules win where they overlap)."""

    def __init__(self, wrt=(), intermediates=()):
        self.wrt = _names_pattern(wrt)
        self.mid = _names_pattern(set(intermediates) - set(wrt))

    def __call__(self, s: str, style: str = "") -> Text:
        t = Text(s, style=style)
        # a derivative symbol is one span: nothing inside it (dx in dy/dx) is styled apart
        symbols = [m.span() for m in _PARTIAL.finditer(s)]
        starts = [a for a, _ in symbols]       # in order, not overlapping: so are the ends
        for pattern, name in ((_NUMBER, "number"), (_FUNCTION, "function"),
                              (self.mid, "intermediate"), (self.wrt, "wrt")):
            for m in pattern.finditer(s) if pattern is not None else ():
                start, end = m.span()
                k = bisect_left(starts, end)   # symbols[:k] start before m ends; the last
                if not (k and symbols[k - 1][1] > start):    # ends last: does it reach m?
                    t.stylize(STYLES[name], start, end)
        for a, b in symbols:
            t.stylize(STYLES["partial"], a, b)
        return t


# ---- parts ----------------------------------------------------------------------------

def _header(d: Derivation) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=STYLES["key"], no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("request", Text(d.request))
    grid.add_row("typing", Text(typing_text(d.types)))
    if d.result is None:
        grid.add_row("shape", Text(f"{to_text(d.expr)} is a {shape_text(d)}"))
    else:
        grid.add_row("method", Text(d.method))
    return Panel(grid, title=Text("mcalc", style=STYLES["title"]), title_align="left",
                 border_style=STYLES["border"], box=box.ROUNDED, expand=False)


def _define_groups(steps) -> list[tuple[list[Step], str | None]]:
    """Each run of consecutive 'define' steps is one dataflow graph (a second derivative
    or a stacked d/d(x, y) has several), with the variable its pass differentiates by
    (read off the pass's 'substitute' step)."""
    groups: list[list] = []                      # [defines, by, closed]
    for s in steps:
        if s.kind == "define":
            if not groups or groups[-1][2]:
                groups.append([[], None, False])
            groups[-1][0].append(s)
        elif groups:
            groups[-1][2] = True
            if s.kind == "substitute" and groups[-1][1] is None and isinstance(s.lhs, tuple):
                groups[-1][1] = s.lhs[1]
    return [(defines, by) for defines, by, _ in groups]


def _operands(e, wanted) -> list[str]:
    """Names in `wanted` among the variables of e, in order of first appearance (each
    shared subtree visited once)."""
    out: list[str] = []
    stack, seen = [e], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op == "var":
            if node.name in wanted and node.name not in out:
                out.append(node.name)
        else:
            stack.extend(reversed(node.args))
    return out


def _dataflow(defines: list[Step], d: Derivation, hl: _Highlighter) -> Tree | None:
    """Root y; each node's children are its operands that are intermediates or a variable
    differentiated by (Parr & Howard's dataflow graph, drawn from the top). A shared
    intermediate is expanded once and referred to afterwards."""
    rhs = {s.lhs: s.rhs for s in defines}
    order = [s.lhs for s in defines]
    if not order:
        return None
    root = d.of if d.of in rhs else order[-1]
    wanted = set(rhs) | set(d.wrt)
    expanded: set[str] = set()

    def label(name: str) -> Text:
        if name in rhs:
            t = hl(f"{name} = {to_text(rhs[name])}")
            t.append(f"  {describe(rhs[name].shape)}", style=STYLES["shape"])
        else:
            t = Text(name, style=STYLES["wrt"])
            if name in d.types:
                t.append(f"  {d.types[name]}", style=STYLES["shape"])
        return t

    def operands(node: Tree, name: str):
        expanded.add(name)
        return node, iter([c for c in _operands(rhs[name], wanted) if c != name])

    tree = Tree(label(root), guide_style=STYLES["shape"])
    stack = [operands(tree, root)]
    while stack:                           # depth first, children in order, no recursion
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif child in expanded:
            node.add(Text(f"{child}  (above)", style=STYLES["shape"]))
        elif child in rhs:
            stack.append(operands(node.add(label(child)), child))
        else:
            node.add(label(child))
    return tree


def _dataflow_panel(d: Derivation, hl: _Highlighter) -> Panel | None:
    trees = []
    groups = _define_groups(d.steps)
    for k, (defines, by) in enumerate(groups, 1):
        tree = _dataflow(defines, d, hl)
        if tree is None:
            continue
        if len(groups) > 1:
            title = f"pass {k}" + (f": ∂/∂{by}" if by else "")
            trees.append(Text(title, style=STYLES["section"]))
        trees.append(tree)
    if not trees:
        return None
    return Panel(Group(*trees), title=Text("dataflow", style=STYLES["title"]),
                 title_align="left", border_style=STYLES["border"], box=box.ROUNDED,
                 expand=False)


def _step_cell(s: Step, hl: _Highlighter, names: dict, text) -> Text:
    if s.kind == "note":
        return Text(step_text(s, names, text), style=STYLES["note"])
    t = hl(step_text(s, names, text))
    if s.kind in ("define", "name") and s.rhs is not None:
        t.append(f"  ({describe(s.rhs.shape)})", style=STYLES["shape"])
    return t


class _Steps:
    """The step table, laid out for the width it is given. The maths keeps the room it
    needs (up to 60% of the width) and the rule names wrap first; below NARROW cells
    the rule goes under its expression instead of in a column of its own."""

    NARROW = 60

    def __init__(self, d: Derivation, hl: _Highlighter):
        self.rows = []
        # shared subexpressions by their t-names, as plain prints them (the result panel
        # lists them): written out, a deep chain's substitute step grows quadratically
        names = {e: n for n, e in d.where}
        text = printer(names)
        current = None
        for i, s in enumerate(d.steps, 1):
            section = plain_section(s, current)
            if section != current:
                self.rows.append((section, None, None))
                current = section
            self.rows.append((str(i), _step_cell(s, hl, names, text),
                              Text(rule_label(s), style=STYLES["rule"])))

    def __rich_console__(self, console, options):
        width = options.max_width
        narrow = width < self.NARROW
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      header_style=STYLES["title"])
        step_w = max((len(step) for step, cell, _ in self.rows if cell is not None),
                     default=1)
        table.add_column("step", justify="right", style=STYLES["step"], no_wrap=True,
                         width=max(step_w, 4))
        room = width - max(step_w, 4) - (2 if narrow else 6)   # padding and dividers
        if narrow:
            table.add_column("expression / rule", overflow="fold", width=room)
        else:
            widest = max((c.cell_len for _, c, _ in self.rows if c is not None), default=1)
            rule_w = max((r.cell_len for _, c, r in self.rows if c is not None), default=1)
            expr_w = min(widest, max(room - rule_w, int(room * 0.6)))
            table.add_column("expression", overflow="fold", width=expr_w)
            table.add_column("rule", overflow="fold", width=max(min(room - expr_w, rule_w), 1))
        first = True
        for step, cell, rule in self.rows:
            if cell is None:                     # a section heading
                if not first:
                    table.add_section()
                heading = Text(step, style=STYLES["section"])
                table.add_row("", heading) if narrow else table.add_row("", heading, "")
            elif narrow:
                table.add_row(step, Text.assemble(cell, "\n  ", rule) if rule else cell)
            else:
                table.add_row(step, cell, rule)
            first = False
        yield table


def _result(d: Derivation, hl: _Highlighter) -> Panel:
    lines = [hl(result_line(d), style=STYLES["result"]),
             Text(shape_text(d), style=STYLES["shape"])]
    for name, text in where_texts(d.where):    # as plain writes them (one shared printer)
        lines.append(hl(f"where {name} = {text}"))
    return Panel(Group(*lines), title=Text("result", style=STYLES["title"]),
                 title_align="left", border_style=STYLES["result_border"],
                 box=box.ROUNDED, expand=False)


def view(d: Derivation) -> Group:
    """The whole derivation as one rich renderable."""
    if d.result is None:
        return Group(_header(d))
    intermediates = [s.lhs for s in d.steps if s.kind in ("define", "name")]
    hl = _Highlighter(d.wrt, intermediates)
    parts = [_header(d)]
    flow = _dataflow_panel(d, hl)
    if flow is not None:
        parts.append(flow)
    if d.steps:
        parts += [Text(""), _Steps(d, hl), Text("")]
    parts.append(_result(d, hl))
    return Group(*parts)


def render(d: Derivation, console: Console | None = None) -> None:
    """Print the derivation to `console` (default: a Console on stdout)."""
    (console or Console()).print(view(d))
