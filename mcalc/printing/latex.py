r"""Expr and Derivation -> LaTeX, in the notation of Parr & Howard.

Notation (every symbol means one thing, so a reader can tell the products apart):

  x, \lambda          a scalar variable (italic; Unicode Greek becomes its command)
  \mathbf{x}          a vector (column or row) variable; \boldsymbol{\theta} for Greek
  X                   a matrix variable (plain italic, whatever the case of its name)
  W_{1}, \mathbf{b}_{2}   trailing digits and _parts become subscripts; other
                      multi-letter names stay whole: \mathit{lam}
  A \mathbf{x}        matrix product (@): juxtaposition
  2 \mathbf{x}        a scalar times anything: juxtaposition (\, next to a long name)
  \mathbf{x} \circ \mathbf{y}       element-wise (Hadamard) product of two non-scalars
  \mathbf{x} \oslash \mathbf{y}     element-wise division by a non-scalar
  \frac{a}{b}         division by a scalar
  A \otimes B         Kronecker product (kron) -- never the Hadamard product
  \mathbf{a} \cdot \mathbf{b}       dot(a, b)
  X^{T}, X^{-1}       transpose, inverse; X^{\circ 2} an element-wise power of a matrix
                      (x^{2}, \mathbf{x}^{2}: of a scalar, of a vector)
  \mathbf{1}, I, \mathbf{0} / 0     ones(n), the identity, zeros (vector / matrix)
  \mathbb{I}\left[x > 0\right]      the 0/1 indicator of a comparison. Not \mathbb{1}:
                      amssymb has no double-struck digits (its \mathbb{1} prints the
                      'not forces' sign), and \mathbb{I} renders in LaTeX, MathJax, KaTeX.
  \sigma(x)           sigmoid; other functions by their usual commands or \operatorname
  \left\lVert \mathbf{x} \right\rVert, \left\lVert X \right\rVert_{F}   2-norm, Frobenius norm

Every string this module returns is plain ASCII, and needs only amsmath and amssymb.

`expr_to_latex` prints one expression; `derivation_to_latex` a whole derivation as one
align* environment (one line per step, dispatch by a table keyed on the step kind);
`step_to_latex` one step as a single formula (for the JSON output).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from mcalc.derivation import Total
from mcalc.printing.plain import rule_label
from mcalc.printing.text import _SHORT, _flat, _join as _join_ropes, _negated, _rope, \
    coefficient, fraction_text, number_text, print_nodes, split_product

COMPARE, SUM, PRODUCT, UNARY, FRAC, POWER, POSTFIX, ATOM = range(8)
INDICATOR = r"\mathbb{I}"
_CMP = {"gt": ">", "ge": r"\geq", "lt": "<", "le": r"\leq"}

# ---- names -------------------------------------------------------------------------

_GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\varepsilon",
    "ϵ": r"\epsilon", "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta",
    "ι": r"\iota", "κ": r"\kappa", "ϰ": r"\varkappa", "λ": r"\lambda", "μ": r"\mu",
    "ν": r"\nu", "ξ": r"\xi", "ο": "o", "π": r"\pi", "ϖ": r"\varpi", "ρ": r"\rho",
    "ϱ": r"\varrho", "σ": r"\sigma", "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon",
    "φ": r"\varphi", "ϕ": r"\phi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    "Α": "A", "Β": "B", "Γ": r"\Gamma", "Δ": r"\Delta", "Ε": "E", "Ζ": "Z", "Η": "H",
    "Θ": r"\Theta", "Ι": "I", "Κ": "K", "Λ": r"\Lambda", "Μ": "M", "Ν": "N", "Ξ": r"\Xi",
    "Ο": "O", "Π": r"\Pi", "Ρ": "P", "Σ": r"\Sigma", "Τ": "T", "Υ": r"\Upsilon",
    "Φ": r"\Phi", "Χ": "X", "Ψ": r"\Psi", "Ω": r"\Omega",
}
_LETTERLIKE = {"ℓ": r"\ell", "ħ": r"\hbar", "ı": r"\imath", "ȷ": r"\jmath", "ð": r"\eth",
               "ℵ": r"\aleph", "∂": r"\partial", "∇": r"\nabla"}
_MATH_ACCENTS = {"\u0301": r"\acute", "\u0300": r"\grave", "\u0302": r"\hat",
                 "\u0303": r"\tilde", "\u0308": r"\ddot", "\u0304": r"\bar", "\u0307": r"\dot",
                 "\u030c": r"\check", "\u0306": r"\breve", "\u20d7": r"\vec"}


def _char(ch: str) -> str:
    """One character of a name, in math mode (always ASCII out)."""
    if ch.isascii():
        return r"\_" if ch == "_" else ch
    if ch in _GREEK:
        return _GREEK[ch]
    if ch in _LETTERLIKE:
        return _LETTERLIKE[ch]
    d = unicodedata.digit(ch, None)
    if d is not None:
        return str(d)
    base, *marks = unicodedata.normalize("NFD", ch)
    if marks and (base.isascii() or base in _GREEK) and all(m in _MATH_ACCENTS for m in marks):
        out = _char(base)
        for m in marks:
            out = f"{_MATH_ACCENTS[m]}{{{out}}}"
        return out
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and all(c.isascii() or c in _GREEK for c in folded):
        return "".join(_char(c) for c in folded)
    return rf"\text{{U+{ord(ch):04X}}}"


def _word(s: str, upright: bool = False) -> str:
    """A run of characters: one is printed as itself, several as one word."""
    body = "".join(_char(c) for c in s)
    if len(s) == 1:
        return body
    return (r"\mathrm{%s}" if upright else r"\mathit{%s}") % body


def _digits(s: str) -> str:
    """Unicode digits (₁, ², ...) as ASCII ones; other characters unchanged."""
    return "".join(str(unicodedata.digit(c)) if not c.isascii() and
                   unicodedata.digit(c, None) is not None else c for c in s)


_LETTERS_DIGITS = re.compile(r"([A-Za-z]+)([0-9]*)")


@lru_cache(maxsize=4096)        # the same few names print on every line of every request
def name_to_latex(name: str, bold: bool = False) -> str:
    r"""'W1' -> W_{1}, 'b_2' (bold) -> \mathbf{b}_{2}, 'θ' (bold) -> \boldsymbol{\theta},
    'lam' -> \mathit{lam}. Bold is for vectors (Parr & Howard)."""
    m = _LETTERS_DIGITS.fullmatch(name)
    if m is not None:
        # (most names: what the rules below make of them, without their cost, which a
        # request of thousands of names, more than the cache holds, pays for every name)
        head, digits = m.groups()
        base = rf"\mathbf{{{head}}}" if bold else head if len(head) == 1 else \
            rf"\mathit{{{head}}}"
        return base + "_{" + digits + "}" if digits else base
    return _name_by_rules(name, bold)


def _name_by_rules(name: str, bold: bool) -> str:
    """name_to_latex of any name."""
    parts = _digits(name).split("_")
    head, subs = parts[0], parts[1:]
    if not head or any(not p for p in subs):                  # _x, a__b, x_: keep literal
        head, subs = name, []
    m = re.fullmatch(r"(.*?\D)(\d+)", head)
    if m:
        head, subs = m.group(1), [m.group(2)] + subs
    if any(c.isdigit() for c in head):                       # x1y: one word
        head, subs = name, []
    base = _word(head)
    if bold:
        plain = all(c.isascii() and c.isalpha() for c in head)
        base = rf"\mathbf{{{head}}}" if plain else rf"\boldsymbol{{{base}}}"
    if subs:
        base += "_{" + ",".join(p if p.isdigit() else _word(p, upright=True)
                                for p in subs) + "}"
    return base


def is_vector_shape(shape) -> bool:
    return ("1" in shape) and shape != ("1", "1")


def dim_to_latex(d: str) -> str:
    """'n' -> n, 'n1' -> n_{1}, 'm*n' -> m n (a vec form's product of dimensions)."""
    out = ""
    for part in d.split("*"):
        t = part if part.isdigit() else name_to_latex(part)
        if out:
            out += r" \cdot " if t[0].isdigit() else " "
        out += t
    return out


def shape_to_latex(shape) -> str:
    return rf"{dim_to_latex(shape[0])} \times {dim_to_latex(shape[1])}"


# ---- text mode -----------------------------------------------------------------------

_TEXT_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%",
                 "&": r"\&", "#": r"\#", "$": r"$\$$", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                 "|": r"\textbar{}"}
