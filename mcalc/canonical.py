"""The canonical form that `mcalc check` compares: a normal form for equality, not the
textbook form (mcalc.simplify owns that).

A canonical form is a sum of terms; a term is a rational coefficient times an
element-wise product of factors with exponents; a factor is a leaf (x, x', ones(n), eye,
a dimension N, pi, a literal), a matrix-product chain of such products (scalars pulled
out, eye dropped, inv(M)@M cancelled, diag(v)@u = v*u, ones(n)'@ones(n) = n, a 1×1 chain
in its smaller orientation, u'@v as ones'@(u*v)), a trace in its smallest cyclic
rotation, or a function of canonical arguments. Products distribute over sums (up to
MAX_TERMS terms), sum/mean/dot/norm become products with ones, diag of a column and
vec are linear (and vec(X*Y) = vec(X)*vec(Y)), softmax(x) is exp(x)/sum(exp(x)) and
logsumexp(x) log(sum(exp(x))), sqrt a power 1/2 — a fractional
power is a factor of its own, so sqrt(x)^2 stays apart from x (it is undefined for
x < 0) — and x < y becomes y - x > 0. Every rewrite is an identity wherever both sides
are defined (up to isolated points), so equal forms prove equality; check compares the
canonical form of the difference of the two sides.
"""
from __future__ import annotations

import hashlib
import weakref
from fractions import Fraction
from functools import lru_cache
from itertools import product as _cartesian

from mcalc import expr as E
from mcalc.expr import Expr
from mcalc.types import SCALAR, dim_mul

MAX_TERMS = 600               # canonical forms larger than this are left to the numbers
MAX_COEFFICIENT_BITS = 1 << 20  # c^k folds below this size (2^262144 does; (10^10000)^10000 stays a power)


class GiveUp(Exception):
    """The canonical form would be too large."""


class Poly:
    """A sum of terms: {mono: coefficient}; a mono is a sorted tuple of (base, exponent)
    whose factors multiply element-wise. `shape` is the sum's shape; every term of a
    non-scalar sum has that shape (scalars are multiplied by ones first)."""
    __slots__ = ("terms", "shape")

    def __init__(self, terms: dict, shape):
        self.terms = terms
        self.shape = shape

    def __eq__(self, other):
        return isinstance(other, Poly) and self.shape == other.shape and \
            self.terms == other.terms

    def __hash__(self):
        return hash((self.shape, frozenset(self.terms.items())))

    def __repr__(self):
        from mcalc.printing.text import to_text
        return f"Poly({to_text(render_poly(self))!r}, {self.shape})"


def canonical(e: Expr) -> Expr:
    """The canonical form of e as an Expr (equal forms: equal values)."""
    return render_poly(canonical_poly(e))


def canonical_poly(e: Expr) -> Poly:
    return _Canon().poly(e)


def Canonicalizer():
    """An object whose .poly(e) gives canonical forms, remembering every subtree's: the
    expressions it is given share the work on their common subtrees."""
    return _Canon()


def poly_sub(a: Poly, b: Poly) -> Poly:
    terms = dict(a.terms)
    for m, c in b.terms.items():
        v = terms.get(m, Fraction(0)) - c
        if v:
            terms[m] = v
        else:
            terms.pop(m, None)
    return Poly(terms, a.shape)


# An order key: the text, shape and op of the expression; a text longer than _KEY_TEXT
# is cut there and followed by a digest of the structure, so a key costs O(1) per node
# however deep the expression (the full texts of nested factors would cost depth²).
# Entries live as long as their Expr: a long batch does not accumulate keys.
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEY_TEXT = 120
_TEXT = []                    # one weak text printer: nested factors share their texts


def _key(e: Expr) -> str:
    k = _KEYS.get(e)
    if k is None:
        if not _TEXT:
            from mcalc.printing.text import printer
            _TEXT.append(printer(weak=True, limit=_KEY_TEXT))
        text = _TEXT[0](e)
        if len(text) > _KEY_TEXT:
            text = text[:_KEY_TEXT] + "\x7f" + _digest(e)
        k = f"{text}:{e.shape[0]}x{e.shape[1]}:{e.op}"
        _KEYS[e] = k
    return k


