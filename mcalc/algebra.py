"""The element-wise part of an expression as ordinary commutative algebra.

A cluster is a maximal subtree of element-wise sums, products and numeric powers; what
hangs below it (a matrix product, a function call, x^x) is an atom. The cluster is read as
a Laurent polynomial over its atoms — a sum with a negative or fractional power becomes
an atom of its own, a "P-atom" that remembers its polynomial — then brought over a common
denominator and cancelled (exact polynomial division by each P-atom), and written back
three ways: as it was, with common factors pulled out, and expanded. The shortest in
tokens wins (names, numbers and operators count; brackets do not); ties keep the form as
it was, then the factored one. Everything is iterative and bounded: a cluster whose
expansion passes MAX_TERMS terms is left as it was.

Coefficients and exponents are ints, Fractions only when not integral: int arithmetic is
C, Fraction's is Python (and the polynomials' numbers are nearly all integers). Division
goes through `ratio`, which stays exact.
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd

from mcalc import expr as E
from mcalc import identities as ID
from mcalc.expr import Expr

MAX_TERMS = 48
MAX_DIVISION_STEPS = 200


def is_cluster(e: Expr) -> bool:
    return e.op in ("add", "mul") or (e.op == "pow" and e.args[1].op == "num")


class TooBig(Exception):
    pass


def rational(v):
    """v (an int or a Fraction) as an int when it is one."""
    return v._numerator if type(v) is Fraction and v._denominator == 1 else v


def ratio(a, b):
    """a / b exactly: an int when b divides a, else a Fraction."""
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        return Fraction(a, b) if r else q
    return rational(Fraction(a) / b)


def _int_power(c, k: int):
    """c^k exactly for an integer k (an int to a negative power is a Fraction)."""
    return c ** k if k >= 0 else ratio(1, c ** -k)


# ---- Laurent polynomials: {monomial: coefficient}, a monomial ((atom index, exponent), ...)

def mono_mul(a: tuple, b: tuple, k=1) -> tuple:
    """a * b^k."""
    if not b:
        return a
    if not a and k == 1:                        # (monomials are sorted, without zeros)
        return b
    d = dict(a)
    for i, e in b:
        v = d.get(i, 0) + e * k
        if v:
            d[i] = v
        else:
            del d[i]
    return tuple(sorted(d.items()))


def _padd(p: dict, q: dict, k=1) -> dict:
    out = dict(p)
    for m, c in q.items():
        v = out.get(m, 0) + c * k
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


def _pacc(out: dict, keep: tuple, q: dict) -> None:
    """out += q*keep (keep a monomial), in place: _padd copies its sum, which summing term
    by term into one polynomial would do at every term."""
    for m, c in q.items():
        if keep:
            m = mono_mul(m, keep)
        if m in out:
            v = out[m] + c
            if v:
                out[m] = v
            else:
                del out[m]
        elif c:
            out[m] = c


def _pmul(p: dict, q: dict) -> dict:
    out: dict = {}
    for m1, c1 in p.items():
        for m2, c2 in q.items():
            m = mono_mul(m1, m2)
            v = out.get(m, 0) + c1 * c2
            if v:
                out[m] = v
            else:
                out.pop(m, None)
    if len(out) > MAX_TERMS:
        raise TooBig
    return out


def _grlex(m: tuple):
    return (sum(e for _, e in m), tuple((-i, e) for i, e in m))


def _pdiv(n: dict, p: dict) -> dict | None:
    """n / p when p divides n exactly (both with non-negative exponents), else None."""
    lead = max(p, key=_grlex)
    lc = p[lead]
    r, q = dict(n), {}
    for _ in range(MAX_DIVISION_STEPS):
        if not r:
            return q
        m = max(r, key=_grlex)
        t = mono_mul(m, lead, -1)
        if any(e < 0 for _, e in t):
            return None
        c = ratio(r[m], lc)
        q[t] = q.get(t, 0) + c
        r = _padd(r, {mono_mul(mp, t): cp for mp, cp in p.items()}, -c)
    return None


class Atoms:
    """Atom index <-> Expr, or <-> a P-atom's polynomial (a canonical primitive sum)."""

    def __init__(self):
        self.index: dict = {}
        self.items: list = []

    def of(self, key, item) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.items)
            self.items.append(item)
        return i

    def expr(self, e: Expr) -> int:
        return self.of(e, e)

    def poly(self, p: dict) -> int:
        return self.of(("P", frozenset(p.items())), p)