# (text-mode \$, \S and \P would take TS1 fonts, which texlive-base has only as bitmaps)
_TEXT_UNICODE = {"§": r"$\S$", "¶": r"$\P$", "–": "--", "—": "---", "…": r"\ldots{}",
                 "“": "``", "”": "''", "‘": "`", "’": "'", "′": "'", "\u00a0": "~",
                 "ᵀ": r"$^{T}$", "×": r"$\times$", "·": r"$\cdot$", "∘": r"$\circ$",
                 "⊗": r"$\otimes$", "⊙": r"$\odot$", "⊘": r"$\oslash$", "→": r"$\to$",
                 "←": r"$\leftarrow$", "≤": r"$\leq$", "≥": r"$\geq$", "≠": r"$\neq$",
                 "≈": r"$\approx$", "∈": r"$\in$", "ℝ": r"$\mathbb{R}$", "∑": r"$\sum$",
                 "∏": r"$\prod$", "√": r"$\surd$", "∞": r"$\infty$", "±": r"$\pm$",
                 "−": "-", "⋅": r"$\cdot$", "⊤": r"$^{T}$", "‖": r"$\Vert$"}
_TEXT_ACCENTS = {"\u0301": "\\'", "\u0300": "\\`", "\u0302": "\\^", "\u0303": "\\~",
                 "\u0308": '\\"', "\u0304": "\\=", "\u0307": "\\.", "\u030c": "\\v",
                 "\u0306": "\\u", "\u0327": "\\c", "\u030a": "\\r", "\u030b": "\\H"}


@lru_cache(maxsize=4096)        # rule labels and notes repeat across steps and requests
def escape_text(s: str, tt: bool = False) -> str:
    """Text for text mode: LaTeX specials escaped, every character ASCII out.
    In \\texttt (tt) the typewriter font has < > | itself."""
    out = []
    prev = ""
    for ch in s:
        if ch in "\t\n\r\f\v":
            ch = " "
        if tt and ch in "<>|":
            out.append(ch)
        elif ch in _TEXT_SPECIAL:
            out.append(_TEXT_SPECIAL[ch])
        elif ch == "-" and prev == "-":
            out.append("{}-")                                # no -- / --- ligatures
        elif ch.isascii():
            out.append(ch if ch.isprintable() else " ")
        elif ch in _TEXT_UNICODE:
            out.append(_TEXT_UNICODE[ch])
        else:
            base, *marks = unicodedata.normalize("NFD", ch)
            if marks and base.isascii() and base.isalpha() and all(
                    m in _TEXT_ACCENTS for m in marks):
                t = base
                for mk in marks:
                    t = f"{_TEXT_ACCENTS[mk]}{{{t}}}"
                out.append(t)
            elif unicodedata.category(ch).startswith("Z"):
                out.append(" ")
            else:
                math = _char(ch)
                out.append(f"${math}$" if not math.startswith(r"\text{") else
                           f"[U+{ord(ch):04X}]")
        prev = ch
    return "".join(out)


def request_tt(request: str) -> str:
    """The request in \\texttt, breakable after ( @ , and before + - (a long request has
    no spaces to break at)."""
    pieces = re.split(r"(?<=[(@,])|(?=[+\-])", request)
    return r"\texttt{" + r"\allowbreak{}".join(escape_text(p, tt=True) for p in pieces
                                               if p) + "}"


def text(s: str) -> str:
    r"""\text{...} with s escaped, for use inside math."""
    return r"\text{" + escape_text(s) + "}"


# ---- expressions ---------------------------------------------------------------------

