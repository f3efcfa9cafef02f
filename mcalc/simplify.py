"""Simplification to textbook form — the one module that owns it.

`simplify(e)` rebuilds e bottom-up through canonical constructors (memoised, so shared
subtrees are simplified once). Each rewrite that fires is recorded by its name in
REWRITES, so the derivation can say which identities turned `ones(n)'@diag(x)` into `x'`.
"""
from __future__ import annotations

from fractions import Fraction

from mcalc import expr as E
from mcalc.expr import Expr
from mcalc.types import SCALAR, dim_mul

MAX_FOLDED_POWER = 64          # fold numeric powers only while the result stays small
MAX_FOLDED_BITS = 256

REWRITES = (
    ("fold constants", "numbers combined, 0 and 1 dropped, x*x = x^2, 1⊗v = v", "algebra"),
    ("like terms", "2x + x = 3x", "algebra"),
    ("1ᵀdiag(v) = vᵀ", "ones(n)'@diag(v) = v', diag(v)@ones(n) = v", "P&H §4.4, §5"),
    ("diag(a)diag(b) = diag(a⊗b)", "diag(a)@diag(b) = diag(a*b)", "P&H §4.5.3"),
    ("diag(a)v = a⊗v", "diag(a)@v = a*v, v'@diag(a) = (a*v)'", "P&H §4.2"),
    ("1ᵀv = sum(v)", "ones(n)'@v = sum(v), ones(m)'@M@ones(n) = sum(M)", "P&H §4.4"),
    ("transpose rules", "(AB)' = B'A', (A')' = A, S' = S (S symmetric), (A + B)' = A' + B'",
     "MC §1"),
    ("identity", "I@A = A", "algebra"),
    ("associativity", "A@(B@C) = A@B@C", "algebra"),
    ("factor common operand", "A@x + B@x = (A + B)@x", "algebra"),
    ("scalars out of products", "(cA)@B = c(A@B)", "algebra"),
    ("exp(a)/(1 + exp(a)) = sigmoid(a)", "the logistic function", "004 §6.3"),
    ("mixed product (A⊗B)(C⊗D) = AC⊗BD", "kron(A, B)@kron(C, D) = kron(A@C, B@D)", "MC §10.2"),
    ("commutation laws", "commutation(m, n)' = commutation(n, m); commutation(m, n)@commutation("
     "n, m) = I; kron(A, B)@commutation(n, q) = commutation(m, p)@kron(B, A) (A m×n, B p×q); "
     "commutation(m, n)@vec(A) = vec(A') (A m×n)", "Magnus & Neudecker §3.7"),
    ("diagonal embedding", "kron(u', eye(n))@diag(vec(M))@kron(ones(n), eye(n)) = diag(M@u)",
     "Magnus & Neudecker"),
    ("Kronecker laws", "kron(A, B)' = kron(A', B'); kron(A, B)*kron(C, D) = kron(A*C, B*D); "
     "kron(c, B) = c*B (c scalar)", "MC §10.2"),
)


class Simplifier:
    def __init__(self):
        self.memo: dict[Expr, Expr] = {}
        self.fired: list[str] = []

    def note(self, rule: str):
        if rule not in self.fired:
            self.fired.append(rule)

    def __call__(self, e: Expr) -> Expr:
        got = self.memo.get(e)
        if got is not None:
            return got
        if e.op in E.LEAVES:
            out = e
        else:
            args = [self(a) for a in e.args]
            out = _BUILD.get(e.op, _rebuild)(self, e, args)
        self.memo[e] = out
        self.memo[out] = out
        return out


def simplify(e: Expr, fired: list | None = None) -> Expr:
    s = Simplifier()
    out = s(e)
    if fired is not None:
        fired.extend(r for r in s.fired if r not in fired)
    return out


def _rebuild(s, e, args):
    return e if tuple(args) == e.args else Expr(e.op, tuple(args), e.shape, e.name, e.value)