def _digest(e: Expr) -> str:
    """A hash of e's structure that is the same in every run (children first, no recursion)."""
    got = _DIGESTS.get(e)
    if got is None:
        for n in E.postorder(e, _DIGESTS):
            h = hashlib.blake2b(repr((n.op, n.shape, n.name, n.value)).encode(), digest_size=12)
            for a in n.args:
                h.update(_DIGESTS[a].encode())
            _DIGESTS[n] = h.hexdigest()
        got = _DIGESTS[e]
    return got


def _mono(factors) -> tuple:
    return tuple(sorted(factors, key=lambda f: (_key(f[0]), f[1])))


def _mono_shape(mono):
    for b, _ in mono:
        if b.shape != SCALAR:
            return b.shape
    return SCALAR


@lru_cache(maxsize=256)         # fit() asks for it on every mixed sum
def _ones_like(shape) -> Expr:
    r, c = shape
    if c == "1":
        return E.ones(r)
    if r == "1":
        return Expr("T", (E.ones(c),), ("1", c))
    return Expr("matmul", (E.ones(r), Expr("T", (E.ones(c),), ("1", c))), (r, c))


def _is_ones_like(b: Expr) -> bool:
    """b is _ones_like(b.shape) (tested without building it: this is on the hot path)."""
    op, args = b.op, b.args
    if op == "ones":
        return True
    if op == "T":
        return args[0].op == "ones" and b.shape[0] == "1"
    return op == "matmul" and len(args) == 2 and args[0].op == "ones" and \
        args[1].op == "T" and args[1].args[0].op == "ones"


def _dim_expr(d: str) -> Expr:
    """A dimension (or a product m*n) as a scalar expression."""
    out = None
    for part in d.split("*"):
        leaf = E.num(int(part)) if part.isdigit() else E.dim(part)
        out = leaf if out is None else Expr("mul", (out, leaf), SCALAR)
    return out


def render_mono(mono, coeff: Fraction = Fraction(1)) -> Expr:
    factors = [b if p == 1 else Expr("pow", (b, E.num(p)), b.shape) for b, p in mono]
    shape = _mono_shape(mono)
    if coeff != 1 or not factors:
        factors.insert(0, E.num(coeff))
    if len(factors) == 1:
        return factors[0]
    return Expr("mul", tuple(factors), shape)


def render_poly(p: Poly) -> Expr:
    if not p.terms:
        return E.zeros(p.shape)
    terms = sorted((render_mono(m, c) for m, c in p.terms.items()), key=_key)
    if len(terms) == 1:
        return terms[0]
    return Expr("add", tuple(terms), p.shape)