def content(p: dict) -> tuple[Fraction, tuple]:
    """(c, m) with p = c*m*q, q primitive with integer coefficients and no monomial factor;
    the sign of c leaves q with no more negative than positive coefficients."""
    monos = list(p)
    mins = dict(monos[0]) if monos else {}      # atom -> least exponent so far, in one pass
    for m in monos[1:]:
        d = dict(m)
        for i, e in mins.items():
            got = d.get(i, 0)
            if got < e:
                mins[i] = got
        for i, e in m:
            if i not in mins:                   # (absent from the monomials before: 0)
                mins[i] = min(e, 0)
    m = tuple(sorted((i, e) for i, e in mins.items() if e))
    num, den, negatives = 0, 1, 0               # (one loop, ints in C; a Fraction by its
    for c in p.values():                        # slots: its properties are Python calls)
        if type(c) is int:
            num = gcd(num, c)
            negatives += 1 if c < 0 else -1
        else:
            num = gcd(num, c._numerator)
            d = c._denominator
            den = den * d // gcd(den, d)
            negatives += 1 if c._numerator < 0 else -1
    c = Fraction(num, den) if den != 1 else num
    if negatives > 0:                           # more negative coefficients than positive
        c = -c
    return c, m


def power(p: dict, k: Fraction, atoms: Atoms) -> dict:
    """p^k as a Laurent polynomial (a sum to a negative or fractional power is a P-atom)."""
    k = rational(k)
    if len(p) == 1:
        (m, c), = p.items()
        if type(k) is int:
            return {tuple((i, e * k) for i, e in m): _int_power(c, k)}
        if c == 1:
            return {tuple((i, e * k) for i, e in m): 1}
    elif not p:
        if k <= 0:
            raise TooBig                                 # 0^-k: left as written
        return {}
    if type(k) is not int:
        return {((atoms.poly(p), k),): 1}
    if k >= 0:
        out = {(): 1}
        for _ in range(k):
            out = _pmul(out, p)
        return out
    c, m = content(p)
    q = {mono_mul(mm, m, -1): ratio(v, c) for mm, v in p.items()}
    i = atoms.poly(q)
    return {mono_mul(((i, k),), m, k): _int_power(c, k)}


def to_poly(root: Expr, atoms: Atoms, big: set | None = None) -> dict:
    """The cluster at root as a Laurent polynomial, walked without recursion. `big`, kept
    across calls, holds clusters known to be TooBig: a cluster with one of them inside is
    too (its walk reaches it), so a chain that grows by a node per step costs a step each."""
    done: dict = {}
    stack = [root]
    while stack:
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        if big is not None and node in big:
            big.add(root)
            raise TooBig
        op = node.op                            # (is_cluster, inline: a call a node)
        inner = op == "add" or op == "mul" or op == "pow" and node.args[1].op == "num"
        pending = False
        if inner:
            for a in node.args:                 # (a loop: a comprehension is a call)
                op = a.op
                if a not in done and (op == "add" or op == "mul" or
                                      op == "pow" and a.args[1].op == "num"):
                    stack.append(a)
                    pending = True
        if pending:
            continue
        stack.pop()
        try:
            done[node] = _node_poly(node, done, atoms) if inner else _leaf_poly(node, atoms)
        except TooBig:
            if big is not None:
                big.update((node, root))
            raise
    return done[root]


def all_ones(e: Expr) -> bool:
    """ones(n), or the all-ones matrix ones(m)@ones(n)'."""
    return e.op == "ones" or (e.op == "matmul" and len(e.args) == 2 and e.args[0].op == "ones"
                              and e.args[1].op == "T" and e.args[1].args[0].op == "ones")