def expr_to_latex(e, names: dict | None = None) -> str:
    """`names` maps shared subexpressions to the names they are printed as (t1 -> t_{1})."""
    return Printer(names or {}).tex(e)[0]


_WORDY = re.compile(r"\\mathit\{|\\math(bf|rm)\{[^{}]{2,}\}")


def _wordy(s: str) -> bool:
    """Does this factor show a multi-letter name (so juxtaposition needs a thin space)?"""
    return _short_wordy(s) if len(s) <= _SHORT else _WORDY.search(s) is not None


@lru_cache(maxsize=1024)        # names and short factors recur in every derivation
def _short_wordy(s: str) -> bool:
    return _WORDY.search(s) is not None


class Printer:
    """Expr -> LaTeX. A node's LaTeX is kept as a rope (mcalc.printing.text's: a string or a
    tuple of ropes sharing its operands'), memoised per printer and built children first
    without recursion, so a derivation's steps print in time linear in their nodes."""

    def __init__(self, names, symbols: "Symbols | None" = None):
        # the derivation's symbol table: a differential d(X) of a known name X prints as
        # d X (see `var`); without one, as the name it is
        self.symbols = symbols
        self.name = symbols.name if symbols is not None else name_to_latex
        self.memo = {e: (self.name(n, is_vector_shape(e.shape)), ATOM)
                     for e, n in names.items()}
        # as mcalc.printing.text's: a signed product of several factors -> its LaTeX
        # without the minus sign, the LaTeX of its negation (which is not built)
        self.unsigned: dict | None = \
            None if names and any(e.op == "mul" for e in names) else {}
        self._wordy_memo: dict = {}                 # id(rope) -> (rope, wordy?)
        self._wordy_text: dict = {}                 # str -> wordy?

    def where(self, where) -> list[tuple[str, str]]:
        """(name, definition) in LaTeX of each `where` line, self holding all the names
        (as mcalc.printing.text.where_texts: each root is printed by its own structure,
        its named parts, all defined before it, by their names)."""
        return [(self.name(n, is_vector_shape(e.shape)), _flat(self.own(e)[0]))
                for n, e in where]

    def own(self, e) -> tuple:
        """(rope, precedence) of e by its own structure, even when e has a name."""
        for a in e.args:
            if a not in self.memo:
                print_nodes(self, self.memo, a, _TABLE)
        return _TABLE[e.op](self, e)

    def tex(self, e) -> tuple[str, int]:
        """(LaTeX, precedence) of e."""
        memo = self.memo
        got = memo.get(e)
        if got is None:
            print_nodes(self, memo, e, _TABLE)
            got = memo[e]
        if got[0].__class__ is not str:
            got = memo[e] = _flat(got[0]), got[1]   # steps repeat it, and parents from now
        return got                                  # on share the flat text, not its rope

    def wrap(self, e, min_prec: int) -> str:
        return _flat(self._wrap(e, min_prec))

    def _tex(self, e) -> tuple:
        got = self.memo.get(e)
        if got is None:
            got = self._fill(e)
        return got

    def _fill(self, e) -> tuple:
        print_nodes(self, self.memo, e, _TABLE)
        return self.memo[e]

    def _wrap(self, e, min_prec: int):
        s, p = self._tex(e)
        return s if p >= min_prec else _parens(s)

    def group(self, s, p: int, min_prec: int):
        return s if p >= min_prec else _parens(s)

    def _is_wordy(self, rope) -> bool:
        """_wordy of the flattened rope: every name is one piece, so any piece's match.
        Each string and each rope is looked at once (left to right, without recursion)."""
        texts, memo = self._wordy_text, self._wordy_memo
        if rope.__class__ is str:
            w = texts.get(rope)
            if w is None:
                w = texts[rope] = _wordy(rope)
            return w
        got = memo.get(id(rope))
        if got is not None:
            return got[1]
        stack = []                                # the enclosing ropes, their iterators
        r, it, w = rope, iter(rope), False
        while True:
            for c in it:
                if c.__class__ is str:
                    cw = texts.get(c)
                    if cw is None:
                        cw = texts[c] = _wordy(c)
                    w = w or cw
                else:
                    got = memo.get(id(c))
                    if got is None:
                        stack.append((r, it, w))
                        r, it, w = c, iter(c), False
                        break
                    w = w or got[1]
            else:
                memo[id(r)] = (r, w)              # keeps r alive: its id stays its own
                if not stack:
                    return w
                inner = w
                r, it, w = stack.pop()
                w = w or inner

    # leaves
    def num(self, e):
        n, d = e.value._numerator, e.value._denominator
        if n >= 0:
            return _unsigned_number(n, d)
        return f"-{_unsigned_number(-n, d)[0]}", UNARY

    def var(self, e):
        bold = not e.is_scalar and "1" in e.shape                               # (a vector)
        if e.value == "differential" and self.symbols is not None:
            # d(X) (mcalc.methods.differential) of a name the steps know: d X. Whether a
            # name is known cannot change later (the table reads every step if it must).
            of = e.name[2:-1]
            if self.symbols.shape(of) is not None:
                return "d" + self.name(of, bold), ATOM
        return self.name(e.name, bold), ATOM

    def dim(self, e):
        return self.name(e.name, False), ATOM

    def const(self, e):
        return {"pi": r"\pi", "e": "e"}.get(e.name) or self.name(e.name, False), ATOM

    def ones(self, e):
        return r"\mathbf{1}", ATOM

    def eye(self, e):
        return "I", ATOM

    def commutation(self, e):
        return f"K_{{{dim_to_latex(e.value[0])},{dim_to_latex(e.value[1])}}}", ATOM

    def zeros(self, e):
        if e.shape == ("1", "1"):
            return "0", ATOM
        return (r"\mathbf{0}^{T}", POSTFIX) if e.shape[0] == "1" else (r"\mathbf{0}", ATOM)

    # operators
    # Each method finds its node's operands in self.memo (print_nodes prints them first);
    # nodes below those, or made here, may not be there: self._tex or self._wrap.

    def add(self, e):
        memo = self.memo
        first, *rest = e.args
        s, p = memo[first]
        out = [s] if p >= (SUM + 1 if first.op in _CMP else SUM) else [r"\left(", s, r"\right)"]
        for t in rest:
            op = t.op
            if op == "num" and t.value._numerator < 0:     # - 2, - \frac{1}{2}
                out += (" - ", _unsigned_number(-t.value._numerator, t.value._denominator)[0])
                continue
            if op == "mul" and t.args[0].op == "num" and t.args[0].value._numerator < 0:
                got = self.unsigned.get(t) if self.unsigned is not None else None
                out += (" - ", got if got is not None else self._wrap(_negated(t), PRODUCT))
                continue
            s, p = memo[t]
            out += (" + ", s) if p >= (PRODUCT if op != "add" else SUM + 1) else \
                (r" + \left(", s, r"\right)")
        return _rope(out), SUM

    def _sep(self, prev_s, s) -> str:
        """What juxtaposes s after prev_s: \\cdot before a digit or a minus sign, a thin
        space next to a multi-letter name, else a space."""
        if (s[:1] if s.__class__ is str else _head(s)) in "0123456789-":
            return r" \cdot "
        # Most factors are short texts without a \math...{ word: not wordy, at a glance
        # (a long text is looked at once, by _is_wordy: it may be the factor of many).
        for t in (prev_s, s):
            if t.__class__ is str and len(t) <= _SHORT:
                if "\\math" in t and _short_wordy(t):
                    return r" \, "
            elif self._is_wordy(t):
                return r" \, "
        return " "

    def _factors(self, fs, lead: str = "", arrays_follow: bool = False):
        """Factors of a product, scalars first, after the coefficient `lead`: juxtaposed,
        \\circ between two non-scalars. A product-like factor (A x, a . b) is bare only as
        the last factor after scalars. One flat rope (every text is non-empty)."""
        n_scalars = 0
        ordered = True                          # the scalars first already (most products)
        for i, f in enumerate(fs):
            if f.is_scalar:
                ordered = ordered and n_scalars == i
                n_scalars += 1
        if not ordered:
            fs = [f for f in fs if f.is_scalar] + [f for f in fs if not f.is_scalar]
        last = len(fs) - 1
        out = [lead] if lead else []
        prev_s = lead
        memo = self.memo
        for i, f in enumerate(fs):
            s, p = memo.get(f) or self._tex(f)
            if p == UNARY and not out:
                pass                                        # a leading minus sign
            elif p < FRAC and not (p >= PRODUCT and i == last and not arrays_follow and
                                   i <= n_scalars):         # the last, after scalars only
                s = _parens(s)
            # \circ between two non-scalars (scalars come first: f and the one before it
            # are both non-scalars when i > their count)
            if out:
                out.append(r" \circ " if i > n_scalars else self._sep(prev_s, s))
            out.append(s)
            prev_s = s
        return out[0] if len(out) == 1 else _rope(out) if out else ""

    def mul(self, e, factors: tuple | None = None):
        """e, or the product of `factors` (e is then the one factor, a power a^-k: no
        node is built for it)."""
        (n, d), num, den = split_product(e, factors)
        sign = ""
        if n < 0:
            sign, n = "-", -n
        if den:
            scalar_den = [f for f in den if f.is_scalar]
            array_den = [f for f in den if not f.is_scalar]
        else:
            scalar_den = array_den = den
        lead, d = coefficient(n, d)
        top = self._factors(num, _decimal_latex(lead)[0] if lead != "1" or not num else "",
                            bool(array_den))
        prec = PRODUCT
        if array_den:
            a = self._factors(array_den)
            if len(array_den) > 1 or self._tex(array_den[0])[1] < FRAC:
                a = self.group(a, PRODUCT, FRAC) if len(array_den) > 1 else \
                    self._wrap(array_den[0], FRAC)
            top = _rope([top, r" \oslash ", a])
        if scalar_den or d != 1:
            lead = str(d) if d != 1 else ""
            bottom = self._factors(scalar_den, lead) if lead or len(scalar_den) > 1 else \
                self._tex(scalar_den[0])[0]
            top, prec = _rope([r"\frac{", top, "}{", bottom, "}"]), FRAC
        if not sign:
            return top, prec
        first = e.args[0]
        if self.unsigned is not None and (len(e.args) > 2 or first.op != "num" or
                                          first.value._numerator != -1 or
                                          first.value._denominator != 1):
            # (the negation of -1*f is f itself, whose text may not be top: -(-2 x))
            self.unsigned[e] = top
        return _rope([sign, top]), UNARY

    def matmul(self, e):
        memo = self.memo
        first, *rest = e.args
        prev, p = memo[first]
        if p < FRAC and not _bare_left(first):
            prev = _parens(prev)
        out = [prev]
        for a in rest:
            s, p = memo[a]
            if p < FRAC:
                s = _parens(s)
            out += (self._sep(prev, s), s)
            prev = s
        return _rope(out), PRODUCT

    def pow(self, e):
        base, p = e.args
        if p.op == "num" and p.value._numerator < 0:
            return self.mul(e, (e,))                  # 1 over a^k
        if p.op == "num":
            ptext = number_text(p.value)
        else:
            ptext = self.memo[p][0]
        return _rope([self._atom(base), r"^{\circ " if base.is_matrix else "^{", ptext, "}"]), \
            POWER

    def _atom(self, e):
        """e's text, in parentheses unless an atom (e is an operand)."""
        s, p = self.memo[e]
        return s if p >= ATOM else _parens(s)

    def T(self, e):
        return _rope([self._atom(e.args[0]), "^{T}"]), POSTFIX

    def inv(self, e):
        return _rope([self._atom(e.args[0]), "^{-1}"]), POSTFIX

    def call(self, e):
        name = _FUNCTIONS.get(e.op) or rf"\operatorname{{{escape_text(e.op)}}}"
        args = e.args
        if len(args) == 1:
            return _rope([name, r"\left(", self.memo[args[0]][0], r"\right)"]), ATOM
        return _rope([name, r"\left(", _join_ropes(", ", (self._tex(a)[0] for a in args)),
                      r"\right)"]), ATOM

    def exp(self, e):
        if e.args[0].op == "num" and e.args[0].value == 1:
            return "e", ATOM
        return self.call(e)

    def sqrt(self, e):
        return _rope([r"\sqrt{", self.memo[e.args[0]][0], "}"]), ATOM

    def abs(self, e):
        return _rope([r"\left|", self.memo[e.args[0]][0], r"\right|"]), ATOM

    def norm(self, e):
        a = e.args[0]
        return _rope([r"\left\lVert ", self.memo[a][0], r" \right\rVert",
                      "_{F}" if a.is_matrix else ""]), ATOM

    def dot(self, e):
        a, b = e.args
        return _rope([self._wrap(a, FRAC), r" \cdot ", self._wrap(b, FRAC)]), PRODUCT

    def kron(self, e):
        return _join_ropes(r" \otimes ", (self._wrap(a, FRAC) for a in e.args)), PRODUCT

    def compare(self, e):
        a, b = e.args
        return _rope([INDICATOR, r"\left[", self._wrap(a, SUM), f" {_CMP[e.op]} ",
                      self._wrap(b, SUM), r"\right]"]), ATOM

    def vector(self, e):
        body = _join_ropes(r" \\ ", (self._tex(a)[0] for a in e.args))
        return _rope([r"\begin{bmatrix} ", body, r" \end{bmatrix}"]), ATOM

    def matrix(self, e):
        c = int(e.shape[1])
        rows = [_join_ropes(" & ", (self._tex(a)[0] for a in e.args[i:i + c]))
                for i in range(0, len(e.args), c)]
        return _rope([r"\begin{bmatrix} ", _join_ropes(r" \\ ", rows), r" \end{bmatrix}"]), \
            ATOM


