"""Expr -> the request language itself (so a result can be fed back to mcalc).

Precedence follows the grammar: + - (1) < * / @ (2, left-associative) < unary - (3)
< ^ (4) < postfix ' (5) < atoms (6). Dispatch is a table keyed on the node's op.
"""
from __future__ import annotations

import weakref
from fractions import Fraction
from math import gcd

from mcalc import expr as E
from mcalc.errors import NumberTooLarge

ATOM, POSTFIX, POWER, UNARY, PRODUCT, SUM, COMPARE = 6, 5, 4, 3, 2, 1, 0
_CMP = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def number_text(v: Fraction) -> str:
    return fraction_text(v._numerator, v._denominator)


def fraction_text(n: int, d: int) -> str:
    """number_text of n/d in lowest terms, from its integers (a Fraction's properties
    and arithmetic are Python code, slow on a printer's every number). Exact, so that a
    result read back is the same number: an integer, a terminating decimal (0.125, every
    digit of 1.5707963267948966), or n/d — and a long one with an exponent when that is
    shorter (1e-300, 1e300, not 300 digits)."""
    if n.bit_length() > _TOO_LONG or d.bit_length() > _TOO_LONG:
        # (beyond Python's limit of str() on an int: its ValueError was no McalcError)
        raise NumberTooLarge("a number too large for mcalc (more than 4,000 digits)")
    if d == 1:
        return _integer(n)
    k, twos, fives = d, 0, 0
    while k % 2 == 0:
        k //= 2
        twos += 1
    while k % 5 == 0:
        k //= 5
        fives += 1
    if k != 1:
        return f"{_integer(n)}/{_integer(d)}"
    places = max(twos, fives)                    # a terminating decimal:
    digits = n * (10 ** places // d)             # n/d = digits/10^places, no trailing 0
    s = f"{n / d:.15g}"                          # (float(n/d) is n / d, rounded once)
    if "e" not in s:
        return s if len(str(abs(digits))) <= 15 else _decimal(digits, places)
    s = f"{n}/{d}"
    if len(s) <= _LONG:
        return s
    e = _scientific(digits, -places)             # 1.5e-300, or the shorter of that
    return e if len(e) <= _FLOAT and len(e) < len(s) - 3 else \
        min(e, f"{_integer(n)}/{_integer(d)}", key=len)


_TOO_LONG = 13_000  # bits: about 3,900 digits
_LONG = 21          # characters beyond which a number may be written with an exponent ...
_FLOAT = 24         # ... when that is this short (17 digits, a point, a sign, e-300)


def _integer(n: int) -> str:
    """An integer, with an exponent when it is long and has a float's digits at most
    (1e300, 1.5e300 — but an exact 40-digit coefficient keeps its digits)."""
    s = str(n)
    if len(s) <= _LONG:
        return s
    e = _scientific(n, 0)
    return e if len(e) <= _FLOAT and len(e) < len(s) - 3 else s        # (clearly shorter)


def _decimal(digits: int, places: int) -> str:
    """digits/10^places written out (places > 0)."""
    sign, t = ("-" if digits < 0 else ""), str(abs(digits)).rjust(places + 1, "0")
    return f"{sign}{t[:-places]}.{t[-places:]}"


def _scientific(m: int, exp: int) -> str:
    """m*10^exp as the request language writes it with an exponent: 1.5e-300, 1e300."""
    while m % 10 == 0:
        m //= 10
        exp += 1
    sign, t = ("-" if m < 0 else ""), str(abs(m))
    mantissa = t[0] + (f".{t[1:]}" if len(t) > 1 else "")
    return f"{sign}{mantissa}e{exp + len(t) - 1}"


def coefficient(n: int, d: int) -> tuple[str, int]:
    """A product's coefficient n/d (n > 0, lowest terms) as (its text in front, the
    denominator left to write after the factors): (str(n), d) — 3*x/8 — unless a number
    is long and an exponent writes the coefficient shorter: 1.5e-300*x, not 3*x/ and 301
    digits."""
    s = str(n)
    if len(s) > _LONG or d > _BIG:
        c = fraction_text(n, d)
        if "/" not in c:
            return c, 1
    return s, d


_BIG = 10 ** _LONG


def to_text(e, names: dict | None = None) -> str:
    """`names` maps shared subexpressions to the names they are printed as (t1, t2, ...)."""
    return _flat(Printer(names or {}).text(e)[0])


def printer(names: dict | None = None, weak: bool = False, limit: int | None = None):
    """`to_text` with `names` fixed, for printing many expressions that share subexpressions
    (the steps of one derivation): each node's text is built once, so the steps of a deep
    network print in time proportional to their nodes, not to their written-out size.
    A `weak` printer forgets a node's text when the node is gone (for a long-lived one);
    with a `limit` it gives only the first limit + 1 characters (or fewer)."""
    p = Printer(names or {})
    if weak:
        p.memo = weakref.WeakKeyDictionary(p.memo)
        p.unsigned = None                # (it would hold the nodes alive)
        return lambda e: _flat(p.text(e)[0], limit)

    memo = p.memo

    def show(e):
        got = memo.get(e)
        if got is None:
            print_nodes(p, memo, e, _TABLE)
            got = memo[e]
        r, prec = got
        if r.__class__ is str:
            return r
        if limit is not None:
            return _flat(r, limit)
        r = _flat(r)
        memo[e] = r, prec            # steps print the same expressions again and again,
        return r                     # and parents from now on share the flat text
    return show


def where_texts(where) -> list[tuple[str, str]]:
    """(name, text) of each `where` definition, written with the names defined before it.
    `where` lists children before parents, so every named subexpression of a definition is
    an earlier one: one printer holding all the names serves every definition (each root
    printed by its own structure), instead of a new printer and name table per line."""
    p = Printer({e: n for n, e in where})
    return [(n, _flat(p.own(e)[0])) for n, e in where]


def print_nodes(printer, memo, root, table) -> None:
    """memo[node] = table[node.op](printer, node) for each node reachable from root and not
    in memo, children first (so each method finds its operands done), without recursion.
    This is mcalc.expr.postorder written out: every printer runs it at every node, and
    resuming a generator there cost the JSON output some 7% of its instructions.
    The caller has looked root up in memo already: root is not there."""
    for a in root.args:                        # most roots wait for leaves at most
        if a not in memo:
            if a.args:
                break
            memo[a] = table[a.op](printer, a)
    else:
        memo[root] = table[root.op](printer, root)
        return
    # A node waits on the stack, with the iterator of its operands, until they are done:
    # it resumes where it stopped, so each operand is looked at once. (No comprehension
    # per node: on Python 3.11 each is a function call.)
    stack = [(root, iter(root.args))]
    push = stack.append
    while stack:
        node, args = stack[-1]
        for a in args:
            if a not in memo:
                if a.args:
                    push((a, iter(a.args)))
                    break
                memo[a] = table[a.op](printer, a)        # a leaf: printed at once
        else:
            stack.pop()
            memo[node] = table[node.op](printer, node)


# A node's text is kept as a rope: a string, or a tuple of ropes that shares its operands'
# ropes instead of copying their characters. Copying would make sin(sin(...x)) n deep cost
# n²/2 characters of memory and time; a rope is flattened once, when a line is printed.

def _flat(rope, limit: int | None = None) -> str:
    """The rope's text; with a `limit`, only its first limit + 1 characters or fewer."""
    if rope.__class__ is str:
        return rope if limit is None else rope[:limit + 1]
    if limit is None:
        return "".join(_pieces(rope))
    out: list[str] = []
    n = 0
    for r in _pieces(rope):
        out.append(r)
        n += len(r)
        if n > limit:
            break
    return "".join(out)[:limit + 1]


def _pieces(rope):
    """The strings of a rope, left to right (most short texts are strings already, so a
    line has few pieces), without recursion."""
    stack = []                         # the iterators of the enclosing ropes
    it = iter(rope)
    while True:
        for r in it:                   # the pieces of one rope in one loop
            if r.__class__ is str:
                yield r
            else:
                stack.append(it)
                it = iter(r)
                break
        else:
            if not stack:
                return
            it = stack.pop()


def _join(sep: str, ropes):
    """The ropes with sep between them, as one rope (_rope)."""
    if ropes.__class__ is not list:
        ropes = list(ropes)
    try:
        s = sep.join(ropes)            # (most are short strings: one C call)
        if len(s) <= _SHORT:
            return s
    except TypeError:                  # a rope among them
        pass
    out = []
    for r in ropes:
        out += (sep, r)
    del out[:1]
    return tuple(out)


# A short text is a plain string instead: a node whose pieces are all strings, _SHORT
# characters at most in all, is printed as one string, so that flattening a line seldom
# has a rope to walk. A text is kept in its parent's string only while that is short; a
# long string (a line printed already) is copied once more by a parent that joins it and
# finds the result too long, no more than printing that parent's line copies: printing
# stays linear, and a long text stays a rope.
_SHORT = 256


def _rope(pieces: list):
    """The pieces (ropes) as one rope: a string when they are short strings."""
    try:
        s = "".join(pieces)            # (most pieces are strings: one C call finds out)
    except TypeError:                  # a piece is a rope
        return tuple(pieces)
    return s if len(s) <= _SHORT else tuple(pieces)


def _parens(r):
    """(r) as one rope."""
    return f"({r})" if r.__class__ is str and len(r) <= _SHORT else ("(", r, ")")


_CONSTANT = ("num", "dim", "const")    # denominators written in front of an array


class Printer:
    def __init__(self, names):
        # node -> (text, precedence); text(e) is pure. A named node prints as its name.
        self.memo: dict = {e: (n, ATOM) for e, n in names.items()}
        # A signed product's text without its minus sign, which is the text of its
        # negation (a - 2*b prints the node 2*b, not built: it would be printed anew). None
        # when a product has a name: the negation built could be that one, printed by it.
        self.unsigned: dict | None = \
            None if names and any(e.op == "mul" for e in names) else {}

    def text(self, e) -> tuple:
        """(rope, precedence) of e."""
        got = self.memo.get(e)
        if got is None:
            got = self._fill(e)
        return got

    def _fill(self, e) -> tuple:
        print_nodes(self, self.memo, e, _TABLE)
        return self.memo[e]

    def wrap(self, e, min_prec: int):
        s, p = self.text(e)
        return s if p >= min_prec else _parens(s)

    def own(self, e) -> tuple:
        """(rope, precedence) of e by its own structure, even when e has a name."""
        for a in e.args:
            if a not in self.memo:
                print_nodes(self, self.memo, a, _TABLE)
        return _TABLE[e.op](self, e)

    # Each method finds its node's operands in self.memo (print_nodes prints them first);
    # nodes below those, or made here, may not be there: self.text or self.wrap.

    # leaves
    def num(self, e):
        n, d = e.value._numerator, e.value._denominator
        if n >= 0:
            s = fraction_text(n, d)
            return s, (PRODUCT if "/" in s else ATOM)
        s = fraction_text(-n, d)
        return f"-{s}", (PRODUCT if "/" in s else UNARY)

    def name(self, e):
        return e.name, ATOM

    def ones(self, e):
        return f"ones({e.shape[0]})", ATOM

    def eye(self, e):
        return f"eye({e.shape[0]})", ATOM

    def zeros(self, e):
        # a zero array keeps its shape when fed back: 0*ones(n), 0*ones(n)', 0*ones(m)@ones(n)'
        r, c = e.shape
        if (r, c) == ("1", "1"):
            return "0", ATOM
        if c == "1":
            return f"0*ones({r})", PRODUCT
        return (f"0*ones({c})'" if r == "1" else f"0*ones({r})@ones({c})'"), PRODUCT

    def commutation(self, e):
        return f"commutation({e.value[0]}, {e.value[1]})", ATOM

    # operators
    def add(self, e):
        memo = self.memo
        first, *rest = e.args
        out = [self.wrap(first, SUM + 1) if first.op in _CMP else memo[first][0]]
        for t in rest:
            op = t.op
            if op == "num" and t.value._numerator < 0:     # - 2, - 1/2 (no parentheses)
                out += (" - ", fraction_text(-t.value._numerator, t.value._denominator))
                continue
            if op == "mul" and t.args[0].op == "num" and t.args[0].value._numerator < 0:
                got = self.unsigned.get(t) if self.unsigned is not None else None
                r, prec = got if got is not None else self.text(_negated(t))
                out += (" - ", r) if prec >= PRODUCT else (" - (", r, ")")
                continue
            r, prec = memo[t]
            out += (" + ", r) if prec >= (PRODUCT if op != "add" else SUM + 1) else \
                (" + (", r, ")")
        return _rope(out), SUM

    def mul(self, e):
        (n, d), num, den = split_product(e)
        sign = ""
        if n < 0:
            sign, n = "-", -n
        lead, d = coefficient(n, d)
        parts = []
        if lead != "1" or not num:
            parts.append(lead)
        # every factor before num[i] is a scalar (after the loop: every factor of num)
        scalars_before = True
        memo, last = self.memo, len(num) - 1
        for i, f in enumerate(num):
            # an @ product that follows a non-scalar factor needs parentheses: x*(A@y)
            first = i == 0 and not parts
            last_after_scalars = scalars_before and i == last
            scalars_before = scalars_before and f.is_scalar
            r, prec = memo[f]
            if f.op == "matmul" and not first and not last_after_scalars:
                parts.append(_parens(r))
            else:
                parts.append(r if prec >= (PRODUCT if first or last_after_scalars else UNARY)
                             else _parens(r))
        if not den and d == 1:
            text = _join("*", parts)
            if not sign:
                return text, PRODUCT
            if self.unsigned is not None:
                self.unsigned[e] = text, PRODUCT
            return _rope([sign, text]), (UNARY if len(parts) == 1 else PRODUCT)
        if d != 1:
            den.insert(0, None)
        ds = [str(d) if f is None else self.wrap(f, POWER) for f in den]
        over = ["/", ds[0]] if len(ds) == 1 else ["/(", _join("*", ds), ")"]
        if not scalars_before and all(f is None or f.op in _CONSTANT for f in den):
            # a constant fraction in front of an array: 2/m*(X@w - y)'@X (but a quotient
            # by a function of the variables last: 2*x@x'/norm(x)^4)
            head = parts[0] if lead != "1" or not num else "1"
            body = parts[1:] if lead != "1" or not num else parts
            scal = [p for f, p in zip(num, body) if f.is_scalar]
            rest = [p for f, p in zip(num, body) if not f.is_scalar]
            lead = scal if head == "1" else [head] + scal                  # a/2*A, not 1*a/2*A
            pieces = [_join("*", lead), *over, "*", _join("*", rest)] if lead else \
                [_join("*", rest), *over]                                  # x/norm(x)
        else:
            pieces = [_join("*", parts), *over]
        text = _rope(pieces)
        if not sign:
            return text, PRODUCT
        if self.unsigned is not None:
            self.unsigned[e] = text, PRODUCT
        return _rope([sign, text]), (UNARY if len(parts) + len(den) == 1 else PRODUCT)

    def matmul(self, e):
        memo = self.memo
        first, *rest = e.args
        r, prec = memo[first]
        out = [r] if prec >= PRODUCT else ["(", r, ")"]
        for a in rest:
            r, prec = memo[a]
            out += ("@", r) if prec >= UNARY else ("@(", r, ")")
        return _rope(out), PRODUCT

    def pow(self, e):
        base, p = e.args
        r, prec = self.memo[base]
        if p.op == "num" and p.value._numerator < 0:
            if p.value._numerator == -1 and p.value._denominator == 1:
                return _rope(["1/", r] if prec >= POWER else ["1/(", r, ")"]), PRODUCT
            return _rope(["1/", self.text(_pow(base, -p.value))[0]]), PRODUCT
        pr, pprec = self.memo[p]
        out = [r, "^"] if prec >= POSTFIX else ["(", r, ")^"]
        out += (pr,) if pprec >= POWER else ("(", pr, ")")
        return _rope(out), POWER

    def T(self, e):
        r, prec = self.memo[e.args[0]]
        return _rope([r, "'"] if prec >= POSTFIX else ["(", r, ")'"]), POSTFIX

    def exp(self, e):
        if e.args[0] is E.ONE:            # the constant e, as the request language writes it
            return "e", ATOM
        return self.call(e)

    def call(self, e):
        # a comparison's own brackets are the call's: diag(x > 0), not diag((x > 0))
        return _rope([e.op, "(", *self._list(e.args, bare=True), ")"]), ATOM

    def _list(self, args, bare: bool = False) -> list:
        """The operands' ropes, comma separated (pieces of a rope); a comparison `bare`
        (without its brackets) if asked."""
        memo = self.memo
        out = []
        for a in args:
            out += (", ", memo[a][0] if not bare or a.op not in _CMP else
                    self.compare(a, bare=True)[0])
        del out[:1]
        return out

    def compare(self, e, bare: bool = False):
        a, b = e.args
        inner = [self.wrap(a, SUM), f" {_CMP[e.op]} ", self.wrap(b, SUM)]
        return _rope(inner if bare else ["(", *inner, ")"]), ATOM

    def vector(self, e):
        return _rope(["[", *self._list(e.args), "]"]), ATOM

    def matrix(self, e):
        r, c = int(e.shape[0]), int(e.shape[1])
        rows = [_rope(["[", *self._list(e.args[i * c:(i + 1) * c]), "]"]) for i in range(r)]
        return _rope(["[", _join(", ", rows), "]"]), ATOM


def split_product(e, factors: tuple | None = None):
    """A product as ((numerator, denominator) of its numeric coefficient in lowest terms,
    numerator factors, denominator factors): 2*x*y^-1 -> ((2, 1), [x], [y]). Both the text
    and the LaTeX printer write a/b from it. (In integers: Fraction arithmetic is slow.)
    `factors`, if given, are the product's instead of e's operands."""
    n = d = 1
    num, den = [], []
    for f in (e.args if factors is None else factors):
        op = f.op
        if op == "num":
            n *= f.value._numerator
            d *= f.value._denominator
        elif op == "pow" and f.args[1].op == "num" and f.args[1].value._numerator < 0:
            p = f.args[1].value
            den.append(f.args[0] if p._numerator == -1 and p._denominator == 1 else
                       _pow(f.args[0], -p))
        else:
            num.append(f)
    if d != 1:
        g = gcd(n, d)
        n, d = n // g, d // g
    return (n, d), num, den


def _pow(base, p: Fraction):
    # (E.num(p) would copy the Fraction, in Python code: the node is the same)
    return E.Expr("pow", (base, E.Expr("num", value=p)), base.shape)


def _negated(t):
    """t without its leading minus sign, if it has one (for printing a - b)."""
    if t.op == "num" and t.value._numerator < 0:
        return E.num(-t.value)
    if t.op == "mul" and t.args[0].op == "num" and t.args[0].value._numerator < 0:
        c = t.args[0].value
        rest = t.args[1:]
        # (-1*x is most common: no Fraction arithmetic, which is Python code, to find it)
        args = rest if c._numerator == -1 and c._denominator == 1 else (E.num(-c),) + rest
        return args[0] if len(args) == 1 else E.Expr("mul", args, t.shape)
    return None


_TABLE = {
    "num": Printer.num, "var": Printer.name, "dim": Printer.name, "const": Printer.name,
    "ones": Printer.ones, "eye": Printer.eye, "zeros": Printer.zeros,
    "commutation": Printer.commutation,
    "add": Printer.add, "mul": Printer.mul, "matmul": Printer.matmul, "pow": Printer.pow,
    "T": Printer.T, "vector": Printer.vector, "matrix": Printer.matrix,
    **{op: Printer.compare for op in _CMP},
}
for _f in ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sign",
           "max", "min", "sum", "mean", "norm", "logsumexp", "dot", "softmax", "tr", "det",
           "logdet", "inv", "diag", "kron", "vec"):
    _TABLE[_f] = Printer.call
_TABLE["exp"] = Printer.exp

E.show_with(to_text)                   # repr(Expr) prints in the request language