def _leaf_poly(e: Expr, atoms: Atoms) -> dict:
    op = e.op
    if op == "num":                             # (rational(), inline)
        v = e.value
        return {(): v._numerator if v._denominator == 1 else v} if v._numerator else {}
    if op == "zeros":
        return {}
    if (op == "ones" or op == "matmul") and all_ones(e):   # element by element, 1 (the
        return {(): 1}                                      # cluster keeps its shape)
    return {((atoms.expr(e), 1),): 1}


def _node_poly(e: Expr, done: dict, atoms: Atoms) -> dict:
    # (an operand in `done` is a cluster, to_poly's walk has been there; any other an atom)
    parts = [done[a] if a in done else _leaf_poly(a, atoms) for a in e.args]
    if e.op == "add":
        out: dict = {}
        for p in parts:
            _pacc(out, (), p)
        if len(out) > MAX_TERMS:
            raise TooBig
        return out
    if e.op == "mul":
        out = {(): 1}
        for p in parts:
            out = _pmul(out, p)
        return out
    return power(parts[0], e.args[1].value, atoms)


# ---- common denominator and cancelling ----------------------------------------------

def combine(t: dict, atoms: Atoms) -> tuple[dict, dict]:
    """t as (numerator polynomial, {atom: exponent of the denominator}), cancelled."""
    den: dict = {}
    for m in t:
        for i, e in m:
            if e < 0 and -e > den.get(i, 0):
                den[i] = -e
    dm = tuple(sorted(den.items()))
    n: dict = {}
    for m, c in t.items():                 # times the denominator; P-atoms left over expand
        m = mono_mul(m, dm)
        part = {(): c}
        keep = []
        for i, e in m:
            item = atoms.items[i]
            if isinstance(item, dict) and e.denominator == 1:
                part = _pmul(part, power(item, e, atoms))
            else:
                keep.append((i, e))
        _pacc(n, tuple(keep), part)
    if len(n) > MAX_TERMS:
        raise TooBig
    for i, k in list(den.items()):
        item = atoms.items[i]
        if isinstance(item, dict):
            while k > 0 and k.denominator == 1 and n:
                q = _pdiv(n, item)
                if q is None:
                    break
                n, k = q, k - 1
        elif n:
            g = min(min(dict(m).get(i, 0) for m in n), k)
            if g > 0:
                n = {mono_mul(m, ((i, g),), -1): c for m, c in n.items()}
                k -= g
        den[i] = k
    return n, {i: k for i, k in den.items() if k}


# ---- identities that need the whole product ----------------------------------------

def softmax_terms(t: dict, atoms: Atoms) -> dict | None:
    """exp(x)*sum(exp(x))^-1 -> softmax(x) in every term where both stand."""
    for item in atoms.items:
        if type(item) is Expr and item.op == "sum":
            break
    else:
        return None                     # no sum among the atoms (most clusters): no term read
    changed = False
    out: dict = {}
    for m, c in t.items():
        d = dict(m)
        for i, e in m:
            item = atoms.items[i]
            if isinstance(item, Expr) and item.op == "sum" and e < 0 \
                    and item.args[0].op == "exp" and item.args[0].is_column:
                j = atoms.index.get(item.args[0])
                if j is not None and d.get(j, 0) > 0 and d.get(i, 0) < 0:
                    s = atoms.expr(Expr("softmax", (item.args[0].args[0],), item.args[0].shape))
                    d[j] -= 1
                    d[i] += 1
                    d[s] = d.get(s, 0) + 1
                    changed = True
        mm = tuple(sorted((i, e) for i, e in d.items() if e))
        out[mm] = out.get(mm, 0) + c
    return {m: c for m, c in out.items() if c} if changed else None