def _parens(s):
    r"""\left(s\right) as one rope (a string when s is a short one: text._rope)."""
    return rf"\left({s}\right)" if s.__class__ is str and len(s) <= _SHORT else \
        (r"\left(", s, r"\right)")


def _unsigned_number(n: int, d: int) -> tuple:
    """(LaTeX, precedence) of the number n/d >= 0."""
    s = fraction_text(n, d)
    if "/" in s:
        top, bottom = s.split("/")
        return rf"\frac{{{_decimal_latex(top)[0]}}}{{{_decimal_latex(bottom)[0]}}}", FRAC
    return _decimal_latex(s)


def _decimal_latex(s: str) -> tuple:
    r"""(LaTeX, precedence) of a decimal as the text printer writes it: 1.5e-300 is
    1.5 \cdot 10^{-300}."""
    if "e" not in s:
        return s, ATOM
    mantissa, exp = s.split("e")
    power = f"10^{{{int(exp)}}}"
    return (power, POWER) if mantissa == "1" else (rf"{mantissa} \cdot {power}", PRODUCT)


def _head(rope) -> str:
    """The first character of a rope ("" when empty)."""
    r = rope
    while r.__class__ is not str and r:          # most ropes start with a non-empty piece
        r = r[0]
    if r:
        return r[0]
    stack = [rope]
    while stack:                                 # leftmost non-empty piece, no recursion
        r = stack.pop()
        if r.__class__ is str:
            if r:
                return r[0]
        else:
            stack.extend(reversed(r))
    return ""


