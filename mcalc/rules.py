"""The rule table: one entry per documented rule, as autograd's defvjp table.

Each entry: the rule's name, where it comes from (seed and section), the operator it
differentiates, which operand, a condition on shapes, and three forms of one fact:

  jacobian(u, i)      ∂vec(u)/∂vec(aᵢ) in numerator layout — the partial of the chain rule
                      (Parr & Howard); None where no 2-D or Kronecker form exists
  grad(u, i, G)       the gradient by aᵢ of a scalar whose gradient by u is G (same shape as
                      u): the differential method's move  G : du  ->  grad : daᵢ
  differential(u,i,d) du when only aᵢ varies by d (printed in differential steps)

Sources (KEY below, printed by `mcalc rules`): every citation names a section or an
equation number a reader can look up, re-checked against the texts.
"""
from __future__ import annotations

import re

from fractions import Fraction
from typing import Callable

from mcalc import expr as E
from mcalc.errors import NoRule
from mcalc.expr import Expr
from mcalc.expr import new as _new
from mcalc.record import Record
from mcalc.types import dim_mul

# ---- small builders (unsimplified; the simplifier tidies) ---------------------------


def T(x):
    return _new(Expr, "T", (x,), (x.shape[1], x.shape[0]))   # (the shape law of T, inline)


