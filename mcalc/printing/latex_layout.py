r"""Fitting a derivation's align* rows to the page (LaTeX article: 345pt of text width).

The width of a formula is estimated from its markup (glyph widths of Computer Modern,
rounded up by SAFETY, sub- and superscripts at 70%, a fraction as wide as its wider
part), so the layout needs no TeX run and works for fragments as well as for
--standalone documents, with amsmath alone.

The choices, in order:
  * A row too wide breaks before an operator `+ - = : \circ \oslash \otimes \cdot` into
    continuation rows `&\qquad {} + ...` of the same align*. Each line is filled to at
    least 40% and broken at the shallowest parenthesis depth; a break inside a short
    group such as (1 - u^2), or between two closing delimiters, is a last resort; never
    inside a matrix. A \left( ... \right) pair that a break falls inside becomes
    \bigl( ... \bigr) (\Bigl with a fraction inside), since \left and \right cannot
    span rows.
  * A rule annotation or shape note that does not fit beside its formula goes on its
    own row below it; a note longer than the line is set in a ragged-right \parbox.
  * A note followed by a formula (the definition method's component matrix) puts the
    formula on its own row; a matrix too wide for it is set as a smallmatrix, its
    columns in consecutive blocks (the first opens the bracket, the last closes it).
  * The result is shown once: a last step whose equation is the result (or that leaves
    a too-large result out) is not repeated above it (`once`).
  * The request line of a standalone document may break after ( @ , (latex.request_tt).
All walks over the markup are iterative (formulas may be nested thousands deep).
"""
from __future__ import annotations

import re

TEXT_WIDTH = 345.0                # pt, LaTeX's article class at 10pt
MARGIN = 12.0                     # estimates are rough: keep this much in hand
INDENT = 20.0                     # \qquad before a continuation row
SAFETY = 1.1                      # estimates are rounded up by this factor

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_&]|\s+|[^\\{}^_&\s]")
_SPACES = {r"\,": 1.7, r"\:": 2.2, r"\;": 2.8, r"\!": -1.7, r"\ ": 3.4, r"\quad": 10.0,
           r"\qquad": 20.0, "~": 3.4}
_BIN = {"+", "-", r"\circ", r"\oslash", r"\otimes", r"\cdot", r"\times", r"\pm"}
_REL = {"=", ":", "<", ">", r"\leq", r"\geq", r"\in", r"\to", r"\approx", r"\neq"}
_NO_WIDTH = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\mathbf",
             r"\mathit", r"\mathrm", r"\boldsymbol", r"\mathbb", r"\operatorname", r"\text",
             r"\displaystyle", r"\raggedright", r"\limits", r"\nolimits"}
_SCALED = {"^": 0.7, "_": 0.7}


def tokens(s: str) -> list[str]:
    return _TOKEN.findall(s)


def width(s: str) -> float:
    """Estimated width in pt of math-mode markup (rounded up on purpose)."""
    return _width(tokens(s))


class _Frame:
    __slots__ = ("kind", "scale", "acc", "args", "text", "cols", "col")

    def __init__(self, kind, scale, text=False):
        self.kind, self.scale, self.acc, self.args, self.text = kind, scale, 0.0, [], text
        self.cols, self.col = [], 0


def _deliver(stack, w):
    """Add a width to the innermost frame; a fraction takes the wider of its two parts."""
    while True:
        top = stack[-1]
        if top.kind != "frac":
            top.acc += w
            return
        top.args.append(w)
        if len(top.args) < 2:
            return
        stack.pop()
        w = max(top.args) + 2.0


def _cell_done(env):
    while len(env.cols) <= env.col:
        env.cols.append(0.0)
    env.cols[env.col] = max(env.cols[env.col], env.acc)
    env.acc = 0.0