def _bare_left(e) -> bool:
    """May e stand unparenthesised left of a juxtaposed product? (A B) C, 2 A x: yes;
    x * y (Hadamard) followed by B: no."""
    if e.op == "matmul":
        return True
    if e.op == "mul":
        arrays = [f for f in e.args if not f.is_scalar]
        return len(arrays) <= 1 and not any(
            f.op == "pow" and f.args[1].op == "num" and f.args[1].value.numerator < 0
            for f in arrays)
    return False


_FUNCTIONS = {
    "sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "exp": r"\exp", "log": r"\log",
    "tanh": r"\tanh", "sigmoid": r"\sigma", "relu": r"\operatorname{relu}",
    "sign": r"\operatorname{sign}", "max": r"\max", "min": r"\min",
    "sum": r"\operatorname{sum}", "mean": r"\operatorname{mean}",
    "logsumexp": r"\operatorname{logsumexp}", "softmax": r"\operatorname{softmax}",
    "tr": r"\operatorname{tr}", "det": r"\det", "logdet": r"\log\det",
    "diag": r"\operatorname{diag}", "vec": r"\operatorname{vec}",
}

class _Table(dict):
    """Printer methods by op; an op without one prints as a function call."""
    def __missing__(self, op):
        return Printer.call


_TABLE = _Table({
    "num": Printer.num, "var": Printer.var, "dim": Printer.dim, "const": Printer.const,
    "ones": Printer.ones, "eye": Printer.eye, "zeros": Printer.zeros,
    "commutation": Printer.commutation,
    "add": Printer.add, "mul": Printer.mul, "matmul": Printer.matmul, "pow": Printer.pow,
    "T": Printer.T, "inv": Printer.inv, "exp": Printer.exp, "sqrt": Printer.sqrt,
    "abs": Printer.abs, "norm": Printer.norm, "dot": Printer.dot, "kron": Printer.kron,
    "vector": Printer.vector, "matrix": Printer.matrix,
    **{op: Printer.compare for op in _CMP},
    **{op: Printer.call for op in _FUNCTIONS if op != "exp"},
})


# ---- derivations ---------------------------------------------------------------------

@lru_cache(maxsize=256)         # every request declares the same few types
def _parse_type(t: str):
    """'vector(n)' -> (n, 1) etc.; None when unknown."""
    m = re.fullmatch(r"\s*(\w+)\s*(?:\(([^)]*)\))?\s*", str(t))
    if not m:
        return None
    kind, dims = m.group(1), [x.strip() for x in (m.group(2) or "").split(",") if x.strip()]
    if kind == "scalar":
        return ("1", "1")
    if kind == "vector" and len(dims) == 1:
        return (dims[0], "1")
    if kind == "symmetric" and len(dims) == 1:
        return (dims[0], dims[0])
    if kind == "matrix" and len(dims) == 2:
        return (dims[0], dims[1])
    return None