def relu_step_terms(t: dict, atoms: Atoms) -> dict | None:
    """relu(u)^k*(u > 0) -> u^k*(u > 0) in every term where both stand."""
    relus = {i: a.args[0] for i, a in enumerate(atoms.items)
             if isinstance(a, Expr) and a.op == "relu"}
    if not relus:                       # (most clusters: no step looked for)
        return None
    steps = {(a.args[0], i) for i, a in enumerate(atoms.items) if isinstance(a, Expr)
             and a.op == "gt" and (E.is_number(a.args[1], 0) or a.args[1].op == "zeros")}
    pairs = {i: u for i, u in relus.items() if any(v is u for v, _ in steps)}
    if not pairs:
        return None
    out: dict = {}
    changed = False
    for m, c in t.items():
        part = {(): c}
        keep = []
        present = {i for i, _ in m}
        for i, e in m:
            u = pairs.get(i)
            if u is not None and e > 0 and e.denominator == 1 and \
                    any(v is u and j in present for v, j in steps):
                part = _pmul(part, power(to_poly(u, atoms), e, atoms))
                changed = True
            else:
                keep.append((i, e))
        _pacc(out, tuple(keep), part)
    return out if changed else None


def logistic_terms(t: dict, atoms: Atoms, sigmoid_of, flip: bool) -> dict | None:
    """With a P-atom 1 + exp(w) in t: exp(w) and (1 + exp(w))^-1 in terms of
    s = sigmoid(±w) — the sign that writes s's argument without a minus, or (flip) the
    other one."""
    subs: dict = {}
    for i, item in enumerate(list(atoms.items)):
        if not isinstance(item, dict) or len(item) != 2 or item.get(()) != 1:
            continue
        (m, c), = [(m, c) for m, c in item.items() if m]
        if c != 1 or len(m) != 1 or m[0][1] != 1:
            continue
        j = m[0][0]
        ex = atoms.items[j]
        if not isinstance(ex, Expr) or ex.op != "exp":
            continue
        arg, negative = sigmoid_of(ex.args[0], flip)
        s = atoms.expr(Expr("sigmoid", (arg,), ex.shape))
        one_minus = {(): 1, ((s, 1),): -1}
        sp = {((s, 1),): 1}
        if negative:                       # exp(-u) = (1 - s)/s, 1/(1 + exp(-u)) = s
            subs[j] = _pmul(one_minus, {((s, -1),): 1})
            subs[i] = power(sp, -1, atoms)
        else:                              # exp(u) = s/(1 - s), 1/(1 + exp(u)) = 1 - s
            subs[j] = _pmul(sp, power(one_minus, -1, atoms))
            subs[i] = power(one_minus, -1, atoms)
    if not subs or not any(i in subs for m in t for i, _ in m):
        return None
    out: dict = {}
    for m, c in t.items():
        part = {(): c}
        keep = []
        for i, e in m:
            if i in subs and e.denominator == 1:
                part = _pmul(part, power(subs[i], e, atoms))
            else:
                keep.append((i, e))
        _pacc(out, tuple(keep), part)
    return out


# ---- length in tokens ----------------------------------------------------------------

def _number_tokens(v: Fraction) -> int:
    d = v._denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return (1 if d == 1 else 3) + (v._numerator < 0)


def tokens(root: Expr, memo: dict) -> int:
    """Tokens of the printed form — names, numbers, operators; brackets and commas free —
    read off the tree (the printers sit above the simplifier). Numbers' values are
    Fractions, tested by their slots (`_numerator`): their operators are Python calls."""
    stack = [root]
    while stack:                                  # E.postorder, inline (a call a node less)
        e = stack[-1]
        if e in memo:
            stack.pop()
            continue
        pending = False
        for x in e.args:
            if x not in memo:
                stack.append(x)
                pending = True
        if pending:
            continue
        stack.pop()
        a = list(map(memo.__getitem__, e.args))          # (in C: no comprehension call)
        op = e.op
        if op == "num":
            n = _number_tokens(e.value)
        elif op in ("ones", "eye"):
            n = 2
        elif not e.args:
            n = 1
        elif op == "mul":
            n = len(a) - 1 + sum(a)
            for f, k in zip(e.args, a):
                if f.op == "num" and f.value._denominator == 1 and \
                        f.value._numerator in (1, -1):
                    n -= 1 + k - (f.value._numerator < 0)    # -x: the 1 is not written
                elif f.op == "pow" and f.args[1].op == "num" and \
                        f.args[1].value._numerator < 0:
                    n -= 2                               # x/y, not x*1/y
        elif op == "pow":
            k = e.args[1]
            v = k.value
            n = a[0] + (a[1] + 1 if k.op != "num" or v._numerator > 0 else  # x^k, 1/x, 1/x^k
                        2 if v._numerator == -1 and v._denominator == 1 else
                        3 + _number_tokens(-v))
        elif op == "add":                                # a - b, not a + -b
            n = len(a) - 1 + sum(a)
            for t in e.args[1:]:
                if t.op == "num" and t.value._numerator < 0 or t.op == "mul" and \
                        t.args[0].op == "num" and t.args[0].value._numerator < 0:
                    n -= 1
        elif op == "matmul":
            n = len(a) - 1 + sum(a)
        elif op == "T":
            n = a[0] + 1
        elif op in ("gt", "ge", "lt", "le"):
            n = a[0] + a[1] + 1
        elif op in ("vector", "matrix"):
            n = sum(a)
        else:
            n = 1 + sum(a)
        memo[e] = n
    return memo[root]