def _width(toks) -> float:
    stack = [_Frame("group", 1.0)]
    pending: list[float] = []                  # the scale of the next argument (^ _)
    text_next = False                          # the next group is text (\text{...})
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        top = stack[-1]
        if t in _SCALED:
            pending.append(top.scale * _SCALED[t])
            i += 1
            continue
        scale = pending.pop() if pending and not t.isspace() else top.scale
        if t == "{":
            stack.append(_Frame("group", scale, text_next or top.text))
            text_next = False
        elif t == "}":
            if len(stack) > 1:
                done = stack.pop()
                _deliver(stack, done.acc)
        elif t == r"\frac":
            stack.append(_Frame("frac", scale * (0.9 if len(stack) > 2 else 1.0)))
        elif t in (r"\text", r"\mathrm", r"\operatorname"):
            text_next = t == r"\text"
        elif t in (r"\begin", r"\end"):
            j = toks.index("}", i) if "}" in toks[i:] else n - 1
            env = "".join(toks[i + 2:j])
            if t == r"\begin":
                stack.append(_Frame("env", scale * (0.7 if env == "smallmatrix" else 1.0)))
            elif stack[-1].kind == "env":
                e = stack.pop()
                _cell_done(e)
                _deliver(stack, sum(e.cols) + 10.0 * e.scale * max(len(e.cols) - 1, 0) + 8.0)
            i = j + 1
            continue
        elif t == "&" and top.kind == "env":
            _cell_done(top)
            top.col += 1
        elif t == r"\\" and top.kind == "env":
            _cell_done(top)
            top.col = 0
        elif t.isspace():
            if top.text:
                top.acc += 3.4 * scale
        else:
            _deliver(stack, _glyph(t, top.text) * scale)
        i += 1
    while len(stack) > 1:
        done = stack.pop()
        _deliver(stack, done.acc if done.kind != "frac" else max(done.args, default=0.0))
    return stack[0].acc * SAFETY


def _glyph(t: str, text: bool) -> float:
    if t in _NO_WIDTH:
        return 0.0
    if text and len(t) == 1:
        return 6.5 if t.isupper() else 4.6
    if t in _SPACES:
        return _SPACES[t]
    if t in _BIN:
        return 12.2
    if t in _REL:
        return 13.4
    if t.startswith("\\") and len(t) > 2:
        if t in (r"\sin", r"\cos", r"\tan", r"\exp", r"\log", r"\det", r"\max", r"\min",
                 r"\tanh"):
            return 5.0 * (len(t) - 1) + 1.7
        return 7.0                                   # a Greek letter, \partial, \lVert ...
    if t.startswith("\\"):
        return 5.0                                   # \{ \_ \& ...
    if t.isdigit():
        return 5.0
    if t in "()[]|,;.'":
        return 3.9
    if t.isupper():
        return 7.6
    return 5.8


# ---- breaking ------------------------------------------------------------------------

_OPENERS = (r"\left", r"\bigl", r"\Bigl")
_CLOSERS = (r"\right", r"\bigr", r"\Bigr")


SMALL_GROUP = 40          # tokens: a break inside a group this short, (1 - u^2), is a last resort


def _candidates(toks):
    """(index, rank) of the break points, before an operator outside braces. The rank is
    the number of \\left groups open there, plus a penalty inside a short group."""
    found, braces, opened, prev, envs = [], 0, [], None, 0
    for i, t in enumerate(toks):
        if t == "{":
            braces += 1
        elif t == "}":
            braces -= 1
        elif t in (r"\begin", r"\end"):
            envs += 1 if t == r"\begin" else -1
        elif envs:
            pass                                     # never inside a matrix
        elif braces == 0 and t in _OPENERS:
            opened.append([i, None])
        elif braces == 0 and t in _CLOSERS:
            if prev in _CLOSERS or (prev is not None and prev in ")]|" and
                                    toks[i - 2] in _CLOSERS):
                found.append((i, -1, None))          # inside a run of closing delimiters
            if opened:
                opened.pop()[1] = i
        elif braces == 0 and (t in _BIN or t in _REL) and i > 0 and prev is not None and \
                prev not in _BIN and prev not in _REL and prev not in _OPENERS:
            found.append((i, len(opened), opened[-1] if opened else None))
        if not t.isspace():
            prev = t
    out = []
    for i, depth, group in found:
        if depth < 0:
            out.append((i, 2000))                    # only when nothing else fits
            continue
        short = group is not None and group[1] is not None and \
            group[1] - group[0] < SMALL_GROUP
        out.append((i, depth + (1000 if short else 0)))
    return out