# ---- a stable order for commutative operands ------------------------------------

_OP_RANK = {"num": 0, "dim": 1, "const": 2, "var": 3}
_key_memo: dict[Expr, tuple] = {}


def order_key(e: Expr) -> tuple:
    k = _key_memo.get(e)
    if k is None:
        rank = 5 if e.value == "differential" else _OP_RANK.get(e.op, 4)   # dX last
        k = (rank, e.op, e.name or "", str(e.value or ""),
             tuple(order_key(a) for a in e.args[:4]), e.size)
        if len(_key_memo) > 200_000:
            _key_memo.clear()
        _key_memo[e] = k
    return k


# ---- constructors ------------------------------------------------------------------

def _all_ones(e: Expr) -> bool:
    """ones(n), or the all-ones matrix ones(m)@ones(n)'."""
    return e.op == "ones" or (e.op == "matmul" and len(e.args) == 2 and e.args[0].op == "ones"
                              and _is_ones_row(e.args[1]))


def coeff_and_rest(e: Expr) -> tuple[Fraction, Expr | None]:
    """2*x -> (2, x); x -> (1, x); 3 -> (3, None)."""
    if e.op == "num":
        return e.value, None
    if e.op == "mul" and e.args[0].op == "num":
        rest = e.args[1:]
        return e.args[0].value, rest[0] if len(rest) == 1 else Expr("mul", rest, e.shape)
    return Fraction(1), e


def scale(c: Fraction, e: Expr | None, shape) -> Expr:
    if e is None:
        return E.num(c) if shape == SCALAR else mul_(None, [E.num(c), E.ones(shape[0])]) \
            if shape[1] == "1" else E.num(c)
    if c == 1:
        return e
    if c == 0:
        return E.zeros(e.shape)
    if e.op == "mul":
        return Expr("mul", (E.num(c),) + e.args, e.shape)
    return Expr("mul", (E.num(c), e), e.shape)


def add_(s, terms, shape=None) -> Expr:
    flat = []
    for t in terms:
        if t.op == "add":
            flat.extend(t.args)
        elif not (t.op == "zeros" or E.is_number(t, 0)):
            flat.append(t)
    shape = shape or _broadcast([t.shape for t in terms])
    if not flat:
        return E.zeros(shape)
    combined: dict = {}
    for t in flat:
        c, rest = coeff_and_rest(t)
        key = rest if rest is None or rest.shape == shape or rest.is_scalar else ("b", rest)
        if key in combined:
            if s:
                s.note("like terms")
            combined[key] = (combined[key][0] + c, rest)
        else:
            combined[key] = (c, rest)
    out = []
    numbers = Fraction(0)
    for c, rest in combined.values():
        if rest is None:
            numbers += c
        elif c != 0:
            out.append(scale(c, rest, rest.shape))
    if numbers:
        out.append(E.num(numbers))
    out.sort(key=_transposes)
    if out and coeff_and_rest(out[0])[0] < 0:             # 1 - x rather than -x + 1
        first_positive = next((t for t in out if coeff_and_rest(t)[0] > 0), None)
        if first_positive is not None:
            out.remove(first_positive)
            out.insert(0, first_positive)
    if s and len(flat) > 1:
        out = _factor_common(s, out, shape)
    if not out:
        return E.zeros(shape)
    if len(out) == 1 and out[0].shape == shape:
        return out[0]
    if len(out) == 1:                                     # a scalar spread over a vector
        return mul_(s, [out[0], E.ones(shape[0])], shape) if shape[1] == "1" else \
            Expr("add", (out[0], E.zeros(shape)), shape)
    return Expr("add", tuple(out), shape)


def _transposes(e: Expr) -> int:
    """How many transposed matrices a term shows: A + A' rather than A' + A."""
    if e.size >= 40:
        return 0
    return (e.op == "T" and e.is_matrix) + sum(_transposes(a) for a in e.args[:3])


def _broadcast(shapes):
    big = [x for x in shapes if x != SCALAR]
    return big[0] if big else SCALAR