# ---- rational roots of a polynomial in one atom --------------------------------------

def linear_factors(p: dict) -> tuple[list[dict], dict] | None:
    """p (in one atom t, integer exponents, degree 2 to 4) as (factors a + b*t with a > 0,
    the rest), from its rational roots; None when it has none. In ints (Fraction's
    arithmetic is Python code): by Gauss's lemma every quotient has integer coefficients."""
    t, by_power = None, {}                  # the atom; exponent -> integer coefficient
    for m, c in p.items():
        k = 0
        if m:
            if len(m) > 1:
                return None
            i, k = m[0]
            if t is None:
                t = i
            elif i != t:
                return None
            if type(k) is not int:
                if k.denominator != 1:
                    return None
                k = int(k)
            if k < 0:
                return None
        if type(c) is not int:
            if c.denominator != 1:
                return None
            c = int(c)
        by_power[k] = c
    if t is None:
        return None
    degree = max(by_power)
    if not 2 <= degree <= 4 or not by_power.get(0):
        return None
    coeffs = [by_power.get(k, 0) for k in range(degree + 1)]    # coeffs[k] of t^k
    factors = []
    while len(coeffs) > 1:
        root = _rational_root(coeffs)
        if root is None:
            break
        r, q = root.numerator, root.denominator
        # coeffs = (r - q*t)*quotient: quotient[k - 1] = (r*quotient[k] - coeffs[k])/q
        quotient = [0] * (len(coeffs) - 1)
        below = 0
        for k in range(len(coeffs) - 1, 0, -1):
            below = quotient[k - 1] = (r * below - coeffs[k]) // q
        coeffs = quotient
        factors.append({(): r, ((t, 1),): -q})
    if not factors:
        return None
    for f in factors:                                    # a + b*t with a > 0
        if f[()] < 0:
            for m in f:
                f[m] = -f[m]
            coeffs = [-c for c in coeffs]
    rest = {(((t, k),) if k else ()): c for k, c in enumerate(coeffs) if c}
    return factors, rest


def _rational_root(cs: list[int]) -> Fraction | None:
    """A root p/q of the integer polynomial Σ cs[k] t^k (cs[0] ≠ 0), by the rational root
    theorem: p divides cs[0] and q divides cs[-1] (divisors up to 64 tried). Tested in
    integers as q^n P(p/q) = Σ cs[k] p^k q^(n-k) = 0: Fraction arithmetic here was the
    slowest part of simplifying 6*(1 - y^2)."""
    n = len(cs) - 1
    ps = [d for d in range(1, min(abs(cs[0]), 64) + 1) if cs[0] % d == 0]
    qs = [d for d in range(1, min(abs(cs[-1]), 64) + 1) if cs[-1] % d == 0]
    for q in qs:
        for p in ps:
            if gcd(p, q) != 1:                  # p/q met already in lowest terms
                continue
            for r in (p, -p):
                if sum(c * r ** k * q ** (n - k) for k, c in enumerate(cs)) == 0:
                    return Fraction(r, q)
    return None