def break_formula(s: str, first: float, rest: float) -> list[str]:
    """s split into lines, the first at most `first` pt wide, the others `rest` pt."""
    if width(s) <= first:
        return [s]
    toks = tokens(s)
    cands = _candidates(toks)
    if not cands:
        return [s]
    # Widths of the pieces between break points (each brace-balanced), summed as needed.
    bounds = [0] + [i for i, _ in cands] + [len(toks)]
    piece = [_width(toks[a:b]) for a, b in zip(bounds, bounds[1:])]
    depth = [0] + [d for _, d in cands]                  # depth at each piece's start
    cuts, start, budget = [], 0, first                   # start: a piece index
    while True:
        acc, fitting, over = 0.0, [], False
        for k in range(start, len(piece)):
            acc += piece[k]
            if acc > budget:
                over = True                              # nothing further fits either
                break
            if k + 1 < len(piece):
                fitting.append((k + 1, acc))
        if not over:
            break
        if fitting:                                      # well filled, then shallowest
            pool = [k for k, w in fitting if w >= budget * 0.4] or [k for k, _ in fitting]
            shallow = min(depth[k] for k in pool)
            cut = [k for k in pool if depth[k] == shallow][-1]
        elif start + 1 < len(piece):
            cut = start + 1                              # one piece alone is too wide
        else:
            break
        cuts.append(cut)
        start, budget = cut, rest
    if not cuts:
        return [s]
    cut_tokens = [bounds[k] for k in cuts]
    _unpair_across(toks, cut_tokens)
    edges = [0] + cut_tokens + [len(toks)]
    return ["".join(toks[a:b]).strip() for a, b in zip(edges, edges[1:])]


def _unpair_across(toks, cuts):
    """\\left ... \\right pairs that a cut falls inside become \\bigl ... \\bigr."""
    stack, braces = [], 0
    for i, t in enumerate(toks):
        if t == "{":
            braces += 1
        elif t == "}":
            braces -= 1
        elif braces == 0 and t == r"\left":
            stack.append(i)
        elif braces == 0 and t == r"\right" and stack:
            j = stack.pop()
            if any(j < c < i for c in cuts):
                big = "B" if r"\frac" in toks[j:i] or r"\sum" in toks[j:i] else "b"
                toks[j], toks[i] = f"\\{big}igl", f"\\{big}igr"


# ---- rows ----------------------------------------------------------------------------