def _factor_common(s, terms, shape):
    """A@x + B@x -> (A + B)@x, and x'@A + x'@B -> x'@(A + B)."""
    for side in (-1, 0):
        groups: dict = {}
        for i, t in enumerate(terms):
            c, rest = coeff_and_rest(t)
            if rest is not None and rest.op == "matmul":
                groups.setdefault(rest.args[side], []).append(i)
        for operand, idx in groups.items():
            if len(idx) < 2:
                continue
            others = []
            for i in idx:
                c, rest = coeff_and_rest(terms[i])
                remaining = rest.args[:-1] if side == -1 else rest.args[1:]
                inner = remaining[0] if len(remaining) == 1 else matmul_(None, list(remaining))
                others.append(scale(c, inner, inner.shape))
            summed = add_(None, others)
            pair = [summed, operand] if side == -1 else [operand, summed]
            s.note("factor common operand")
            merged = matmul_(s, pair)
            rest_terms = [t for i, t in enumerate(terms) if i not in idx]
            return _factor_common(s, rest_terms + [merged], shape) if rest_terms else [merged]
    return terms


def mul_(s, factors, shape=None) -> Expr:
    flat = []
    for f in factors:
        flat.extend(f.args if f.op == "mul" else (f,))
    flat = _kron_hadamard(s, flat)
    shape = shape or _broadcast([f.shape for f in flat])
    coeff = Fraction(1)
    rest = []
    for f in flat:
        if f.op == "num":
            coeff *= f.value
        elif f.op == "zeros":
            return E.zeros(shape)
        elif _all_ones(f) and f.shape == shape and any(g.shape == shape and g is not f
                                                        for g in flat):
            if s:
                s.note("fold constants")        # ones(n)*v = v
        else:
            rest.append(f)
    if coeff == 0:
        return E.zeros(shape)
    # x^a * x^b = x^(a+b) for equal bases of one shape
    powers: dict = {}
    for f in rest:
        base, p = (f.args[0], f.args[1]) if f.op == "pow" else (f, E.ONE)
        if base in powers:
            if s:
                s.note("fold constants")
            powers[base] = add_(s, [powers[base], p])
        else:
            powers[base] = p
    _logistic(s, powers)
    rest = [b if E.is_number(p, 1) else pow_(s, b, p) for b, p in powers.items()
            if not E.is_number(p, 0)]
    rest = [f for f in rest if not E.is_number(f, 1)]
    rest.sort(key=lambda f: (0 if f.is_scalar else 1, order_key(f)))
    if coeff != 1 or not rest:
        rest.insert(0, E.num(coeff))
    if len(rest) == 1:
        only = rest[0]
        if only.shape != shape:                # a scalar broadcast over ones
            return Expr("mul", (only, E.ones(shape[0])), shape) if shape[1] == "1" else only
        return only
    return Expr("mul", tuple(rest), shape)


def _logistic(s, powers: dict) -> None:
    """exp(a)/(1 + exp(a)) = sigmoid(a), in place on a product's {base: exponent}."""
    for base, p in list(powers.items()):
        if base.op == "exp" and E.is_number(p, 1):
            denominator = add_(None, [E.ONE, base])
            if E.is_number(powers.get(denominator, E.ZERO), -1):
                del powers[base], powers[denominator]
                powers[Expr("sigmoid", base.args, base.shape)] = E.ONE
                if s:
                    s.note("exp(a)/(1 + exp(a)) = sigmoid(a)")


