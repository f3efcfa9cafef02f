"""Expr -> the request language itself (so a result can be fed back to mcalc).

Precedence follows the grammar: + - (1) < * / @ (2, left-associative) < unary - (3)
< ^ (4) < postfix ' (5) < atoms (6). Dispatch is a table keyed on the node's op.
"""
from __future__ import annotations

import weakref
from fractions import Fraction

from mcalc import expr as E

ATOM, POSTFIX, POWER, UNARY, PRODUCT, SUM, COMPARE = 6, 5, 4, 3, 2, 1, 0
_CMP = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def number_text(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:                                   # a terminating decimal
        s = f"{float(v):.15g}"
        if "e" not in s:
            return s
    return f"{v.numerator}/{v.denominator}"


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
        return lambda e: _flat(p.text(e)[0], limit)

    memo = p.memo

    def show(e):
        r, prec = memo.get(e) or p._fill(e)
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
    return [(n, _flat(_TABLE[e.op](p, e)[0])) for n, e in where]


def print_nodes(printer, memo, root, table) -> None:
    """memo[node] = table[node.op](printer, node) for each node reachable from root and not
    in memo, children first (so each method finds its operands done), without recursion.
    This is mcalc.expr.postorder written out: every printer runs it at every node, and
    resuming a generator there cost the JSON output some 7% of its instructions."""
    stack = [root]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        if node.args:                          # (a leaf has nothing to wait for)
            pending = [a for a in node.args if a not in memo]
            if pending:
                stack += pending
                continue
        stack.pop()
        memo[node] = table[node.op](printer, node)


# A node's text is kept as a rope: a string, or a tuple of ropes that shares its operands'
# ropes instead of copying their characters. Copying would make sin(sin(...x)) n deep cost
# n²/2 characters of memory and time; a rope is flattened once, when a line is printed.

def _flat(rope, limit: int | None = None) -> str:
    """The rope's text; with a `limit`, only its first limit + 1 characters or fewer."""
    if rope.__class__ is str:
        return rope
    out: list[str] = []
    stack = []                         # the iterators of the enclosing ropes (no recursion)
    it, n = iter(rope), 0
    while True:
        for r in it:                   # left to right, the pieces of one rope in one loop
            if r.__class__ is str:
                out.append(r)
                if limit is not None:
                    n += len(r)
                    if n > limit:
                        return "".join(out)[:limit + 1]
            else:
                stack.append(it)
                it = iter(r)
                break
        else:
            if not stack:
                return "".join(out)
            it = stack.pop()


def _join(sep: str, ropes) -> tuple:
    out = []
    for r in ropes:
        if out:
            out.append(sep)
        out.append(r)
    return tuple(out)


class Printer:
    def __init__(self, names):
        # node -> (text, precedence); text(e) is pure. A named node prints as its name.
        self.memo: dict = {e: (n, ATOM) for e, n in names.items()}

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
        return s if p >= min_prec else ("(", s, ")")

    # leaves
    def num(self, e):
        v = e.value
        neg = v.numerator < 0                  # (a Fraction's comparisons are slow)
        s = number_text(-v if neg else v)
        if "/" in s:
            return (f"-{s}" if neg else s), PRODUCT
        return (f"-{s}", UNARY) if neg else (s, ATOM)

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
        out = []
        for i, t in enumerate(e.args):
            neg = _negated(t)
            if i and neg is not None:
                out += (" - ", self.wrap(neg, PRODUCT))
            elif i:
                out += (" + ", self.wrap(t, PRODUCT if t.op != "add" else SUM + 1))
            else:
                out.append(self.wrap(t, SUM + 1) if t.op in ("gt", "ge", "lt", "le") else
                           self.text(t)[0])
        return tuple(out), SUM

    def mul(self, e):
        coeff, num, den = split_product(e)
        n, d = coeff.numerator, coeff.denominator     # (a Fraction's arithmetic is slow)
        sign = ""
        if n < 0:
            sign, n = "-", -n
        parts = []
        if n != 1 or not num:
            parts.append(str(n))
        scalars_before = True                  # every factor before num[i] is a scalar
        memo, last = self.memo, len(num) - 1
        for i, f in enumerate(num):
            # an @ product that follows a non-scalar factor needs parentheses: x*(A@y)
            first = i == 0 and not parts
            last_after_scalars = scalars_before and i == last
            scalars_before = scalars_before and f.is_scalar
            r, prec = memo.get(f) or self.text(f)
            if f.op == "matmul" and not first and not last_after_scalars:
                parts.append(("(", r, ")"))
            else:
                parts.append(r if prec >= (PRODUCT if first or last_after_scalars else UNARY)
                             else ("(", r, ")"))
        if not den and d == 1:
            return (sign, _join("*", parts)), (UNARY if sign and len(parts) == 1 else PRODUCT)
        if d != 1:
            den.insert(0, None)
        ds = [str(d) if f is None else self.wrap(f, POWER) for f in den]
        over = ("/", ds[0] if len(ds) == 1 else ("(", _join("*", ds), ")")) if ds else ""
        if over and any(not f.is_scalar for f in num) and all(f is None or f.is_scalar
                                                              for f in den):
            # a scalar fraction in front of an array: 2/m*(X@w - y)'@X
            head = parts[0] if n != 1 or not num else "1"
            body = parts[1:] if n != 1 or not num else parts
            scal = [p for f, p in zip(num, body) if f.is_scalar]
            rest = [p for f, p in zip(num, body) if not f.is_scalar]
            lead = scal if head == "1" else [head] + scal                  # a/2*A, not 1*a/2*A
            text = (_join("*", lead), over, "*", _join("*", rest)) if lead else \
                (_join("*", rest), over)                                   # x/norm(x)
        else:
            text = (_join("*", parts), over)
        return (sign, text), (UNARY if sign and len(parts) + len(den) == 1 else PRODUCT)

    def matmul(self, e):
        parts = [self.wrap(e.args[0], PRODUCT)] + [self.wrap(a, UNARY) for a in e.args[1:]]
        return _join("@", parts), PRODUCT

    def pow(self, e):
        base, p = e.args
        if p.op == "num" and p.value.numerator < 0:
            inv = -p.value
            return ("1/", self.wrap(base, POWER) if inv == 1 else self.text(_pow(base, inv))[0]), \
                PRODUCT
        return (self.wrap(base, POSTFIX), "^", self.wrap(p, POWER)), POWER

    def T(self, e):
        return (self.wrap(e.args[0], POSTFIX), "'"), POSTFIX

    def call(self, e):
        # a comparison's own brackets are the call's: diag(x > 0), not diag((x > 0))
        return (e.op, "(", _join(", ", [self.text(a)[0] if a.op not in _CMP else
                                        self.compare(a, bare=True)[0] for a in e.args]), ")"), ATOM

    def compare(self, e, bare: bool = False):
        a, b = e.args
        inner = (self.wrap(a, SUM), f" {_CMP[e.op]} ", self.wrap(b, SUM))
        return (inner if bare else ("(",) + inner + (")",)), ATOM

    def vector(self, e):
        return ("[", _join(", ", [self.text(a)[0] for a in e.args]), "]"), ATOM

    def matrix(self, e):
        r, c = int(e.shape[0]), int(e.shape[1])
        rows = [("[", _join(", ", [self.text(a)[0] for a in e.args[i * c:(i + 1) * c]]), "]")
                for i in range(r)]
        return ("[", _join(", ", rows), "]"), ATOM


def split_product(e):
    """A product as (numeric coefficient, numerator factors, denominator factors):
    2*x*y^-1 -> (2, [x], [y]). Both the text and the LaTeX printer write a/b from it.
    The coefficient is a Fraction, or the int 1 (Fraction arithmetic is slow, and most
    products have no number)."""
    coeff = 1
    num, den = [], []
    for f in e.args:
        op = f.op
        if op == "num":
            coeff = f.value if coeff == 1 else coeff * f.value
        elif op == "pow" and f.args[1].op == "num" and f.args[1].value.numerator < 0:
            p = f.args[1].value
            den.append(f.args[0] if p == -1 else _pow(f.args[0], -p))
        else:
            num.append(f)
    return coeff, num, den


def _pow(base, p):
    return E.Expr("pow", (base, E.num(p)), base.shape)


def _negated(t):
    """t without its leading minus sign, if it has one (for printing a - b)."""
    if t.op == "num" and t.value.numerator < 0:
        return E.num(-t.value)
    if t.op == "mul" and t.args[0].op == "num" and t.args[0].value.numerator < 0:
        c = -t.args[0].value
        rest = t.args[1:]
        args = rest if c == 1 else (E.num(c),) + rest
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

E.show_with(to_text)                   # repr(Expr) prints in the request language