def _type_to_latex(t: str) -> str:
    m = re.fullmatch(r"\s*(\w+)\s*(?:\(([^)]*)\))?\s*", str(t))
    dims = [x.strip() for x in ((m.group(2) or "") if m else "").split(",") if x.strip()]
    kind = m.group(1) if m else ""
    if kind == "scalar":
        return r"\mathbb{R}"
    if kind == "vector" and len(dims) == 1:
        return rf"\mathbb{{R}}^{{{dim_to_latex(dims[0])}}}"
    if kind == "matrix" and len(dims) == 2:
        return rf"\mathbb{{R}}^{{{dim_to_latex(dims[0])} \times {dim_to_latex(dims[1])}}}"
    if kind == "symmetric" and len(dims) == 1:
        return rf"\mathbb{{S}}^{{{dim_to_latex(dims[0])}}}"
    return text(str(t))


class Symbols:
    """Names of variables and intermediates -> LaTeX, bold when vector-shaped. The engine
    reuses intermediate names in each pass (a second derivative), so a 'define' step
    being rendered updates the table (`define`). A name's shape is its type's, or else
    its first appearance's in the steps: the steps are read as far as a look-up needs
    (most names are declared or defined early: the large last steps are seldom read)."""

    def __init__(self, d=None, steps=()):
        self.shapes: dict[str, tuple] = {}
        self.top = None                               # the function's own name (y)
        self._memo: dict = {}                         # name or (of, by, total) -> LaTeX
        self._names: tuple = ({}, {})                 # name -> name_to_latex, plain, bold
        if d is not None:
            self.top = getattr(d, "of", None)
            if isinstance(self.top, str):
                self.shapes[self.top] = d.expr.shape
            for name, t in (d.types or {}).items():
                s = _parse_type(t)
                if s is not None:
                    self.shapes[name] = s
            for name, e in d.where:
                self.shapes[name] = e.shape
            steps = d.steps
        self._unread = iter(steps)                    # the steps not read yet
        self._seen: set = set()      # the nodes read: steps share nodes, read once

    def shape(self, name):
        """name's shape (None when unknown), reading the steps as far as it needs."""
        shape = self.shapes.get(name)
        while shape is None and self._unread is not None:
            s = next(self._unread, None)
            if s is None:
                self._unread = None
                break
            for e in (s.rhs, s.by):
                if e is not None and not isinstance(e, str):
                    self._collect(e)
            if s.kind == "define" and isinstance(s.lhs, str) and s.rhs is not None:
                self.shapes.setdefault(s.lhs, s.rhs.shape)
            shape = self.shapes.get(name)
        return shape

    def name(self, name: str, bold: bool) -> str:
        """name_to_latex(name, bold), looked up once per derivation (and printer): a
        derivation may print more names than the process's bounded cache holds, and its
        later ones would push its earlier ones out at every look-up."""
        memo = self._names[bold]
        got = memo.get(name)
        if got is None:
            got = memo[name] = name_to_latex(name, bold)
        return got

    def define(self, name, shape):
        if name not in self.shapes and self._unread is not None:
            # Never looked up (a look-up reads on until it finds a name): nothing printed
            # depends on its shape, and a first appearance read later would not count.
            self.shapes[name] = shape
        elif self.shape(name) != shape:
            self.shapes[name] = shape
            self._memo.clear()

    def _collect(self, e):
        """The shapes of e's variables not known yet (nodes hash by identity, in C)."""
        shapes, seen, stack = self.shapes, self._seen, [e]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n.args:
                stack += n.args
            elif n.op == "var":
                shapes.setdefault(n.name, n.shape)

    def __call__(self, x) -> str:
        if x.__class__ is str:                        # a name: printed once
            got = self._memo.get(x)
            if got is None:
                got = self._memo[x] = self._symbol(x)
            return got
        return self._symbol(x)

    def _symbol(self, x) -> str:
        if x.__class__ is not str:
            if x is None:
                return ""
            if isinstance(x, (tuple, list)):
                return r"\left(" + ", ".join(self(y) for y in x) + r"\right)"
            if not isinstance(x, str):
                return expr_to_latex(x)
        if x in ("∇", "components"):
            return _char(x) if x == "∇" else text(x)
        if "," in x:
            return self(tuple(p.strip() for p in x.split(",")))
        shape = self.shapes.get(x) or self.shape(x)   # unknown names print as scalars
        return self.name(x, shape is not None and is_vector_shape(shape))

    def derivative(self, lhs, total: bool = False) -> str:
        """A step's left-hand side: ∂of/∂by (d of/d by: total) for a pair, else the symbol."""
        if isinstance(lhs, (tuple, list)) and len(lhs) == 2:
            return self.partial(lhs[0], lhs[1], total)
        return self(lhs)

    def partial(self, of, by, total: bool = False) -> str:
        """∂of/∂by, or d of/d by for a total derivative (P&H §4.5.2)."""
        if of.__class__ is str and by.__class__ is str:      # (names: printed once)
            key = (of, by, total)
            got = self._memo.get(key)
            if got is None:
                got = self._memo[key] = self._partial(of, by, total)
            return got
        return self._partial(of, by, total)

    def _partial(self, of, by, total: bool) -> str:
        if of == "∇":
            of = self.top
        d = r"\mathrm{d}" if total else r"\partial"
        memo = self._memo                           # (a name's operand is its symbol)
        top = d if of is None else \
            f"{d} {memo.get(of) or self(of) if of.__class__ is str else self._operand(of)}"
        by = memo.get(by) or self(by) if by.__class__ is str else self._operand(by)
        return rf"\frac{{{top}}}{{{d} {by}}}"

    def _operand(self, x) -> str:
        s = self(x)
        if isinstance(x, str) or isinstance(x, (tuple, list)) or getattr(x, "op", "") == "var":
            return s
        return rf"\left({s}\right)"