def pow_(s, base, p) -> Expr:
    if E.is_number(p, 1) or base.op == "ones":
        return base
    if base.op == "zeros" and p.op == "num" and p.value > 0:
        return base
    if E.is_number(p, 0):
        return E.ONE if base.is_scalar else scale(Fraction(1), None, base.shape)
    if base.op == "num" and p.op == "num" and p.value.denominator == 1 \
            and abs(p.value) <= MAX_FOLDED_POWER and (base.value != 0 or p.value > 0) \
            and max(abs(base.value.numerator), base.value.denominator).bit_length() \
            * abs(p.value) <= MAX_FOLDED_BITS:
        if s:
            s.note("fold constants")
        return E.num(base.value ** int(p.value))
    if base.op == "pow" and p.op == "num" and base.args[1].op == "num" \
            and p.value.denominator == 1:
        return pow_(s, base.args[0], E.num(base.args[1].value * p.value))
    if base.op == "mul" and p.op == "num" and p.value.denominator == 1 and base.is_scalar:
        return mul_(s, [pow_(s, f, p) for f in base.args])
    return Expr("pow", (base, p), base.shape)


def T_(s, a) -> Expr:
    if a.op == "commutation":
        return _commutation_T(s, a)
    if a.op == "kron":
        return _kron(s, T_(s, a.args[0]), T_(s, a.args[1]))
    if a.is_scalar or a.op in ("eye", "diag") and a.is_matrix or a.is_symmetric or \
            a.op == "inv" and a.args[0].is_symmetric:
        if a.is_symmetric and s:
            s.note("transpose rules")
        return a
    if a.op == "T":
        if s:
            s.note("transpose rules")
        return a.args[0]
    if a.op == "zeros":
        return E.zeros((a.shape[1], a.shape[0]))
    if a.op == "add" and a.is_matrix:
        return add_(s, [T_(s, t) for t in a.args])      # (A + B)ᵀ = Aᵀ + Bᵀ; vectors keep (x - y)ᵀ
    if a.op == "matmul":
        if s:
            s.note("transpose rules")
        return matmul_(s, [T_(s, x) for x in reversed(a.args)])
    if a.op == "mul":
        scalars = [f for f in a.args if f.is_scalar]
        others = [f for f in a.args if not f.is_scalar]
        if len(others) == 1:
            return mul_(s, scalars + [T_(s, others[0])])
    return Expr("T", (a,), (a.shape[1], a.shape[0]))


def _split_scalars(x: Expr):
    """(scalar factors, the non-scalar rest) of one operand of @."""
    if x.is_scalar:
        return [x], None
    if x.op == "mul":
        sc = [f for f in x.args if f.is_scalar]
        other = [f for f in x.args if not f.is_scalar]
        if sc:
            return sc, other[0] if len(other) == 1 else Expr("mul", tuple(other), x.shape)
    return [], x


def matmul_(s, args) -> Expr:
    flat = []
    for a in args:
        flat.extend(a.args if a.op == "matmul" else (a,))
    if s and len(flat) > len(args):
        s.note("associativity")
    shape = (flat[0].shape[0], flat[-1].shape[1])
    scalars, chain = [], []
    for a in flat:
        sc, rest = _split_scalars(a) if len(flat) > 1 else ([], a)
        if sc and s:
            s.note("scalars out of products")
        scalars.extend(sc)
        if rest is None:
            continue
        if rest.op == "zeros":
            return E.zeros(shape)
        if rest.op == "eye" and len(flat) > 1:
            if s:
                s.note("identity")
            continue
        chain.append(rest)
    chain = _embeddings(s, _pairwise(s, chain))
    if shape[1] == "1" and shape[0] != "1":
        # diag(a)@M@v = a*(M@v): a diagonal matrix applied to a column is a Hadamard product
        for i, m in enumerate(chain[:-1]):
            if m.op == "diag" and m.args[0].is_column:
                if s:
                    s.note("diag(a)v = a⊗v")
                tail = matmul_(s, chain[i + 1:])
                chain = chain[:i] + [mul_(s, [m.args[0], tail])]
                break
    if not chain:
        core = E.eye(shape[0]) if shape != SCALAR else E.ONE
    elif len(chain) == 1:
        core = chain[0]
    else:
        core = Expr("matmul", tuple(chain), (chain[0].shape[0], chain[-1].shape[1]))
    if core.op == "mul" or scalars:
        return mul_(s, scalars + [core])
    return core