def mm(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = E.make("matmul", out, x)
    return out


def mul(*xs):
    return _new(Expr, "mul", xs, _bshape(xs))


def _bshape(xs):
    for x in xs:
        if not x.is_scalar:
            return x.shape
    return ("1", "1")


def add(*xs):
    return _new(Expr, "add", xs, _bshape(xs))


_MINUS_ONE = E.num(-1)


def neg(x):
    return mul(_MINUS_ONE, x)


def recip(x):
    return E.make("pow", x, _MINUS_ONE)


def fn(name, *xs):
    return E.make(name, *xs)


def numel(x: Expr) -> str:
    return dim_mul(*x.shape)


def vec(x: Expr) -> Expr:
    """vec(x) as a column: x itself for a column, x' for a row, vec(X) for a matrix."""
    if x.is_scalar or x.is_column:
        return x
    return T(x) if x.is_row else fn("vec", x)


def eye_like(x: Expr) -> Expr:
    return E.ONE if x.is_scalar else E.eye(numel(x))


def diag_of(v: Expr, like: Expr) -> Expr:
    """The Jacobian of an element-wise map whose element-wise derivative is v (shaped like
    `like`, or a scalar): diag(vec(v)), or v itself for scalars."""
    if like.is_scalar:
        return v
    if v.is_scalar:
        return mul(v, E.eye(numel(like)))
    return fn("diag", vec(v))


def sum_to(G: Expr, a: Expr) -> Expr:
    """Reduce a gradient G to operand a's shape (scalar expansion undone by a sum)."""
    return G if G.shape == a.shape or not a.is_scalar else fn("sum", G)


def expand(g: Expr, like: Expr) -> Expr:
    """A scalar gradient spread over every element of `like` (the sum reduction's grad)."""
    if like.is_scalar:
        return g
    if like.is_column:
        return mul(g, E.ones(like.shape[0]))
    if like.is_row:
        return mul(g, T(E.ones(like.shape[1])))
    return mul(g, mm(E.ones(like.shape[0]), T(E.ones(like.shape[1]))))


# ---- the table -------------------------------------------------------------------

KEY = """\
sources:
  P&H  T. Parr and J. Howard, The Matrix Calculus You Need For Deep Learning (§ = section)
  MC   K. B. Petersen and M. S. Pedersen, The Matrix Cookbook, 2012 (eq. = equation number)
  M&N  J. R. Magnus and H. Neudecker, Matrix Differential Calculus with Applications in
       Statistics and Econometrics (ch. = chapter): differentials, vec and Kronecker forms
  000  Model Perspective, Mastering the Chain Rule for Vector-to-Vector and
       Scalar-to-Matrix Derivatives (named sections)
  003  Mathematics Stack Exchange, the answer deriving dL = 2Y : X'dW (the differential
       approach) to a question on the chain rule with a matrix intermediate
  004  Matrix Calculus for Machine Learning: From Gradients to Jacobians (§ = section)"""


class Rule(Record):
    """One documented rule (a frozen record: mcalc.record)."""
    __slots__ = _fields = ("name", "source", "op", "formula", "shape", "jacobian", "grad",
                           "differential", "arg", "when", "kink")

    def __init__(self, name: str, source: str, op: str,
                 formula: str,                    # what the rule says, for `mcalc rules`
                 shape: str,                      # its shape law
                 jacobian: Callable | None, grad: Callable | None = None,
                 differential: Callable | None = None,
                 arg: int | None = None,          # which operand (None: any)
                 when: Callable | None = None,    # (None: always; no call to make)
                 kink: str = ""):                 # subdifferential note at a kink
        for f, v in zip(self._fields, (name, source, op, formula, shape, jacobian, grad,
                                       differential, arg, when, kink)):
            object.__setattr__(self, f, v)

    @property
    def cite(self) -> str:
        """The source without its glosses, keeping equation numbers: 'P&H §2, §4.2',
        '004 §3.5; MC (eq. 42, 49)' (made once per source: every partial step cites)."""
        got = _CITES.get(self.source)
        if got is None:
            got = _CITES[self.source] = re.sub(r"\s*\((?!eq\.)(?:[^()]|\([^()]*\))*\)", "",
                                               self.source)
        return got


_CITES: dict[str, str] = {}                # Rule.source -> Rule.cite (one per rule at most)


RULES: list[Rule] = []


def rule(name, source, op, formula, shape, jacobian, grad=None, differential=None, arg=None,
         when=None, kink=""):
    RULES.append(Rule(name, source, op, formula, shape, jacobian, grad, differential, arg,
                      when, kink))


def _other_factors(u, i):
    rest = [a for j, a in enumerate(u.args) if j != i]
    return rest[0] if len(rest) == 1 else mul(*rest)


def _same_shape(u, i):
    return u.args[i].shape == u.shape


def _expanded(u, i):
    return u.args[i].is_scalar and not u.is_scalar


def _negated(e):
    return e.op == "mul" and len(e.args) == 2 and E.is_number(e.args[0], -1)


# Scalar expansion and element-wise binary operators [P&H §4.2, §4.3]
rule("difference rule", "P&H §4.2 (w - x)", "add", "∂(a - b)/∂a = I", "n×n",
     lambda u, i: eye_like(u),
     lambda u, i, G: G, lambda u, i, d: d,
     when=lambda u, i: _same_shape(u, i) and any(_negated(a) for a in u.args))
rule("sum rule", "P&H §2, §4.2", "add", "∂(a + b)/∂a = I", "n×n",
     lambda u, i: eye_like(u),
     lambda u, i, G: G, lambda u, i, d: d, when=_same_shape)
rule("scalar expansion (sum)", "P&H §4.3", "add", "∂(x + z)/∂z = ones(n) (z scalar)", "n×1",
     lambda u, i: vec(expand(E.ONE, u)),
     lambda u, i, G: fn("sum", G), lambda u, i, d: expand(d, u), when=_expanded)
rule("constant multiple", "P&H §2 (multiplication by constant), §4.3", "mul",
     "∂(c x)/∂x = c I (c a number)", "n×n",
     lambda u, i: diag_of(_other_factors(u, i), u),
     lambda u, i, G: mul(G, _other_factors(u, i)),
     lambda u, i, d: mul(d, _other_factors(u, i)),
     when=lambda u, i: _same_shape(u, i) and len(u.args) == 2 and u.args[1 - i].op == "num")
rule("element-wise product", "P&H §4.2", "mul", "∂(w ⊗ x)/∂w = diag(x)", "n×n",
     lambda u, i: diag_of(_other_factors(u, i), u),
     lambda u, i, G: mul(G, _other_factors(u, i)),
     lambda u, i, d: mul(d, _other_factors(u, i)), when=_same_shape)
rule("scalar expansion (product)", "P&H §4.3", "mul", "∂(x z)/∂z = x (z scalar)", "n×1",
     lambda u, i: vec(_other_factors(u, i)),
     lambda u, i, G: fn("sum", mul(G, _other_factors(u, i))),
     lambda u, i, d: mul(d, _other_factors(u, i)), when=_expanded)


def _pow_base(u, i):
    a, p = u.args
    return mul(p, E.make("pow", a, add(p, _MINUS_ONE)))


rule("power rule", "P&H §2", "pow", "∂(xᵖ)/∂x = diag(p xᵖ⁻¹)", "n×n",
     lambda u, i: diag_of(_pow_base(u, i), u),
     lambda u, i, G: mul(G, _pow_base(u, i)), lambda u, i, d: mul(_pow_base(u, i), d), arg=0)
rule("exponent rule", "P&H §2", "pow", "∂(aᵖ)/∂p = aᵖ log(a)", "n×1",
     lambda u, i: vec(mul(u, fn("log", u.args[0]))),
     lambda u, i, G: fn("sum", mul(G, u, fn("log", u.args[0]))) if not u.is_scalar
     else mul(G, u, fn("log", u.args[0])),
     lambda u, i, d: mul(u, fn("log", u.args[0]), d), arg=1)

# Matrix products [P&H §4.5 neuron; 000 conclusions; MC (520)]


def _mm_left(u, i):
    a, b = u.args
    return T(b) if a.is_row or a.is_scalar else E.make("kron", T(b), E.eye(a.shape[0]))


def _mm_right(u, i):
    a, b = u.args
    return a if b.is_column or b.is_scalar else E.make("kron", E.eye(b.shape[1]), a)


def _dot(u, i):
    return u.is_scalar and u.args[0].is_row and u.args[1].is_column


rule("dot product (w'@x)", "P&H §5, §8.4 (w·x = sum(w ⊗ x))", "matmul", "∂(wᵀx)/∂w = xᵀ", "1×n",
     lambda u, i: T(u.args[1]) if i == 0 else u.args[0],
     lambda u, i, G: mul(G, T(u.args[1])) if i == 0 else mul(G, T(u.args[0])),
     lambda u, i, d: mm(d, u.args[1]) if i == 0 else mm(u.args[0], d), when=_dot)
rule("matrix product (right operand)", "003 (Y : XᵀdW = XY : dW); MC (eq. 37, 520)", "matmul",
     "∂(A x)/∂x = A;  ∂vec(AXB)/∂vec(X) = Bᵀ ⊗ A", "m×n", _mm_right,
     lambda u, i, G: mm(T(u.args[0]), G), lambda u, i, d: mm(u.args[0], d), arg=1)
rule("matrix product (left operand)", "MC (eq. 37, 520)", "matmul",
     "∂(xᵀA)/∂x = Aᵀ;  dL = G : dX B  =>  ∂L/∂X = G Bᵀ", "m×n", _mm_left,
     lambda u, i, G: mm(G, T(u.args[1])), lambda u, i, d: mm(d, u.args[1]), arg=0)
rule("transpose", "MC (eq. 44); M&N §3.7 (K vec(X) = vec(Xᵀ))", "T",
     "∂xᵀ/∂x = I (vectors); ∂vec(Xᵀ)/∂vec(X) = K_{m,n}; G : dXᵀ = Gᵀ : dX", "n×n",
     lambda u, i: eye_like(u) if u.is_vectorlike else E.commutation(*u.args[0].shape),
     lambda u, i, G: T(G), lambda u, i, d: T(d))

# Element-wise functions: diag(f'(x)) [P&H §4.2 element-wise diagonal condition, §2 table]
ELEMENTWISE = {
    "sin": (lambda a, u: fn("cos", a), "d sin(x) = cos(x)", ""),
    "cos": (lambda a, u: neg(fn("sin", a)), "d cos(x) = -sin(x)", ""),
    "tan": (lambda a, u: add(E.ONE, E.make("pow", u, E.num(2))), "d tan(x) = 1 + tan(x)²", ""),
    "exp": (lambda a, u: u, "d exp(x) = exp(x)", ""),
    "log": (lambda a, u: recip(a), "d log(x) = 1/x", ""),
    "sqrt": (lambda a, u: mul(E.num(Fraction(1, 2)), recip(u)),
             "d sqrt(x) = 1/(2 sqrt(x))", ""),
    "tanh": (lambda a, u: add(E.ONE, neg(E.make("pow", u, E.num(2)))),
             "d tanh(x) = 1 - tanh(x)²", ""),
    "sigmoid": (lambda a, u: mul(u, add(E.ONE, neg(u))), "d σ(x) = σ(x)(1 - σ(x))", ""),
    "relu": (lambda a, u: E.make("gt", a, E.ZERO), "d max(0, x) = (x > 0)",
             "at 0 the subdifferential of max(0, x) is [0, 1]; mcalc takes 0"),
    "abs": (lambda a, u: fn("sign", a), "d |x| = sign(x)",
            "at 0 the subdifferential of |x| is [-1, 1]; mcalc takes 0"),
    "sign": (lambda a, u: E.zeros(a.shape), "d sign(x) = 0 (x ≠ 0)", ""),
}
_ELEMENTWISE_SOURCE = {"relu": "P&H §5; 004 §2, §5", "abs": "004 §2", "sigmoid": "004 §5",
                       "tanh": "004 §5", "sign": "004 §6.4 (Lasso subgradient)"}

for _f, (_d, _formula, _kink) in ELEMENTWISE.items():
    # on a vector or matrix: yᵢ = f(xᵢ) uses xᵢ alone, so the Jacobian is diagonal (P&H
    # name this the element-wise diagonal condition); on a scalar, the scalar rule
    for _name, _source, _text, _when in (
            ("element-wise diagonal condition", "P&H §4.2, §4.5.3 (element-wise diagonal "
             "condition)", f"∂{_f}(x)/∂x = diag(f'(x)), yᵢ = {_f}(xᵢ) using xᵢ alone; {_formula}",
             lambda u, i: not u.is_scalar),
            (f"{_f} (element-wise)" if _f != "relu" else "max(0, z) piecewise derivative",
             _ELEMENTWISE_SOURCE.get(_f, "P&H §2 (scalar rules)"), _formula, None)):
        rule(_name, _source, _f, _text, "n×n",
             lambda u, i, d=_d: diag_of(d(u.args[0], u), u),
             lambda u, i, G, d=_d: mul(G, d(u.args[0], u)),
             lambda u, i, dx, d=_d: mul(d(u.args[0], u), dx), when=_when, kink=_kink)

for _cmp in ("gt", "ge", "lt", "le"):
    rule("indicator", "P&H §5 (piecewise: 0 where the function is flat)", _cmp, "∂(x > y)/∂x = 0", "n×n",
         lambda u, i: E.ZERO if u.is_scalar else E.zeros((numel(u), numel(u.args[i]))),
         lambda u, i, G: E.zeros(u.args[i].shape), lambda u, i, d: E.zeros(u.shape))


def _choose(u, i):
    a, b = u.args
    if u.op == "max":
        return E.make("gt", a, b) if i == 0 else E.make("le", a, b)
    return E.make("lt", a, b) if i == 0 else E.make("ge", a, b)


for _m in ("max", "min"):
    rule(f"element-wise {_m}", "P&H §5 (piecewise)", _m,
         f"∂{_m}(a, b)/∂a = ({'a > b' if _m == 'max' else 'a < b'})", "n×n",
         lambda u, i: diag_of(_choose(u, i), u) if u.args[i].shape == u.shape
         else vec(_choose(u, i)),
         lambda u, i, G: sum_to(mul(G, _choose(u, i)), u.args[i]),
         lambda u, i, d: mul(_choose(u, i), d),
         kink=f"where a = b the subdifferential of {_m} is the segment between the two "
              "gradients; mcalc gives it to one operand")

# Reductions [P&H §4.4]
rule("sum reduction", "P&H §4.4, §8.4", "sum", "∂sum(x)/∂x = 1ᵀ", "1×n",
     lambda u, i: T(E.ones(numel(u.args[0]))),
     lambda u, i, G: expand(G, u.args[0]), lambda u, i, d: fn("sum", d))


def _size(a):
    n = numel(a)
    return E.num(int(n)) if n.isdigit() else E.dim(n) if "*" not in n else \
        mul(*(E.dim(x) if not x.isdigit() else E.num(int(x)) for x in n.split("*")))


rule("mean", "P&H §4.4, §6 (the mean of a sum)", "mean", "∂mean(x)/∂x = 1ᵀ/n", "1×n",
     lambda u, i: mul(recip(_size(u.args[0])), T(E.ones(numel(u.args[0])))),
     lambda u, i, G: mul(recip(_size(u.args[0])), expand(G, u.args[0])),
     lambda u, i, d: fn("mean", d))
rule("dot product (dot)", "P&H §5, §8.4 (sum(w ⊗ x))", "dot", "∂(w·x)/∂w = xᵀ", "1×n",
     lambda u, i: T(u.args[1 - i]), lambda u, i, G: mul(G, u.args[1 - i]),
     lambda u, i, d: fn("dot", d, u.args[1 - i]))
rule("norm", "004 §5 (|x|² → 2x); MC (eq. 129)", "norm", "∂‖x‖/∂x = xᵀ/‖x‖", "1×n",
     lambda u, i: mul(T(vec(u.args[0])), recip(u)),
     lambda u, i, G: mul(G, u.args[0], recip(u)),
     lambda u, i, d: mul(recip(u), fn("sum", mul(u.args[0], d))))
rule("logsumexp", "004 §5 (softmax), §8.1", "logsumexp", "∂logsumexp(x)/∂x = softmax(x)ᵀ", "1×n",
     lambda u, i: T(fn("softmax", u.args[0])),
     lambda u, i, G: mul(G, fn("softmax", u.args[0])),
     lambda u, i, d: fn("dot", fn("softmax", u.args[0]), d), when=lambda u, i: u.args[0].is_column)


def _softmax_of_all(a):
    """exp(X)/sum(exp(X)): softmax over every element of a matrix."""
    return mul(fn("exp", a), recip(fn("sum", fn("exp", a))))


rule("logsumexp (all elements)", "004 §5 (softmax), §8.1", "logsumexp",
     "∂logsumexp(X)/∂X = exp(X)/sum(exp(X))", "1×mn",
     lambda u, i: T(vec(_softmax_of_all(u.args[0]))),
     lambda u, i, G: mul(G, _softmax_of_all(u.args[0])),
     lambda u, i, d: fn("sum", mul(_softmax_of_all(u.args[0]), d)))
rule("softmax", "004 §5", "softmax", "∂softmax(x)/∂x = diag(s) - s sᵀ", "n×n",
     lambda u, i: add(fn("diag", u), neg(mm(u, T(u)))),
     lambda u, i, G: add(mul(u, G), neg(mul(u, mm(T(u), G)))),
     lambda u, i, d: add(mul(u, d), neg(mul(u, mm(T(u), d)))))

# Matrix functions [004 §3.5/§5 corrected; MC; 003]


def _inv_T(a):
    return T(fn("inv", a))


rule("trace", "004 §3.5, §5; MC (eq. 36, 100)", "tr", "d tr(X) = tr(dX) = I : dX", "1×n²",
     lambda u, i: T(fn("vec", E.eye(u.args[0].shape[0]))),
     lambda u, i, G: mul(G, E.eye(u.args[0].shape[0])), lambda u, i, d: fn("tr", d))
rule("determinant", "004 §3.5; MC (eq. 42, 49)", "det",
     "d det(X) = det(X) tr(X⁻¹ dX)  =>  ∂det(X)/∂X = det(X) X⁻ᵀ", "1×n²",
     lambda u, i: mul(u, T(fn("vec", _inv_T(u.args[0])))),
     lambda u, i, G: mul(G, u, _inv_T(u.args[0])),
     lambda u, i, d: mul(u, fn("tr", mm(fn("inv", u.args[0]), d))))
rule("log-determinant", "004 §3.5, §5; MC (eq. 43, 57)", "logdet",
     "d logdet(X) = tr(X⁻¹ dX)  =>  ∂logdet(X)/∂X = X⁻ᵀ", "1×n²",
     lambda u, i: T(fn("vec", _inv_T(u.args[0]))),
     lambda u, i, G: mul(G, _inv_T(u.args[0])),
     lambda u, i, d: fn("tr", mm(fn("inv", u.args[0]), d)))
rule("inverse", "MC (eq. 40, 59)", "inv", "d(X⁻¹) = -X⁻¹ dX X⁻¹", "n²×n²",
     lambda u, i: neg(E.make("kron", _inv_T(u.args[0]), u)),
     lambda u, i, G: neg(mm(T(u), G, T(u))),
     lambda u, i, d: neg(mm(u, d, u)))
def _eye(d: str) -> Expr:
    return E.ONE if d == "1" else E.eye(d)


def _ones(r: str, c: str) -> Expr:
    """The all-ones r×c array, as the language writes it."""
    if c == "1":
        return E.ONE if r == "1" else E.ones(r)
    return T(E.ones(c)) if r == "1" else mm(E.ones(r), T(E.ones(c)))


def _diag_embedding(n: str) -> Expr:
    """∂vec(diag(v))/∂v (n²×n): column i is vec(eᵢeᵢᵀ)."""
    return mm(fn("diag", fn("vec", E.eye(n))), E.make("kron", E.ones(n), E.eye(n)))


def _unvec(g: Expr, like: Expr) -> Expr:
    """g (a column of numel(like) entries) reshaped to like's shape:
    (vec(Iₙ)ᵀ ⊗ Iₘ)(Iₙ ⊗ g) for an m×n matrix [Magnus & Neudecker]."""
    if like.is_vectorlike:
        return g if like.is_column or like.is_scalar else T(g)
    m, n = like.shape
    return mm(E.make("kron", T(fn("vec", E.eye(n))), E.eye(m)), E.make("kron", E.eye(n), g))


def _kron_jacobian(u, i):
    """vec(A ⊗ B) = (Iₙ ⊗ K_{q,m} ⊗ Iₚ)(vec A ⊗ vec B) for A m×n, B p×q [Magnus & Neudecker
    §3.7 Thm 10], so ∂/∂vec A = P (I_{mn} ⊗ vec B) and ∂/∂vec B = P (vec A ⊗ I_{pq})."""
    a, b = u.args
    (m, n), (p, q) = a.shape, b.shape
    perm = E.make("kron", E.make("kron", _eye(n), E.commutation(q, m)), _eye(p))
    if i == 0:
        return mm(perm, E.make("kron", _eye(numel(a)), vec(b)))
    return mm(perm, E.make("kron", vec(a), _eye(numel(b))))


def _identity_scale(G: Expr):
    """g when G is g·I (the gradient a trace passes down), else None."""
    if G.op == "eye":
        return E.ONE
    if G.op == "mul":
        arrays = [f for f in G.args if not f.is_scalar]
        if len(arrays) == 1 and arrays[0].op == "eye":
            return mul(*(f for f in G.args if f.is_scalar))
    return None


def _kron_grad(u, i, G):
    """G : d(A ⊗ B): each entry of A meets one block of G times B, so the gradient by A is
    the block sums of G ⊙ (1 ⊗ B) (and by B the sum of the blocks of G ⊙ (A ⊗ 1)); when
    G = g·I and A, B are square it is g·tr(B)·I (MC eq. 105: tr(A ⊗ B) = tr(A) tr(B))."""
    a, b = u.args
    (m, n), (p, q) = a.shape, b.shape
    g = _identity_scale(G)
    if g is not None and m == n and p == q:
        other = b if i == 0 else a
        mine = u.args[i]
        return mul(g, fn("tr", other) if not other.is_scalar else other,
                   E.ONE if mine.is_scalar else E.eye(mine.shape[0]))
    if i == 0:
        masked = mul(G, E.make("kron", _ones(m, n), b))
        return mm(E.make("kron", _eye(m), _ones("1", p)), masked,
                  E.make("kron", _eye(n), _ones(q, "1")))
    masked = mul(G, E.make("kron", a, _ones(p, q)))
    return mm(E.make("kron", _ones("1", m), _eye(p)), masked,
              E.make("kron", _ones(n, "1"), _eye(q)))


rule("diagonal matrix", "M&N (the diagonal embedding: d diag(v) = diag(dv))", "diag",
     "∂vec(diag(v))/∂v = diag(vec(I))(1 ⊗ I);  G : d diag(v) = diag(G) : dv", "n²×n",
     lambda u, i: _diag_embedding(u.shape[0]) if u.is_matrix
     else T(_diag_embedding(u.shape[0])),
     lambda u, i, G: fn("diag", G),
     lambda u, i, d: fn("diag", d))
rule("vec", "M&N ((vec(Iₙ)ᵀ ⊗ Iₘ)(Iₙ ⊗ vec A) = A)",
     "vec", "∂vec(X)/∂vec(X) = I", "mn×mn",
     lambda u, i: E.eye(numel(u.args[0])),
     lambda u, i, G: _unvec(G, u.args[0]),
     lambda u, i, d: fn("vec", d))
rule("Kronecker product", "MC (eq. 39, 105); M&N §3.7", "kron",
     "d(A ⊗ B) = dA ⊗ B + A ⊗ dB;  vec(A ⊗ B) = (Iₙ ⊗ K_{q,m} ⊗ Iₚ)(vec A ⊗ vec B)", "mnpq×mn",
     _kron_jacobian, _kron_grad,
     lambda u, i, d: E.make("kron", d, u.args[1]) if i == 0 else E.make("kron", u.args[0], d))


# Literals [x1, x2] and [[a, b], [c, d]]: each entry is one scalar operand


def _entry(G: Expr, u: Expr, i: int, otherwise: Expr) -> Expr:
    """Entry i of the gradient G: read off a literal, else picked by a unit literal."""
    return G.args[i] if G.op == u.op else otherwise


def _unit(u: Expr, i: int) -> Expr:
    """The literal of u's shape with 1 at operand i's place and 0 elsewhere."""
    return Expr(u.op, tuple(E.ONE if j == i else E.ZERO for j in range(len(u.args))), u.shape)


rule("vector literal entry", "P&H §3, §4.1 (partials stacked into vectors and matrices)", "vector",
     "∂[x1, x2, …]/∂xᵢ = eᵢ", "n×1",
     lambda u, i: vec(_unit(u, i)), lambda u, i, G: _entry(G, u, i, mm(T(_unit(u, i)), G)),
     lambda u, i, d: mul(d, _unit(u, i)))
rule("matrix literal entry", "P&H §3, §4.1 (partials stacked into vectors and matrices)", "matrix",
     "∂[[a, b], [c, d]]/∂a = vec(E₁₁)", "mn×1",
     lambda u, i: vec(_unit(u, i)),
     lambda u, i, G: _entry(G, u, i, fn("sum", mul(_unit(u, i), G))),
     lambda u, i, d: mul(d, _unit(u, i)))


# ---- look-up ---------------------------------------------------------------------

class _ByOp(dict):
    """op -> its rules, none for an operator without (subscripted: no call)."""
    __slots__ = ()

    def __missing__(self, op: str) -> tuple:
        return ()


_BY_OP: dict[str, list[Rule]] = _ByOp()
for _r in RULES:
    _BY_OP.setdefault(_r.op, []).append(_r)


def rule_for(u: Expr, i: int) -> Rule:
    for r in _BY_OP[u.op]:
        if (r.arg is None or r.arg == i) and (r.when is None or r.when(u, i)):
            return r
    raise NoRule(f"no documented rule differentiates {u.op}() by its operand {i + 1}")