class _Canon:
    def __init__(self):
        self.memo: dict[Expr, Poly] = {}
        self.t_memo: dict[Expr, Poly] = {}          # factor -> its transpose (t_base)

    # -- polynomial arithmetic -----------------------------------------------------------
    def const(self, c, shape=SCALAR) -> Poly:
        c = Fraction(c)
        if not c:
            return Poly({}, shape)
        return self.fit(Poly({(): c}, SCALAR), shape)

    def atom(self, b: Expr, p: Fraction = Fraction(1)) -> Poly:
        return Poly({((b, Fraction(p)),): Fraction(1)}, b.shape)

    def fit(self, p: Poly, shape) -> Poly:
        """Scalar terms of a non-scalar sum get a ones factor of the sum's shape."""
        if shape == SCALAR or all(_mono_shape(m) == shape for m in p.terms):
            return Poly(p.terms, shape)
        ones = ((_ones_like(shape), Fraction(1)),)
        out: dict = {}
        for m, c in p.terms.items():
            m2 = m if _mono_shape(m) == shape else self.mono_mul(m, ones)[1]
            out[m2] = out.get(m2, Fraction(0)) + c
        return Poly({m: c for m, c in out.items() if c}, shape)

    def add(self, polys, shape) -> Poly:
        out: dict = {}
        for p in polys:
            for m, c in self.fit(p, shape).terms.items():
                out[m] = out.get(m, Fraction(0)) + c
        return Poly({m: c for m, c in out.items() if c}, shape)

    def mono_mul(self, a, b):
        """(extra coefficient, mono) of the element-wise product of two monos."""
        exps: dict = {}
        for base, p in a + b:
            exps[base] = exps.get(base, Fraction(0)) + p
        coeff = Fraction(1)
        factors = []
        for base, p in exps.items():
            if not p:
                continue
            if base.op == "num" and p.denominator == 1:
                coeff *= base.value ** int(p)
                continue
            if _is_ones_like(base):
                p = Fraction(1)
            factors.append((base, p))
        arrays = [f for f in factors if f[0].shape != SCALAR and not _is_ones_like(f[0])]
        if arrays:
            factors = [f for f in factors if not _is_ones_like(f[0])]
        return coeff, _mono(factors)

    def mul(self, polys, shape) -> Poly:
        out = {(): Fraction(1)}
        for p in polys:
            nxt: dict = {}
            for (m1, c1), (m2, c2) in _cartesian(out.items(), p.terms.items()):
                k, m = self.mono_mul(m1, m2)
                nxt[m] = nxt.get(m, Fraction(0)) + c1 * c2 * k
                if len(nxt) > MAX_TERMS:
                    raise GiveUp
            out = {m: c for m, c in nxt.items() if c}
        return self.fit(Poly(out, shape), shape)

    # -- the walk ----------------------------------------------------------------------
    def poly(self, e: Expr) -> Poly:
        got = self.memo.get(e)
        if got is None:
            # children first, iteratively (deep trees never reach the recursion limit)
            stack = [e]
            while stack:
                n = stack[-1]
                pending = [a for a in n.args if a not in self.memo]
                if pending and n not in self.memo:
                    stack.extend(pending)
                    continue
                stack.pop()
                if n not in self.memo:
                    self.memo[n] = _CANON.get(n.op, _Canon.opaque)(self, n)
            got = self.memo[e]
        return got

    def expr(self, e: Expr) -> Expr:
        """The canonical Expr of e (for arguments of functions)."""
        return render_poly(self.poly(e))

    # leaves
    def leaf(self, e):
        if e.op == "num":
            return self.const(e.value)
        if e.op == "zeros":
            return Poly({}, e.shape)
        return self.atom(e)

    def literal(self, e):
        return self.atom(Expr(e.op, tuple(self.expr(a) for a in e.args), e.shape))

    # arithmetic
    def add_(self, e):
        return self.add([self.poly(a) for a in e.args], e.shape)

    def mul_(self, e):
        return self.mul([self.poly(a) for a in e.args], e.shape)

    def pow_(self, e):
        base, p = self.poly(e.args[0]), self.poly(e.args[1])
        if p.terms and (len(p.terms) > 1 or next(iter(p.terms)) != ()):
            return self.atom(Expr("pow", (render_poly(base), render_poly(p)), e.shape))
        return self.power(base, next(iter(p.terms.values()), Fraction(0)), e.shape)

    def power(self, base: Poly, p: Fraction, shape) -> Poly:
        if p == 0:
            return self.const(1, shape)
        if p == 1:
            return base
        if not base.terms:
            if p > 0:
                return base
            return self.atom(Expr("pow", (render_poly(base), E.num(p)), shape))
        if len(base.terms) == 1:
            (mono, c), = base.terms.items()
            if p.denominator == 1 and abs(p) * (c.numerator.bit_length()
                                                 + c.denominator.bit_length()) > MAX_COEFFICIENT_BITS:
                return self._pow_atom(base, p, shape)
            if p.denominator == 1:
                k = int(p)
                factors = [(b, q * k) for b, q in mono]
                coeff, m = self.mono_mul(tuple(factors), ())
                return self.fit(Poly({m: c ** k * coeff}, shape), shape)
            if c > 0 and len(mono) == 1 and mono[0][1] == 1:
                factors = [_power_factor(mono[0][0], p)]
                if c != 1:
                    factors.append((E.num(c), p))
                return self.fit(Poly({_mono(factors): Fraction(1)}, shape), shape)
            return self._pow_atom(base, p, shape)
        if p.denominator == 1 and 1 < p <= 4:
            return self.mul([base] * int(p), shape)
        return self._pow_atom(base, p, shape)

    def _pow_atom(self, base, p, shape):
        """(sum)^p as one factor with an exponent, so (a+b)^-1 * (a+b) cancels."""
        return self.fit(Poly({(_power_factor(render_poly(base), Fraction(p)),): Fraction(1)},
                             shape), shape)

    def T_(self, e):
        return self.transpose(self.poly(e.args[0]))

    # transposes, pushed to the leaves
    def transpose(self, p: Poly) -> Poly:
        if p.shape == SCALAR:
            return p
        shape = (p.shape[1], p.shape[0])
        out = []
        for mono, c in p.terms.items():
            parts = [self.power(self.t_base(b), q, (b.shape[1], b.shape[0])) for b, q in mono]
            out.append(self.mul([self.const(c)] + parts, shape))
        return self.add(out, shape)

    def t_base(self, b: Expr) -> Poly:
        """The transpose of one factor, as a canonical sum (memoised). The factors whose
        transposes it needs are done first, without recursion: a network's nested
        tanh(W@tanh(...)) transposes layer by layer, each layer once."""
        memo = self.t_memo
        got = memo.get(b)
        if got is None:
            stack, on_stack = [b], {b}
            while stack:
                n = stack[-1]
                if n in memo:
                    stack.pop()
                    continue
                pending = [d for d in self._t_needs(n) if d not in memo and d not in on_stack]
                if pending:
                    stack.extend(pending)
                    on_stack.update(pending)
                    continue
                stack.pop()
                memo[n] = self._t_base(n)
            got = memo[b]
        return got

    def _t_needs(self, b: Expr):
        """The factors whose transposes _t_base(b) takes (through transpose)."""
        op = b.op
        if b.shape == SCALAR or b.is_symmetric or op in ("eye", "T", "var", "ones", "vector",
                                                         "matrix") or \
                (op == "diag" and b.is_matrix):
            return ()
        if op == "matmul" or op in ELEMENTWISE or op in ("pow", "inv", "kron"):
            args = [a for a in b.args if a.shape != SCALAR]
        elif op == "add":
            args = [b]
        else:
            return ()
        return [f for a in args for mono in self.poly(a).terms for f, _ in mono]

    def _t_base(self, b: Expr) -> Poly:
        op, shape = b.op, (b.shape[1], b.shape[0])
        if b.shape == SCALAR or b.is_symmetric or op == "eye" or \
                (op == "diag" and b.is_matrix):
            return self.atom(b)
        if op == "T":
            return self.atom(b.args[0])
        if op in ("var", "ones"):
            return self.atom(Expr("T", (b,), shape))
        if op in ("vector", "matrix"):
            r, c = int(b.shape[0]), int(b.shape[1])
            entries = tuple(b.args[i * c + j] for j in range(c) for i in range(r))
            return self.atom(Expr("vector" if shape[1] == "1" and shape[0] != "1" else "matrix",
                                  entries, shape))
        if op == "matmul":
            return self.chain([self.transpose(self.poly(a)) for a in reversed(b.args)], shape)
        if op in ELEMENTWISE or op == "pow":
            args = tuple(self.expr(Expr("T", (a,), (a.shape[1], a.shape[0])))
                         if a.shape != SCALAR else a for a in b.args)
            return self.atom(Expr(op, args, shape))
        if op == "inv":
            return self.atom(Expr("inv", (self.expr(Expr("T", (b.args[0],),
                                                        b.args[0].shape)),), shape))
        if op == "kron":
            a1, a2 = (self.expr(Expr("T", (a,), (a.shape[1], a.shape[0]))) for a in b.args)
            return self.atom(Expr("kron", (a1, a2), shape))
        if op == "add":
            return self.transpose(self.poly(b))
        return self.atom(Expr("T", (b,), shape))

    # matrix products
    def matmul_(self, e):
        return self.chain([self.poly(a) for a in e.args], e.shape)

    def chain(self, polys, shape) -> Poly:
        """The product A@B@... of canonical sums, multiplied out."""
        out: dict = {}
        count = 1
        for p in polys:
            count *= max(1, len(p.terms))
            if count > MAX_TERMS:
                raise GiveUp
        for combo in _cartesian(*[list(p.terms.items()) for p in polys]):
            coeff = Fraction(1)
            scalars: list = []
            elements: list = []
            for p, (mono, c) in zip(polys, combo):
                coeff *= c
                if p.shape == SCALAR:
                    scalars.extend(mono)
                    continue
                sc = [f for f in mono if f[0].shape == SCALAR]
                arr = tuple(f for f in mono if f[0].shape != SCALAR)
                scalars.extend(sc)
                if len(arr) == 1 and arr[0][1] == 1 and arr[0][0].op == "matmul":
                    elements.extend(self.element(a) for a in arr[0][0].args)
                else:
                    elements.append(arr)
            k, term = self.chain_term(elements, shape)
            k2, m = self.mono_mul(tuple(scalars), term)
            total = coeff * k * k2
            out[m] = out.get(m, Fraction(0)) + total
        return self.fit(Poly({m: c for m, c in out.items() if c}, shape), shape)

    def element(self, a: Expr) -> tuple:
        """A chain element (a rendered mono) back as a mono."""
        p = self.poly(a)
        (mono, c), = p.terms.items()
        return mono

    def chain_term(self, elements, shape):
        """(coefficient, mono) of one product chain of monos, simplified."""
        coeff = Fraction(1)
        scalars: list = []
        els = [m for m in elements]
        changed = True
        while changed:
            changed = False
            if len(els) > 1:
                kept = [m for m in els if not (len(m) == 1 and m[0][0].op == "eye"
                                               and m[0][1] == 1)]
                if len(kept) != len(els):
                    els, changed = kept, True
                    continue
            for i in range(len(els) - 1):
                new = self.pair(els[i], els[i + 1])
                if new is not None:
                    k, sc, repl = new
                    coeff *= k
                    scalars.extend(sc)
                    els = els[:i] + repl + els[i + 2:]
                    changed = True
                    break
        if not els:
            mono = ((E.eye(shape[0]), Fraction(1)),) if shape != SCALAR else ()
            return coeff * self.mono_mul(tuple(scalars), mono)[0], \
                self.mono_mul(tuple(scalars), mono)[1]
        if len(els) == 1:
            k, m = self.mono_mul(tuple(scalars), els[0])
            return coeff * k, m
        if shape == SCALAR:
            els = self.orient(els)
        base = Expr("matmul", tuple(render_mono(m) for m in els), shape)
        k, m = self.mono_mul(tuple(scalars), ((base, Fraction(1)),))
        return coeff * k, m

    def orient(self, els):
        """A 1×1 product equals its transpose: u'@v as ones'@(u*v), else the smaller of
        the two orientations."""
        if len(els) == 2:
            r, c = els
            ones_r = len(r) == 1 and r[0][0].op == "T" and r[0][0].args[0].op == "ones"
            ones_c = len(c) == 1 and c[0][0].op == "ones"
            if ones_c and not ones_r:
                return [self.t_mono(c), self.t_mono(r)]
            if not ones_r and not ones_c:
                n = _mono_shape(c)[0]
                k, m = self.mono_mul(self.t_mono(r), c)
                if k == 1:
                    return [((Expr("T", (E.ones(n),), ("1", n)), Fraction(1)),), m]
            return els
        flipped = [self.t_mono(m) for m in reversed(els)]
        a = _key(Expr("matmul", tuple(render_mono(m) for m in els), SCALAR))
        b = _key(Expr("matmul", tuple(render_mono(m) for m in flipped), SCALAR))
        return els if a <= b else flipped

    def t_mono(self, mono) -> tuple:
        shape = _mono_shape(mono)
        p = self.transpose(Poly({mono: Fraction(1)}, shape))
        if len(p.terms) != 1 or next(iter(p.terms.values())) != 1:
            raise GiveUp
        return next(iter(p.terms))

    def pair(self, a, b):
        """A rewrite of two adjacent chain elements: (coefficient, scalars, replacement)."""
        one = lambda m: m[0][0] if len(m) == 1 and m[0][1] == 1 else None  # noqa: E731
        fa, fb = one(a), one(b)
        # ones(n)'@ones(n) = n
        if fa is not None and fb is not None and fa.op == "T" and fa.args[0].op == "ones" \
                and fb.op == "ones":
            n = fb.shape[0]
            if n.isdigit():
                return Fraction(int(n)), [], []
            return Fraction(1), [(E.dim(n), Fraction(1))], []
        # inv(M)@M = M@inv(M) = I
        if fa is not None and fa.op == "inv" and render_mono(b) == fa.args[0] or \
                fb is not None and fb.op == "inv" and render_mono(a) == fb.args[0]:
            return Fraction(1), [], []
        # diag(u)@diag(v) = diag(u*v); diag(u)@v = u*v; v'@diag(u) = v'*u'
        da = fa is not None and fa.op == "diag" and fa.is_matrix
        db = fb is not None and fb.op == "diag" and fb.is_matrix
        if da and db:
            k, m = self.mono_mul(self.element(fa.args[0]), self.element(fb.args[0]))
            return k, [], [((Expr("diag", (render_mono(m),), fa.shape), Fraction(1)),)]
        if da and _mono_shape(b)[1] == "1":
            k, m = self.mono_mul(self.element(fa.args[0]), b)
            return k, [], [m]
        if db and _mono_shape(a)[0] == "1":
            k, m = self.mono_mul(a, self.t_mono(self.element(fb.args[0])))
            return k, [], [m]
        return None

    # functions
    def func(self, e):
        """An element-wise or opaque function of canonical arguments."""
        return self.atom(Expr(e.op, tuple(self.expr(a) for a in e.args), e.shape))

    def opaque(self, e):
        return self.func(e)

    def softmax(self, e):
        """softmax(x) = exp(x)/sum(exp(x))."""
        a = e.args[0]
        ex = Expr("exp", (self.expr(a),), a.shape)
        total = Expr("pow", (Expr("sum", (ex,), SCALAR), E.num(-1)), SCALAR)
        return self.poly(Expr("mul", (ex, total), e.shape))

    def logsumexp(self, e):
        """logsumexp(x) = log(sum(exp(x)))."""
        a = e.args[0]
        ex = Expr("exp", (self.expr(a),), a.shape)
        return self.poly(Expr("log", (Expr("sum", (ex,), SCALAR),), SCALAR))

    def sqrt(self, e):
        return self.power(self.poly(e.args[0]), Fraction(1, 2), e.shape)

    def minmax(self, e):
        args = sorted((self.expr(a) for a in e.args), key=_key)
        return self.atom(Expr(e.op, tuple(args), e.shape))

    def compare(self, e):
        a, b = e.args
        if e.op in ("lt", "le"):
            a, b = b, a
        op = {"lt": "gt", "le": "ge"}.get(e.op, e.op)
        diff = self.add([self.poly(a), self.mul([self.const(-1), self.poly(b)], b.shape)],
                        e.shape)
        return self.atom(Expr(op, (render_poly(diff), E.ZERO), e.shape))

    def sum_(self, e):
        a = e.args[0]
        return self.poly(_sum_expr(a))

    def mean(self, e):
        a = e.args[0]
        n = _dim_expr(dim_mul(*a.shape))
        return self.poly(Expr("mul", (_sum_expr(a), Expr("pow", (n, E.num(-1)), SCALAR)),
                              SCALAR))

    def dot(self, e):
        a, b = e.args
        return self.poly(Expr("matmul", (Expr("T", (a,), (a.shape[1], a.shape[0])), b),
                              SCALAR))

    def norm(self, e):
        a = e.args[0]
        if a.shape == SCALAR:
            return self.poly(Expr("abs", (a,), SCALAR))
        at = Expr("T", (a,), (a.shape[1], a.shape[0]))
        if a.shape[1] == "1":
            sq = Expr("matmul", (at, a), SCALAR)
        elif a.shape[0] == "1":
            sq = Expr("matmul", (a, at), SCALAR)
        else:
            sq = Expr("tr", (Expr("matmul", (at, a), (a.shape[1], a.shape[1])),), SCALAR)
        return self.power(self.poly(sq), Fraction(1, 2), SCALAR)

    def tr(self, e):
        p = self.poly(e.args[0])
        out = []
        for mono, c in p.terms.items():
            sc = tuple(f for f in mono if f[0].shape == SCALAR)
            arr = tuple(f for f in mono if f[0].shape != SCALAR)
            out.append(self.mul([self.const(c), Poly({sc: Fraction(1)}, SCALAR),
                                 self.trace_of(arr)], SCALAR))
        return self.add(out, SCALAR)

    def trace_of(self, arr) -> Poly:
        if not arr:                                        # tr of a 1×1
            return self.const(1)
        if len(arr) == 1 and arr[0][1] == 1:
            b = arr[0][0]
            if b.op == "eye":
                return self.poly(_dim_expr(b.shape[0]))
            if b.op == "matmul":
                els = [self.element(a) for a in b.args]
                return self.trace_chain(els)
        t = self.t_mono(arr)
        a, bt = render_mono(arr), render_mono(t)
        best = a if _key(a) <= _key(bt) else bt
        return self.atom(Expr("tr", (best,), SCALAR))

    def trace_chain(self, els) -> Poly:
        """tr(ABC) = tr(BCA) = tr((ABC)'): the smallest rotation; a 1×1 rotation is the
        trace itself."""
        flipped = [self.t_mono(m) for m in reversed(els)]
        candidates = []
        for seq in (els, flipped):
            for i in range(len(seq)):
                rot = seq[i:] + seq[:i]
                rows, cols = _mono_shape(rot[0])[0], _mono_shape(rot[-1])[1]
                k, m = self.chain_term(list(rot), (rows, cols))
                if (rows, cols) == SCALAR:
                    candidates.append((0, Poly({m: k}, SCALAR) if k else Poly({}, SCALAR)))
                    continue
                sc = tuple(f for f in m if f[0].shape == SCALAR)
                arr = tuple(f for f in m if f[0].shape != SCALAR)
                if len(arr) == 1 and arr[0] == (E.eye(rows), 1):
                    core = self.poly(_dim_expr(rows))
                else:
                    core = self.atom(Expr("tr", (render_mono(arr),), SCALAR))
                candidates.append((1, self.mul([self.const(k), Poly({sc: Fraction(1)}, SCALAR),
                                                core], SCALAR)))
        candidates.sort(key=lambda kp: (kp[0], _key(render_poly(kp[1]))))
        return candidates[0][1]

    def det(self, e):
        p = self.poly(e.args[0])
        a, b = render_poly(p), render_poly(self.transpose(p))
        return self.atom(Expr(e.op, (a if _key(a) <= _key(b) else b,), SCALAR))

    def inv(self, e):
        a = e.args[0]
        if a.shape == SCALAR:
            return self.power(self.poly(a), Fraction(-1), SCALAR)
        p = self.poly(a)
        if len(p.terms) == 1:
            (mono, c), = p.terms.items()
            if c == 1 and len(mono) == 1 and mono[0][1] == 1 and mono[0][0].op == "inv":
                return self.poly(mono[0][0].args[0])
        return self.atom(Expr("inv", (render_poly(p),), e.shape))

    def diag(self, e):
        a = e.args[0]
        p = self.poly(a)
        if not e.is_matrix:                                # the diagonal of a matrix
            a1, b1 = render_poly(p), render_poly(self.transpose(p))
            return self.atom(Expr("diag", (a1 if _key(a1) <= _key(b1) else b1,), e.shape))
        out = []
        for mono, c in p.terms.items():                    # diag is linear
            sc = tuple(f for f in mono if f[0].shape == SCALAR)
            arr = tuple(f for f in mono if f[0].shape != SCALAR)
            if len(arr) == 1 and arr[0][0].op == "ones":
                d = self.atom(E.eye(e.shape[0]))
            else:
                d = self.atom(Expr("diag", (render_mono(arr),), e.shape))
            out.append(self.mul([self.const(c), Poly({sc: Fraction(1)}, SCALAR), d], e.shape))
        return self.add(out, e.shape)

    def vec(self, e):
        a = e.args[0]
        if a.shape[1] == "1":
            return self.poly(a)
        if a.shape[0] == "1":
            return self.transpose(self.poly(a))
        out = []
        for mono, c in self.poly(a).terms.items():
            # vec is linear and commutes with element-wise products and powers:
            # vec(2*a*X*Y^2) = 2*a*vec(X)*vec(Y)^2, vec(ones(m)@ones(n)') = ones(m*n)
            parts = [self.const(c)]
            for b, k in mono:
                if b.shape == SCALAR:
                    parts.append(self.atom(b, k))
                elif not _is_ones_like(b):
                    parts.append(self.atom(Expr("vec", (b,), e.shape), k))
            out.append(self.mul(parts, e.shape))
        return self.add(out, e.shape)

    def kron(self, e):
        a, b = (self.poly(x) for x in e.args)
        out = []
        for (m1, c1), (m2, c2) in _cartesian(a.terms.items(), b.terms.items()):
            s1 = tuple(f for f in m1 if f[0].shape == SCALAR)
            s2 = tuple(f for f in m2 if f[0].shape == SCALAR)
            r1 = tuple(f for f in m1 if f[0].shape != SCALAR)
            r2 = tuple(f for f in m2 if f[0].shape != SCALAR)
            if not r1 or not r2:
                core = Poly({r1 or r2: Fraction(1)}, e.shape)
            else:
                core = self.atom(Expr("kron", (render_mono(r1), render_mono(r2)), e.shape))
            out.append(self.mul([self.const(c1 * c2), Poly({s1 + s2: Fraction(1)}, SCALAR),
                                 core], e.shape))
        return self.add(out, e.shape)