def _pairwise(s, chain):
    """Rewrite adjacent pairs of an @ chain until none applies."""
    changed = True
    while changed and len(chain) > 1:
        changed = False
        for i in range(len(chain) - 1):
            new = _pair(s, chain[i], chain[i + 1])
            if new is not None:
                chain = chain[:i] + new + chain[i + 2:]
                changed = True
                break
    return chain


def _is_ones_row(x):
    return x.op == "T" and x.args[0].op == "ones"


def _pair(s, a, b):
    note = s.note if s else (lambda r: None)
    if "commutation" in (a.op, b.op):
        got = _commutation_pair(s, a, b)
        if got is not None:
            note("commutation laws")
            return got
    if _is_ones_row(a) and b.op == "diag" and b.args[0].is_column:
        note("1ᵀdiag(v) = vᵀ")
        return [T_(s, b.args[0])]
    if a.op == "diag" and a.args[0].is_column and b.op == "ones":
        note("1ᵀdiag(v) = vᵀ")
        return [a.args[0]]
    if a.op == "diag" and b.op == "diag" and a.args[0].is_column and b.args[0].is_column:
        note("diag(a)diag(b) = diag(a⊗b)")
        return [Expr("diag", (mul_(s, [a.args[0], b.args[0]]),), a.shape)]
    if a.op == "diag" and a.args[0].is_column and b.is_column:
        note("diag(a)v = a⊗v")
        return [mul_(s, [a.args[0], b])]
    if a.is_row and b.op == "diag" and b.args[0].is_column:
        note("diag(a)v = a⊗v")
        return [T_(s, mul_(s, [T_(s, a), b.args[0]]))]
    if _is_ones_row(a) and b.is_column:
        note("1ᵀv = sum(v)")
        return [Expr("sum", (b,), SCALAR)]
    if a.is_row and b.op == "ones":
        note("1ᵀv = sum(v)")
        return [Expr("sum", (T_(s, a),), SCALAR)]
    if a.op == "kron" and b.op == "kron" and a.args[0].shape[1] == b.args[0].shape[0] \
            and a.args[1].shape[1] == b.args[1].shape[0]:
        note("mixed product (A⊗B)(C⊗D) = AC⊗BD")
        return [_kron(s, matmul_(s, [a.args[0], b.args[0]]), matmul_(s, [a.args[1], b.args[1]]))]
    if a.is_row and b.is_column and a.op == "T":
        product = mul_(None, [a.args[0], b])             # u'v = sum(u*v) when u*v cancels
        if product.size < a.size + b.size - 1:
            note("fold constants")
            return [_func(s, Expr("sum", (product,), SCALAR), [product])]
    if a.is_scalar or b.is_scalar:
        return [mul_(s, [a, b])]
    return None


def _func(s, e, args):
    f = e.op
    a = args[0]
    if f in ("sum", "tr") and (a.op == "zeros" or E.is_number(a, 0)):
        return E.ZERO
    if a.op == "zeros" and f in _AT_ZERO:
        if s:
            s.note("fold constants")                        # f(0), element by element
        return filled(_AT_ZERO[f], e.shape)
    if f == "sum":
        if a.op == "ones":
            return E.dim(a.shape[0]) if not a.shape[0].isdigit() else E.num(int(a.shape[0]))
        if a.op == "mul":
            sc = [x for x in a.args if x.is_scalar]
            if sc and len(sc) < len(a.args):
                return mul_(s, sc + [Expr("sum", (mul_(s, [x for x in a.args
                                                            if not x.is_scalar]),), SCALAR)])
    if f == "tr" and a.op == "eye":
        return E.dim(a.shape[0]) if not a.shape[0].isdigit() else E.num(int(a.shape[0]))
    if f == "diag" and a.op == "T" and a.is_matrix:
        if s:
            s.note("transpose rules")
        return Expr("diag", a.args, e.shape)             # the diagonal of Mᵀ is M's
    if f == "diag" and a.op == "ones":
        return E.eye(a.shape[0])
    if f == "diag" and a.is_column and a.op == "mul":
        sc = [x for x in a.args if x.is_scalar]
        other = [x for x in a.args if not x.is_scalar]
        if sc and len(other) == 1:
            return mul_(s, sc + [Expr("diag", (other[0],), e.shape)])
    if f == "exp" and E.is_number(a, 0):
        return E.ONE
    if f == "log" and E.is_number(a, 1):
        return E.ZERO
    if f == "sign" and a.op == "num":
        return E.num((a.value > 0) - (a.value < 0))
    return _rebuild(s, e, args)