def _terms_latex(sym: Symbols, terms) -> str | None:
    """Σ over terms of the product of partial symbols, or None when not symbolic."""
    out = []
    for term in terms:
        pairs = term if term and isinstance(term[0], (tuple, list)) else (term,)
        symbols = []
        for p in pairs:
            if "components" in p or len(p) != 2:
                return None
            symbols.append(sym.partial(p[0], p[1], p.__class__ is Total))
        out.append(" ".join(symbols))
    return " + ".join(out) if out else None


def _rule(s) -> str:
    return _annotation(rule_label(s)) if s.rule else ""


@lru_cache(maxsize=1024)        # a few hundred rules, on every step of every derivation
def _annotation(label: str) -> str:
    return rf"\qquad{text('(' + label + ')')}"


# Each renderer gives lines (lhs, rhs, annotation); lhs None means a note line. The
# annotation of the step's rule is `note` ("" when it is not wanted: one formula).

def _define(s, sym, p, note):
    if isinstance(s.lhs, str) and s.rhs is not None:
        sym.define(s.lhs, s.rhs.shape)
    return [(sym(s.lhs), p.tex(s.rhs)[0], note)]


def _name(s, sym, p, note):
    """v6 = dv6/dx = …: a name for a derivative too large to write where it is used."""
    sym.define(s.lhs, s.rhs.shape)
    return [(sym(s.lhs), f"{_terms_latex(sym, s.terms)} = {p.tex(s.rhs)[0]}", note)]


def _partial_like(s, sym, p, note):
    total = s.kind not in ("partial", "component")          # d for a total derivative
    return [(sym.derivative(s.lhs, total), p.tex(s.rhs)[0] if s.rhs is not None else "",
             note)]


def _chain(s, sym, p, note):
    lhs = sym.derivative(s.lhs, total=True)
    via = _terms_latex(sym, s.terms)
    value = p.tex(s.rhs)[0] if s.rhs is not None else None
    if via is None or via in (value, lhs):
        return [(lhs, value or "", note)]
    lines = [(lhs, via, note)]
    if s.product is not None:
        lines.append((lhs, p.tex(s.product)[0], ""))
    if value is not None:
        lines.append((lhs, value, ""))
    return lines


def _differential(s, sym, p, note):
    out = []
    for G, by, symbol in s.terms:
        dby = p.wrap(by, PRODUCT)                   # (its differentials: d x, see var)
        if G is not None and G.op == "num" and G.value == 1:
            out.append(dby)
        else:
            out.append(f"{p.wrap(G, PRODUCT) if G is not None else text(symbol)} : {dby}")
    rhs = out[0] if len(out) == 1 else " + ".join(rf"\left({t}\right)" for t in out)
    return [("d" + (sym(s.lhs) if s.lhs is not None else ""), rhs, note)]


def _note(s, sym, p, note):
    words = text(s.text or s.rule)
    if s.rhs is not None:
        words += r"\ " + p.tex(s.rhs)[0]
    return [(None, words, "")]


_STEPS = {"define": _define, "name": _name, "partial": _partial_like, "chain": _chain,
          "differential": _differential, "substitute": _partial_like,
          "simplify": _partial_like, "component": _partial_like, "note": _note,
          "layout": _partial_like, "identify": _partial_like}


def step_lines(s, sym, p, notes: bool = True):
    """The step's lines (lhs, rhs, annotation); without `notes`, every annotation is ""."""
    render = _STEPS.get(s.kind)
    if render is None:
        return [(None, text(f"{s.kind}: {s.text or s.rule}"), "")]
    return render(s, sym, p, _rule(s) if notes else "")


def step_to_latex(step, d=None) -> str:
    """One step as one formula (no alignment), e.g. for JSON. With the derivation `d`,
    names are bold exactly when their variable is a vector."""
    if d is not None:
        return step_renderer(d)(step)
    sym = Symbols(None, (step,))
    return one_formula(step_lines(step, sym, Printer({}, sym), False))


def step_renderer(d):
    """step -> one formula, for every step of `d` in turn: one symbol table and one
    memoised printer serve the whole derivation (linear, not one table per step)."""
    return derivation_printers(d)[0]


def derivation_printers(d):
    """(step -> one formula, Expr -> LaTeX with d's `where` names) sharing one symbol table
    and one memoised printer: the result prints from the nodes its steps printed."""
    sym = Symbols(d)
    p = Printer({e: n for n, e in d.where}, sym)

    def formula(s) -> str:                   # one_formula(step_lines(s, sym, p, False))
        render = _STEPS.get(s.kind)
        return one_formula(render(s, sym, p, "") if render is not None else
                           step_lines(s, sym, p, False))
    return formula, lambda e: p.tex(e)[0]


def one_formula(lines) -> str:
    if len(lines) == 1:                      # (most steps)
        lhs, rhs, _ = lines[0]
        return rhs if lhs is None else f"{lhs} = {rhs}"
    out = []
    for lhs, rhs, _ in lines:
        if lhs is None:
            out.append(rhs)
        elif not out:
            out.append(f"{lhs} = {rhs}")
        else:
            out.append(f"= {rhs}")
    return " ".join(out)


