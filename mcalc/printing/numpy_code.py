"""Expr -> one Python expression over `np` and the variable names (the JSON `numpy` field).

Value conventions (CONTRACT.md, JSON): scalars are floats, column AND row vectors are
1-D arrays of shape (n,), matrices are 2-D arrays. Row and column vectors are therefore
the same numpy value; the orientation only matters for `@`, which is translated by the
operands' shapes:

    column @ row     -> np.outer(a, b)          row @ column  -> a @ b (a scalar)
    matrix @ column  -> A @ x (1-D)              row @ matrix  -> x @ A (1-D)
    a 1x1 factor     -> a plain product a * b    matrix @ matrix -> A @ B

Transposes are no-ops on vectors and `.T` on matrices; vec() is column-major
(np.ravel(X, order='F')); kron() reshapes vector operands to their 2-D shapes. The
indicators > >= < <= become float 0/1 values (`np.greater(a, b) * 1.0`, which also works
on Python floats); sigmoid, logsumexp and softmax are written in overflow-free forms.

`dims` maps a dimension name to Python text giving its size (e.g. {"n": "x.shape[0]"});
it is used by ones(n), eye(n), zeros and the dimension leaves (N in sum(y)/N). Integer
dimensions print as themselves, products 'm*n' multiply, and a name missing from `dims`
prints as itself (the caller then has to bind it when evaluating).

`names` (Expr -> identifier, e.g. {A@x: "t1"}) names shared subexpressions. The result is
still one expression: `((t1 := ...), (t2 := ... t1 ...), <final>)[-1]`; each named
subexpression reachable from the root is printed once, after the named subexpressions
it uses (the dict's order is kept where dependencies allow). A name that would capture
a variable (the same Python name) is replaced by a fresh one (t1_1, ...), so a walrus
never overwrites a value the caller passed in.

Variables are written by their Python names (`python_names`, the contract's renaming
rule): a name whose NFKC form is not a Python identifier, is a keyword or one of the
builtin constants True/False/None, or is `np`, gets a trailing `_` (`lambda_`, `np_`,
`True_`); characters that cannot be in an identifier become `_` first. Distinct mcalc
names that would meet (`lambda` and `lambda_`, `x₁` and `x1`) get more underscores.

Dispatch is a table keyed on the node's op, like mcalc.printing.text. The printer is
iterative (deep trees never reach the recursion limit) and prints each node of the
shared DAG once. Texts are ropes (mcalc.printing.text's): a node's text shares its
operands' instead of copying them, so a deep tree costs memory linear in its nodes.
"""
from __future__ import annotations

import heapq
import keyword
import re
import unicodedata
from fractions import Fraction
from functools import lru_cache
from math import gcd

from mcalc.printing.text import _flat, _join, _parens, _rope, print_nodes
from mcalc.types import SCALAR

# Python precedence, low to high. Wrapping a text below `min_prec` parenthesises it.
SUM, PRODUCT, UNARY, POWER, ATOM = 2, 3, 4, 5, 6

_SIMPLE = re.compile(r"[A-Za-z_]\w*(\.\w+|\[[^\[\]]*\]|\([^()]*\))*|\d+")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_DIM_SOURCE = re.compile(r"np\.shape\(([^()]+)\)\[(\d+)\]")


_RESERVED = frozenset(keyword.kwlist) | {"True", "False", "None", "np", "__debug__"}


def _renamed(name: str) -> str:
    """The contract's rule for one name (before names are made distinct)."""
    py = unicodedata.normalize("NFKC", name) if not name.isascii() else name
    if py.isidentifier() and not keyword.iskeyword(py) and py not in _RESERVED:
        return py
    if not py.isidentifier():
        py = "".join(c if ("a" + c).isidentifier() else "_" for c in py)
        if not py.isidentifier():                       # starts with a digit
            py = "_" + py
    return py + "_"