_AT_ZERO = {"diag": 0, "sin": 0, "tan": 0, "tanh": 0, "relu": 0, "abs": 0, "sign": 0, "sqrt": 0,
            "cos": 1, "exp": 1, "sigmoid": Fraction(1, 2)}


def filled(value, shape) -> Expr:
    """An array of one value that prints with its shape: 0, c*ones(n), c*ones(m)@ones(n)'."""
    if value == 0 or shape == SCALAR:
        return E.zeros(shape) if value == 0 else E.num(value)
    ones = E.ones(shape[0]) if shape[1] == "1" else \
        Expr("T", (E.ones(shape[1]),), shape) if shape[0] == "1" else \
        Expr("matmul", (E.ones(shape[0]), Expr("T", (E.ones(shape[1]),), ("1", shape[1]))), shape)
    return ones if value == 1 else Expr("mul", (E.num(value), ones), shape)


def _indicator(s, e, args):
    a, b = args
    if a.op == "num" and b.op == "num":
        v = {"gt": a.value > b.value, "ge": a.value >= b.value, "lt": a.value < b.value,
             "le": a.value <= b.value}[e.op]
        return E.num(int(v)) if e.is_scalar else scale(Fraction(int(v)), None, e.shape)
    return _rebuild(s, e, args)



# ---- commutation matrices (Magnus & Neudecker §3.7) --------------------------------
# K = commutation(m, n) is the mn×mn permutation with K@vec(A) = vec(A') for an m×n A.
# Its laws move it to the left of Kronecker products, where two of them cancel: so
# K_{p,m}@kron(A, B)@K_{n,q} becomes kron(B, A), and d/dX X'@X the textbook
# (I + K_{n,n})(I ⊗ X').

def _commutation_T(s, k):
    if s:
        s.note("commutation laws")
    return E.commutation(k.value[1], k.value[0])


def _commutation_pair(s, a, b):
    """The law for a@b when one of them is a commutation matrix, or None."""
    if a.op == "commutation" and b.op == "commutation" and a.value == b.value[::-1]:
        return []                                                  # K_{m,n} K_{n,m} = I
    if a.op == "kron" and b.op == "commutation":
        x, y = a.args
        if b.value == (x.shape[1], y.shape[1]):
            k = E.commutation(x.shape[0], y.shape[0])
            swapped = Expr("kron", (y, x), (a.shape[0], b.shape[1]))
            return [swapped] if k.op == "eye" else [k, swapped]
    if a.op == "commutation" and b.op == "vec" and b.args[0].shape == a.value:
        return [Expr("vec", (T_(s, b.args[0]),), b.shape)]
    if b.op == "commutation" and a.op == "T" and a.args[0].op == "vec" \
            and a.args[0].args[0].shape == b.value[::-1]:                # vec(A)'K = vec(A')'
        inner = Expr("vec", (T_(s, a.args[0].args[0]),), a.args[0].shape)
        return [Expr("T", (inner,), a.shape)]
    return None


# ∂vec(diag(v))/∂v = diag(vec(I))(1 ⊗ I) (mcalc.rules) meets, in a chain rule, the Jacobian
# of what uses diag(v): (uᵀ ⊗ I) diag(vec(M)) (1 ⊗ I) is diag(M u), entry a being
# Σ_b u_b M[a, b]; its transpose (a denominator-layout chain) is the same diagonal matrix.