def _power_factor(base: Expr, p: Fraction):
    """A factor base^p. A fractional power is a base of its own, so exponents never add
    up across it: sqrt(x)*sqrt(x) is not x (it is undefined for x < 0)."""
    if p.denominator == 1:
        return (base, p)
    return (Expr("pow", (base, E.num(p)), base.shape), Fraction(1))


def _sum_expr(a: Expr) -> Expr:
    if a.shape == SCALAR:
        return a
    r, c = a.shape
    out = a
    if r != "1":
        out = Expr("matmul", (Expr("T", (E.ones(r),), ("1", r)), out), ("1", c))
    if c != "1":
        out = Expr("matmul", (out, E.ones(c)), SCALAR)
    return out


ELEMENTWISE = ("sin", "cos", "tan", "exp", "log", "tanh", "sigmoid", "relu", "abs", "sign",
               "max", "min", "gt", "ge", "lt", "le", "sqrt")

_CANON = {
    **{op: _Canon.leaf for op in ("num", "var", "dim", "const", "ones", "eye", "zeros",
                                  "commutation")},
    "vector": _Canon.literal, "matrix": _Canon.literal,
    "add": _Canon.add_, "mul": _Canon.mul_, "pow": _Canon.pow_, "T": _Canon.T_,
    "matmul": _Canon.matmul_,
    **{op: _Canon.func for op in ("sin", "cos", "tan", "exp", "log", "tanh", "sigmoid",
                                  "relu", "abs", "sign")},
    "softmax": _Canon.softmax, "logsumexp": _Canon.logsumexp,
    "sqrt": _Canon.sqrt, "max": _Canon.minmax, "min": _Canon.minmax,
    **{op: _Canon.compare for op in ("gt", "ge", "lt", "le")},
    "sum": _Canon.sum_, "mean": _Canon.mean, "dot": _Canon.dot, "norm": _Canon.norm,
    "tr": _Canon.tr, "det": _Canon.det, "logdet": _Canon.det, "inv": _Canon.inv,
    "diag": _Canon.diag, "vec": _Canon.vec, "kron": _Canon.kron,
}