class Fitter:
    """Rows of one align* whose left-hand sides are `lhss` (to know the column width)."""

    def __init__(self, lhss):
        self.lhs = max((width(x) for x in lhss if x), default=0.0)
        self.budget = TEXT_WIDTH - MARGIN - self.lhs

    def row(self, left: str, rel: str, rhs: str, note: str) -> str:
        """`left &rel rhs note`, broken into as many rows as it needs."""
        lines = break_formula(rhs, self.budget - width(rel), self.budget - INDENT - 12.2)
        rows = [f"{left}&{rel} {lines[0]}"] + [rf"&\qquad {{}}{ln}" for ln in lines[1:]]
        if note:
            if width(lines[-1]) + width(note) + (width(rel) if len(lines) == 1 else INDENT) \
                    <= self.budget:
                rows[-1] += " " + note
            else:
                rows += ["& " + n for n in self.notes_alone(note)]
        return " \\\\\n".join(rows)

    def notes_alone(self, note: str) -> list[str]:
        """Annotations (\\qquad-separated: a rule, the shape) on rows of their own,
        together as far as they fit."""
        if width(note) <= self.budget:
            return [self.note_alone(note)]
        parts = [p for p in re.split(r"\s*\\qquad\s*", note) if p.strip()]
        rows: list[str] = []
        for p in parts:
            joined = rf"{rows[-1]} \qquad {p}" if rows else ""
            if rows and width(joined) <= self.budget:
                rows[-1] = joined
            else:
                rows.append(rf"\qquad {p}")
        return [self.note_alone(r) for r in rows]

    def note_alone(self, note: str) -> str:
        """A note (\\qquad\\text{...}) on its own row, wrapped if longer than the line."""
        body = note.strip()
        m = re.fullmatch(r"(?:\\qquad\s*)?\\text\{(.*)\}", body, flags=re.S)
        if width(body) <= self.budget or m is None or "\\text{" in m.group(1):
            return body
        indent = r"\qquad " if body.startswith(r"\qquad") else ""    # as the note was
        room = self.budget - INDENT * (2 if indent else 1)
        return rf"{indent}\parbox[t]{{{room:.0f}pt}}{{\raggedright {m.group(1)}}}"

    def words(self, rhs: str) -> str:
        """A note row `& \\text{...}` (maybe followed by a formula), fitted."""
        if width(rhs) <= self.budget:
            return f"& {rhs}"
        m = re.match(r"(\\text\{(?:[^{}]|\{[^{}]*\})*\})(?:\\ )?(.*)", rhs, flags=re.S)
        if m is None:
            return self.row("", "", rhs, "")
        words, formula = m.group(1), m.group(2).strip()
        rows = ["& " + self.note_alone(words)]
        if formula:
            cells = _matrix_cells(formula) if width(formula) > self.budget - INDENT else None
            if cells is None:
                rows.append(self.row("", "", rf"\qquad {formula}", ""))
            else:
                rows += [rf"& \qquad {part}" for part in self.matrix_parts(cells)]
        return " \\\\\n".join(rows)

    def matrix_parts(self, cells) -> list[str]:
        """A matrix too wide for the line, set small, its columns in consecutive blocks
        (the first opens the bracket, the last closes it), each block as wide as fits."""
        ncols = max(len(r) for r in cells)
        widths = [max(width(r[c]) if c < len(r) else 0.0 for r in cells) * 0.7 + 7.0
                  for c in range(ncols)]
        blocks, current, acc = [], [], 0.0
        for c, w in enumerate(widths):
            if current and acc + w > self.budget - INDENT - 10.0:
                blocks.append(current)
                current, acc = [], 0.0
            current.append(c)
            acc += w
        blocks.append(current)
        out = []
        for k, cols in enumerate(blocks):
            body = r" \\ ".join(" & ".join(r[c] if c < len(r) else "" for c in cols)
                                for r in cells)
            left = r"\left[" if k == 0 else r"\left."
            right = r"\right]" if k == len(blocks) - 1 else r"\right."
            out.append(rf"{left}\begin{{smallmatrix}} {body} \end{{smallmatrix}}{right}")
        return out


def _matrix_cells(formula: str):
    """The cells (rows of LaTeX strings) of a formula that is one bmatrix, else None."""
    m = re.fullmatch(r"\\begin\{bmatrix\}(.*)\\end\{bmatrix\}", formula.strip(), flags=re.S)
    if m is None:
        return None
    rows, cell, current, braces, envs = [], [], [], 0, 0
    for t in tokens(m.group(1)):
        if t == "{":
            braces += 1
        elif t == "}":
            braces -= 1
        elif t in (r"\begin", r"\end"):
            envs += 1 if t == r"\begin" else -1
        if braces == 0 and envs == 0 and t in ("&", r"\\"):
            current.append("".join(cell).strip())
            cell = []
            if t == r"\\":
                rows.append(current)
                current = []
            continue
        cell.append(t)
    current.append("".join(cell).strip())
    rows.append(current)
    return rows


def once(lines, result):
    """Drop the last step's row when it states the result (printed just below, with its
    shape) or leaves it out (too large to show); its rule annotation moves to the result
    row."""
    if result is None:
        return lines, result
    for k in range(len(lines) - 1, -1, -1):
        lhs, rhs, note = lines[k]
        if lhs is None:
            continue
        if rhs in (result[1], "") and lhs in (result[0], ""):
            kept = lines[:k] + lines[k + 1:]
            if note:
                result = (result[0], result[1], f"{note} {result[2]}")
            return kept, result
        break
    return lines, result