def _embeddings(s, chain):
    """Laws of three neighbours in an @ chain: the embedding's, and 1ᵀM1 = sum(M)."""
    for i in range(len(chain) - 2):
        a, m, b = chain[i:i + 3]
        if _is_ones_row(a) and b.op == "ones" and m.is_matrix:
            got, law = Expr("sum", (m.args[0] if m.op == "T" else m,), SCALAR), "1ᵀv = sum(v)"
        else:
            got, law = _embedding(s, a, m, b), "diagonal embedding"
        if got is not None:
            if s:
                s.note(law)
            return _embeddings(s, _pairwise(s, chain[:i] + [got] + chain[i + 3:]))
    return chain


def _embedding(s, a, m, b):
    if m.op != "diag" or not m.args[0].is_column:
        return None
    n = a.shape[0] if a.op != "T" else b.shape[1]
    spread = Expr("kron", (E.ones(n), E.eye(n)), (dim_mul(n, n), n))      # (1 ⊗ I)
    if b is spread:
        pick = a
    elif a.op == "T" and a.args[0] is spread and b.op == "T":
        pick = b.args[0]
    else:
        return None
    if pick.op != "kron" or pick.args[1] is not E.eye(n) or not pick.args[0].is_row:
        return None
    w = m.args[0]
    if w.op == "pow" and w.args[0].op == "vec" and w.args[0].args[0].op == "eye" and \
            w.args[1].op == "num" and w.args[1].value > 0:
        w = w.args[0]                                   # vec(I)^p = vec(I): 0/1 entries
    factors = w.args if w.op == "mul" else (w,)       # vec(A)*vec(B) = vec(A*B)
    if not all(f.is_scalar or f.op == "vec" and f.args[0].shape == (n, n) for f in factors):
        return None
    inner = [f if f.is_scalar else f.args[0] for f in factors]
    column = matmul_(s, [mul_(s, inner) if len(inner) > 1 else inner[0], T_(s, pick.args[0])])
    return _func(s, Expr("diag", (column,), (n, n)), [column])


# ---- Kronecker products (MC §10.2) -------------------------------------------------

def _kron(s, a, b) -> Expr:
    """kron(a, b), a scalar operand a plain factor."""
    if a.is_scalar or b.is_scalar:
        if s:
            s.note("Kronecker laws")
        return mul_(s, [a, b])
    return Expr("kron", (a, b), (dim_mul(a.shape[0], b.shape[0]), dim_mul(a.shape[1], b.shape[1])))


def _kron_hadamard(s, factors):
    """(A ⊗ B) * (C ⊗ D) = (A * C) ⊗ (B * D) for operands of equal shapes, in a product's
    factors."""
    out: list[Expr] = []
    for f in factors:
        partner = next((i for i, g in enumerate(out) if f.op == g.op == "kron"
                        and f.args[0].shape == g.args[0].shape
                        and f.args[1].shape == g.args[1].shape), None)
        if partner is None:
            out.append(f)
            continue
        if s:
            s.note("Kronecker laws")
        g = out[partner]
        out[partner] = _kron(s, mul_(s, [g.args[0], f.args[0]]), mul_(s, [g.args[1], f.args[1]]))
    return out


_BUILD = {
    "add": lambda s, e, a: add_(s, a, e.shape),
    "mul": lambda s, e, a: mul_(s, a, e.shape),
    "pow": lambda s, e, a: pow_(s, a[0], a[1]),
    "T": lambda s, e, a: T_(s, a[0]),
    "matmul": lambda s, e, a: matmul_(s, a),
    **{f: _func for f in ("sum", "tr", "log") + tuple(_AT_ZERO)},
    **{f: _indicator for f in ("gt", "ge", "lt", "le")},
    "kron": lambda s, e, a: _kron(s, *a),
}