def python_names(variables) -> dict[str, str]:
    """mcalc variable name -> its Python name in the numpy code, all distinct (in the
    given order, so the renaming is stable)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    keep = {v for v in variables if _renamed(v) == v}   # names that need no change win
    taken |= keep
    for v in variables:
        py = _renamed(v)
        if v not in keep:
            while py in taken:
                py += "_"
        out[v] = py
        taken.add(py)
    return out


def _variable_names(e) -> list[str]:
    out, seen, stack = set(), {e}, [e]      # (in any order: no children-first walk)
    while stack:
        node = stack.pop()
        if node.args:
            for a in node.args:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        elif node.op == "var":
            out.add(node.name)
    return sorted(out)


def to_numpy(e, dims: dict[str, str], names: dict | None = None, variables=()) -> str:
    """A Python expression over `np` and the variable names whose value is `e`.
    `variables`: every variable of the request (so that the renaming is the same for all
    results of one request); those of `e` are always included."""
    names = names or {}
    for n in names.values():
        if not (isinstance(n, str) and n.isidentifier()):
            raise ValueError(f"not a Python identifier: {n!r}")
    listed = tuple(dict.fromkeys(variables))
    dims = tuple((dims or {}).items())
    # The Python names are made distinct all together, so they depend on every variable
    # of e. A caller lists them all, as a rule: e is walked to find the others only when
    # printing it meets one that is not listed (then it is printed again).
    code = _code(e, listed, dims, names)
    if code is None:
        code = _code(e, tuple(dict.fromkeys([*listed, *_variable_names(e)])), dims, names)
    return code


def _code(e, variables: tuple, dims: tuple, names: dict) -> str | None:
    """to_numpy's text, with `variables` given Python names; None if e has a variable
    that is not one of them."""
    py, dims = _names_and_sizes(variables, dims)
    if names:
        names = dict(names)
        used = set(py.values())
        for node, n in list(names.items()):             # generated names never capture
            fresh, k = n, 0
            while fresh in used or keyword.iskeyword(fresh) or fresh in _RESERVED:
                k += 1
                fresh = f"{n}_{k}"
            names[node] = fresh
            used.add(fresh)
    p = Printer(dims, names, py)
    p.fill(e)
    if p.unlisted:
        return None
    final = p.text(e)[0]
    order = _definition_order(e, names)
    if not order:
        return _flat(final)
    defs = [("(", names[n], " := ", p.body[n][0], ")") for n in order]
    return _flat(("(", _join(", ", defs + [final]), ")[-1]"))


@lru_cache(maxsize=256)         # a batch's requests have the same few variables and sizes
def _names_and_sizes(variables: tuple, dims: tuple) -> tuple[dict, dict]:
    """(python_names(variables), each dimension's size in terms of those names); shared:
    not to be changed."""
    py = python_names(variables)
    return py, {d: _DIM_SOURCE.sub(lambda m: f"np.shape({py.get(m[1], m[1])})[{m[2]}]", t)
                for d, t in dims}


# ---- shapes -------------------------------------------------------------------------

def _kind(shape) -> str:
    """'scalar' (a float), 'column' / 'row' (both 1-D in numpy) or 'matrix' (2-D)."""
    if shape == SCALAR:
        return "scalar"
    if shape[1] == "1":
        return "column"
    if shape[0] == "1":
        return "row"
    return "matrix"


def _is_vector(shape) -> bool:
    return _kind(shape) in ("column", "row")


def _float_text(v) -> str:
    if v.__class__ is Fraction:              # (float() of a Fraction is Python code)
        n, d = v._numerator, v._denominator
        if d == 1 and -_SMALL <= n <= _SMALL:
            return _SMALL_FLOATS[n]
        return repr(n / d)
    if v.__class__ is int and -_SMALL <= v <= _SMALL:
        return _SMALL_FLOATS[v]
    return repr(float(v))


# Most numbers of a result are small integers (2, -1): their texts are written once, as
# repr of a float (its shortest round-trip digits) costs a thousand-odd instructions.
_SMALL = 64
_SMALL_FLOATS = {k: repr(float(k)) for k in range(-_SMALL, _SMALL + 1)}


def _paren(text, prec: int, min_prec: int):
    return text if prec >= min_prec else _parens(text)


# ---- the printer ----------------------------------------------------------------------

class Printer:
    def __init__(self, dims, names, py=None):
        self.dims = dims
        self.names = names
        self.py = py or {}                 # variable name -> Python name
        self.body: dict = {}               # Expr -> (text, prec), the unnamed text
        self.unlisted = False              # met a variable that `py` does not name
        if not names:                      # (most results: a node's text is its body's)
            self.text = self.body.__getitem__

    def fill(self, root):
        """Print every node reachable from root once, children first (iteratively)."""
        print_nodes(self, self.body, root, _TABLE)

    def text(self, e) -> tuple:
        """(rope, precedence) of e."""
        name = self.names.get(e)
        return (name, ATOM) if name is not None else self.body[e]

    def wrap(self, e, min_prec: int):
        t, prec = self.text(e)
        return t if prec >= min_prec else _parens(t)

    def arg(self, e):
        """Text usable as a function argument."""
        return self.text(e)[0]

    # sizes
    def size(self, d: str) -> tuple[str, int]:
        parts = []
        for part in d.split("*"):
            t = part if part.isdigit() else str(self.dims.get(part) or _renamed(part))
            parts.append(t if _SIMPLE.fullmatch(t) else f"({t})")
        return (parts[0], ATOM) if len(parts) == 1 else (" * ".join(parts), PRODUCT)

    def shape_text(self, shape) -> str:
        """numpy shape argument: `n` for vectors, `(m, n)` for matrices."""
        kind = _kind(shape)
        if kind == "column":
            return self.size(shape[0])[0]
        if kind == "row":
            return self.size(shape[1])[0]
        return f"({self.size(shape[0])[0]}, {self.size(shape[1])[0]})"

    # leaves
    def num(self, e):
        return _float_text(e.value), (UNARY if e.value._numerator < 0 else ATOM)

    def var(self, e):
        py = self.py.get(e.name)
        if py is None:
            self.unlisted = True
            return e.name, ATOM
        return py, ATOM

    def dim(self, e):
        return self.size(e.name)

    def const(self, e):
        if e.name not in _CONSTANTS:
            raise ValueError(f"no numpy translation for the constant {e.name!r}")
        return _CONSTANTS[e.name], ATOM

    def ones(self, e):
        kind = _kind(e.shape)
        if kind == "scalar":
            return "1.0", ATOM
        return (f"np.eye({self.size(e.shape[0])[0]})" if e.op == "eye" else
                f"np.ones({self.shape_text(e.shape)})"), ATOM

    def commutation(self, e):
        """K_{m,n} as a permutation of the identity's rows (see mcalc.evaluate)."""
        m, n = (self.size(d)[0] for d in e.value)
        mn = self.size(e.shape[0])[0]
        return f"np.eye({mn})[np.arange({mn}).reshape(({m}, {n}), order='F').ravel()]", ATOM

    def zeros(self, e):
        if _kind(e.shape) == "scalar":
            return "0.0", ATOM
        return f"np.zeros({self.shape_text(e.shape)})", ATOM

    # arithmetic
    def add(self, e):
        out = []
        for i, t in enumerate(e.args):
            negated = self.negated(t) if i else None
            if negated is not None:
                out += (" - ", _paren(*negated, PRODUCT))
            elif i:
                out += (" + ", self.wrap(t, PRODUCT))
            else:
                out.append(self.text(t)[0])
        return _rope(out), SUM

    def negated(self, t):
        """The text of -t when t prints with a leading minus (for a - b), else None."""
        if t in self.names:
            return None
        if t.op == "num" and t.value._numerator < 0:
            return _float_text(-t.value), ATOM
        if t.op == "mul" and self.negative(t):
            return self.product(t, flip=True)
        return None

    def negative(self, e) -> bool:
        """Is the product of e's numbers negative?"""
        sign = False
        for f in e.args:
            if f.op == "num" and f not in self.names and f.value._numerator < 0:
                sign = not sign
        return sign

    def mul(self, e):
        return self.product(e)

    def product(self, e, flip=False):
        """Element-wise product; numbers gather into one coefficient, negative integer
        powers become a denominator."""
        n, d = (-1 if flip else 1), 1       # the coefficient n/d (Fractions are slow)
        num, den = [], []
        for f in e.args:
            if f in self.names:
                num.append(self.text(f))
            elif f.op == "num":
                n *= f.value._numerator
                d *= f.value._denominator
            elif (f.op == "pow" and f.args[1].op == "num" and f.args[1] not in self.names
                  and f.args[1].value._numerator < 0):
                den.append(self.power(f.args[0], -f.args[1].value))
            else:
                num.append(self.text(f))
        if d != 1:
            g = gcd(n, d)                   # in lowest terms, as a Fraction would be
            n, d = n // g, d // g
        return self.quotient(n, d, num, den)

    def quotient(self, n: int, d: int, num, den):
        """n/d * num[0] * num[1] ... / (den[0] * den[1] ...), texts with precedences (n/d
        in lowest terms, d > 0)."""
        negative = n < 0
        if negative:
            n = -n
        den = list(den)
        if d != 1:
            den.insert(0, (_float_text(d), ATOM))
        parts = list(num)
        if n != 1 or not num:
            parts.insert(0, (_float_text(n), ATOM))
        texts = _factors(parts)
        if negative:                                   # -a * b is (-a) * b
            texts[0] = _rope(["-", _paren(*parts[0], POWER)])
        if len(texts) == 1 and not den:
            return texts[0], (UNARY if negative else parts[0][1])
        text = _join(" * ", texts)
        if den:
            text = _rope([text, " / ", _paren(*den[0], UNARY) if len(den) == 1 else
                          _parens(_join(" * ", _factors(den)))])
        return text, PRODUCT

    def power(self, base, p: Fraction):
        """base ** p for a number p (p integral -> **, else np.power with a float)."""
        if p._denominator == 1:
            if p._numerator == 1:
                return self.text(base)
            return _rope([self.wrap(base, ATOM), f" ** {p._numerator}"]), POWER
        return _rope(["np.power(", self.arg(base), f", {_float_text(p)})"]), ATOM

    def pow(self, e):
        base, p = e.args
        if p.op == "num" and p not in self.names:
            if p.value._numerator < 0:
                return self.quotient(1, 1, [], [self.power(base, -p.value)])
            if p.value._numerator == 0:
                return ("1.0" if _kind(base.shape) == "scalar" else
                        f"np.ones({self.shape_text(base.shape)})"), ATOM
            return self.power(base, p.value)
        return _rope(["np.power(", self.arg(base), ", ", self.arg(p), ")"]), ATOM

    def matmul(self, e):
        text, prec = self.text(e.args[0])
        shape = e.args[0].shape
        for b in e.args[1:]:
            ka, kb = _kind(shape), _kind(b.shape)
            if ka == "column" and kb == "row":
                text, prec = _rope(["np.outer(", text, ", ", self.arg(b), ")"]), ATOM
            else:
                op = " * " if "scalar" in (ka, kb) else " @ "
                text, prec = _rope([_paren(text, prec, PRODUCT), op, self.wrap(b, UNARY)]), \
                    PRODUCT
            shape = (shape[0], b.shape[1])
        return text, prec

    def T(self, e):
        a = e.args[0]
        if _kind(a.shape) == "matrix":
            return _rope([self.wrap(a, ATOM), ".T"]), ATOM
        return self.text(a)

    # functions
    def call(self, e):
        return _rope([_CALLS[e.op], "(", _join(", ", [self.arg(a) for a in e.args]), ")"]), ATOM

    def compare(self, e):
        a, b = e.args
        return _rope([_COMPARE[e.op], "(", self.arg(a), ", ", self.arg(b), ") * 1.0"]), PRODUCT

    def sigmoid(self, e):
        # 1/(1 + exp(-x)) without overflow: exp(-log(1 + exp(-x)))
        return _rope(["np.exp(-np.logaddexp(0.0, -", self.wrap(e.args[0], POWER), "))"]), ATOM

    def relu(self, e):
        return _rope(["np.maximum(", self.arg(e.args[0]), ", 0.0)"]), ATOM

    def norm(self, e):
        a = e.args[0]
        fn = "np.abs" if _kind(a.shape) == "scalar" else "np.linalg.norm"
        return _rope([fn, "(", self.arg(a), ")"]), ATOM

    def logsumexp(self, e):
        a = e.args[0]
        inner = self.arg(a) if _is_vector(a.shape) else ("np.ravel(", self.arg(a), ")")
        return _rope(["np.logaddexp.reduce(", inner, ")"]), ATOM

    def softmax(self, e):
        t, p = self.text(e.args[0])
        if t.__class__ is str and _IDENT.fullmatch(t):      # a name (never a longer rope)
            return f"np.exp({t} - np.logaddexp.reduce({t}))", ATOM
        return _rope(["(lambda _v: np.exp(_v - np.logaddexp.reduce(_v)))(", t, ")"]), ATOM

    def logdet(self, e):
        return _rope(["np.linalg.slogdet(", self.arg(e.args[0]), ")[1]"]), ATOM

    def inv(self, e):
        a = e.args[0]
        if _kind(a.shape) == "scalar":
            return _rope(["1.0 / ", self.wrap(a, UNARY)]), PRODUCT
        return _rope(["np.linalg.inv(", self.arg(a), ")"]), ATOM

    def kron(self, e):
        a, b = e.args
        ka, kb = _kind(a.shape), _kind(b.shape)
        if "scalar" in (ka, kb):
            return _rope([self.wrap(a, PRODUCT), " * ", self.wrap(b, UNARY)]), PRODUCT
        if ka == kb and ka != "matrix":                     # column (x) column, row (x) row
            return _rope(["np.kron(", self.arg(a), ", ", self.arg(b), ")"]), ATOM
        text = _rope(["np.kron(", self.as_2d(a), ", ", self.as_2d(b), ")"])
        return (_rope(["np.ravel(", text, ")"]) if _is_vector(e.shape) else text), ATOM

    def as_2d(self, e):
        kind = _kind(e.shape)
        if kind == "column":
            return ("np.reshape(", self.arg(e), ", (-1, 1))")
        if kind == "row":
            return ("np.reshape(", self.arg(e), ", (1, -1))")
        return self.arg(e)

    def vec(self, e):
        a = e.args[0]
        if _kind(a.shape) == "matrix":
            return _rope(["np.ravel(", self.arg(a), ", order='F')"]), ATOM
        return self.text(a)

    def vector(self, e):
        if _kind(e.shape) == "scalar":                      # [a] is the scalar a
            return self.text(e.args[0])
        return _rope(["np.array([", _join(", ", [self.arg(a) for a in e.args]), "], dtype=float)"]), \
            ATOM

    def matrix(self, e):
        if _kind(e.shape) != "matrix":                      # one row or one column
            return self.vector(e)
        c = len(e.args) // int(e.shape[0])
        rows = [_rope(["[", _join(", ", [self.arg(a) for a in e.args[i:i + c]]), "]"])
                for i in range(0, len(e.args), c)]
        return _rope(["np.array([", _join(", ", rows), "], dtype=float)"]), ATOM


def _factors(parts) -> list:
    """Texts of the factors of a left-associative product: the first may itself be a
    product (A @ x * y is (A @ x) * y), the later ones may not (y * (A @ x))."""
    return [t if p >= (PRODUCT if i == 0 else UNARY) else _parens(t)
            for i, (t, p) in enumerate(parts)]


def _definition_order(root, names) -> list:
    """The named nodes reachable from root, each after the named nodes its text uses,
    otherwise in the order of `names`."""
    if not names:
        return []

    def direct(node):
        """The named nodes that node's own text refers to."""
        found, seen, stack = [], set(), list(node.args)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in names:
                found.append(n)
            else:
                stack.extend(n.args)
        return found

    deps: dict = {}
    todo = [root] if root in names else direct(root)
    while todo:
        n = todo.pop()
        if n not in deps:
            deps[n] = direct(n)
            todo.extend(deps[n])
    # Kahn's topological sort, always taking the ready node first in `names`
    by_rank = list(names)
    rank = {n: i for i, n in enumerate(by_rank)}
    waiting = {n: len(ds) for n, ds in deps.items()}     # its definitions not yet placed
    users: dict = {}
    for n, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(n)
    ready = [rank[n] for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = by_rank[heapq.heappop(ready)]
        order.append(n)
        for u in users.get(n, ()):
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, rank[u])
    return order


_CONSTANTS = {"pi": "np.pi", "e": "np.e"}
_COMPARE = {"gt": "np.greater", "ge": "np.greater_equal", "lt": "np.less", "le": "np.less_equal"}
_CALLS = {
    "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "exp": "np.exp", "log": "np.log",
    "sqrt": "np.sqrt", "tanh": "np.tanh", "abs": "np.abs", "sign": "np.sign",
    "max": "np.maximum", "min": "np.minimum", "sum": "np.sum", "mean": "np.mean",
    "dot": "np.dot", "tr": "np.trace", "det": "np.linalg.det", "diag": "np.diag",
}

class _Table(dict):
    """Printer methods by op."""
    def __missing__(self, op):
        raise ValueError(f"no numpy translation for the operator {op!r}")


_TABLE = _Table({
    "num": Printer.num, "var": Printer.var, "dim": Printer.dim, "const": Printer.const,
    "ones": Printer.ones, "eye": Printer.ones, "zeros": Printer.zeros,
    "commutation": Printer.commutation,
    "add": Printer.add, "mul": Printer.mul, "matmul": Printer.matmul, "pow": Printer.pow,
    "T": Printer.T, "vector": Printer.vector, "matrix": Printer.matrix,
    "sigmoid": Printer.sigmoid, "relu": Printer.relu, "norm": Printer.norm,
    "logsumexp": Printer.logsumexp, "softmax": Printer.softmax, "logdet": Printer.logdet,
    "inv": Printer.inv, "kron": Printer.kron, "vec": Printer.vec,
    **{op: Printer.compare for op in _COMPARE},
    **{op: Printer.call for op in _CALLS},
})