def result_lhs(d, sym) -> str:
    wrt = list(d.wrt)
    stacked = next((s.lhs[1] for s in d.steps if s.kind == "chain"
                    and isinstance(s.lhs, tuple) and s.lhs and s.lhs[0] == "∇"), None)
    if stacked is not None and len(wrt) >= 2:
        group = [x.strip() for x in stacked.split(",")]
        if wrt[-len(group):] == group:
            wrt = wrt[:-len(group)] + [tuple(group)]
    elif getattr(d, "stacked", False) and len(wrt) >= 2:
        group = tuple(dict.fromkeys(wrt))               # d^k/d(x, y)^k: k copies
        wrt = [group] * (len(wrt) // len(group))
    if not wrt:
        return ""
    groups = []                                       # (symbol, power), equal ones merged
    for x in wrt:
        if groups and groups[-1][0] == x:
            groups[-1][1] += 1
        else:
            groups.append([x, 1])
    den = r" \, ".join(r"\mathrm{d} " + sym(x) + (f"^{{{k}}}" if k > 1 else "")
                       for x, k in groups)                   # a total derivative: d
    order = f"^{{{len(wrt)}}}" if len(wrt) > 1 else ""
    if d.vec_form and len(wrt) == 1:
        f, x = expr_to_latex(d.expr), sym(wrt[0])
        return (rf"\frac{{\mathrm{{d}}{order} \operatorname{{vec}}\left({f}\right)}}"
                rf"{{\mathrm{{d}} \operatorname{{vec}}\left({x}\right)}}")
    of = getattr(d, "of", None) or (d.expr.name if d.expr.op == "var" else None)
    if isinstance(of, str) and of:
        return rf"\frac{{\mathrm{{d}}{order} {name_to_latex(of, is_vector_shape(d.expr.shape))}}}" \
            rf"{{{den}}}"
    return rf"\frac{{\mathrm{{d}}{order}}}{{{den}}} \left({expr_to_latex(d.expr)}\right)"


def _shape_note(d) -> str:
    note = r"\text{shape } " + shape_to_latex(d.shape)
    if d.result is None:
        return note
    note += text(f", {d.layout} layout")
    if d.vec_form:
        note += text(", vec form")
    return note


def _align(lines, result=None, after=()) -> str:
    """lines: (lhs, rhs, annotation); lhs None is a note; an lhs equal to the previous
    one continues it (&= ...). `result` is printed in full after a little space."""
    from mcalc.printing.latex_layout import Fitter
    fit = Fitter([x[0] for x in [*lines, *after, *([result] if result else [])] if x[0]])
    rows, prev = [], None
    for lhs, rhs, note in lines:
        if lhs is None:
            rows.append(fit.words(rhs))
            prev = (None, None)
            continue
        if (lhs, rhs) == prev and not note:
            continue                                    # nothing new (e.g. a substitution)
        left = "" if prev is not None and lhs == prev[0] else lhs + " "
        rows.append(fit.row(left, "=", rhs, note))
        prev = (lhs, rhs)
    tail = []
    if result is not None:
        lhs, rhs, note = result
        tail.append(fit.row(f"{lhs} ", "=", rhs, note) if lhs else fit.row("", "", rhs, note))
    tail += [fit.row(f"{lhs} ", "=", rhs, "") for lhs, rhs, _ in after]
    body = " \\\\\n".join(rows)
    if tail:
        body += (" \\\\[1ex]\n" if rows else "") + " \\\\\n".join(tail)
    return "\\begin{align*}\n" + body + "\n\\end{align*}"


def derivation_to_latex(d, standalone: bool = False) -> str:
    """The derivation as one align* environment: one line per step, `&=` continuing a line
    whose left-hand side is the previous one's, ending with the result and its shape."""
    sym = Symbols(d)
    names = {e: n for n, e in d.where}
    p = Printer(names, sym)
    lines = []
    for s in d.steps:
        lines += step_lines(s, sym, p)
    if d.result is not None:
        result = (result_lhs(d, sym), p.tex(d.result)[0], r"\qquad " + _shape_note(d))
    else:
        result = ("", expr_to_latex(d.expr), r"\qquad " + _shape_note(d))
    from mcalc.printing.latex_layout import once
    lines, result = once(lines, result)                 # the result is shown once
    after = [(r"\text{where } " + name, tex, "") for name, tex in p.where(d.where)]
    body = _fold(_align(lines, result, after))
    if not standalone:
        return body + "\n"
    return _document(d, body)


def _fold(s: str, width: int = 1000) -> str:
    """Break very long lines (TeX reads a line into a bounded buffer): at a space, which a
    newline replaces exactly, or else with a comment '%' ending the line, which adds no
    space -- never inside a control word or after a backslash."""
    out = []
    for line in s.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width)
            if cut > 0:
                out.append(line[:cut])
                line = line[cut + 1:]
                continue
            cut = next((i for i in range(width - 1, width // 2, -1) if _safe_cut(line, i)), None)
            if cut is None:
                break
            out.append(line[:cut] + "%")
            line = line[cut:]
        out.append(line)
    return "\n".join(out)


def _safe_cut(line: str, i: int) -> bool:
    """May a comment-newline go between line[i-1] and line[i]?"""
    j = i - 1
    if line[j] == "\\":
        return False
    while j >= 0 and line[j].isalpha():
        j -= 1
    return not (j < i - 1 and j >= 0 and line[j] == "\\")


def _max_matrix_cols(d) -> int:
    widest = 0
    roots = [d.expr, d.result] + [s.rhs for s in d.steps] + [s.by for s in d.steps] + \
        [e for _, e in d.where]
    stack, seen = [r for r in roots if r is not None and not isinstance(r, str)], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "matrix" and n.shape[1].isdigit():
            widest = max(widest, int(n.shape[1]))
        stack.extend(n.args)
    return widest


def _typing_latex(types: dict) -> str:
    groups: dict[str, list[str]] = {}
    for name, t in types.items():
        groups.setdefault(t, []).append(name)
    parts = []
    for t, ns in groups.items():
        shape = _parse_type(t)
        bold = shape is not None and is_vector_shape(shape)
        parts.append("$" + ", ".join(name_to_latex(n, bold) for n in ns) + r" \in "
                     + _type_to_latex(t) + "$")
    return "; ".join(parts)


def _document(d, body: str) -> str:
    cols = _max_matrix_cols(d)
    head = [r"\documentclass{article}", r"\usepackage{amsmath,amssymb}"]
    if cols > 10:
        head.append(rf"\setcounter{{MaxMatrixCols}}{{{cols}}}")
    head += [r"\allowdisplaybreaks", r"\begin{document}", r"\raggedright", "",
             r"\noindent" + request_tt(d.request)]
    if d.types:
        head[-1] += r"\\"
        head.append(r"where " + _typing_latex(d.types) +
                    (escape_text(f" (method: {d.method})") if d.result is not None else ""))
    return _fold("\n".join(head)) + "\n" + body + "\n\\end{document}\n"
