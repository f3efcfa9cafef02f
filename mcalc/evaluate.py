"""A numpy interpreter of typed expressions (Expr): the numeric side of `mcalc check`.

`evaluate(e, values, sizes)` computes the value of `e` with float64 numpy. Dispatch is a
table keyed on the node's op, like mcalc.printing.numpy_code; nothing is ever turned into
Python text, let alone evaluated as such.

Shapes. Inside, every value is a 2-D array of the node's shape (rows, cols): a scalar is
1×1, a column vector n×1, a row vector 1×n. So `@` is always numpy's `@`, a transpose is
always `.T`, and scalar expansion is numpy broadcasting of a 1×1 array. At the edges the
contract's numpy convention (JSON `numpy` field) is accepted and, by default, returned:
scalars are floats, column AND row vectors 1-D arrays of shape (n,), matrices 2-D arrays.

  evaluate(e, values, sizes)        -> contract convention (float, 1-D, 2-D)
  evaluate(e, values, sizes, two_d=True) -> always the 2-D array of e's shape

`values` maps each variable name to its value (either convention: a float or a 1×1, a
1-D array or an n×1 / 1×n one, a 2-D array); `sizes` maps each dimension name to its
integer size (needed for ones(n), eye(n), zeros and dimension leaves such as N).

`evaluate_mp(e, values, sizes, dps)` computes the same value with mpmath numbers at `dps`
significant digits (numpy object arrays of mpf, the same table with the element-wise and
matrix functions swapped for mpmath's): check confirms every counterexample with it. The
float values of the variables and the rational literals enter exactly.

Conventions: logdet(X) is log|det X| (as in the numpy printer: slogdet), norm() is the
2-norm of a vector and the Frobenius norm of a matrix, vec() stacks columns
(column-major), the indicators > >= < <= give 0.0/1.0. Domain errors (log of a negative
number, a singular inverse) give NaN or inf rather than an exception; numpy's warnings
about them are silenced.

The evaluation is iterative over the shared DAG: each distinct node is computed once, and
deep trees never reach the recursion limit.
"""
from __future__ import annotations

import numpy as np

from mcalc.expr import postorder
from mcalc.types import parse_dim_size


class EvaluationError(ValueError):
    """A variable without a value, a dimension without a size, an unknown operator."""


def as_2d(value, shape, sizes: dict[str, int]) -> np.ndarray:
    """A value in either convention -> the 2-D float array of `shape`."""
    r, c = (parse_dim_size(d, sizes) for d in shape)
    a = np.asarray(value, dtype=float)
    if a.size != r * c:
        raise EvaluationError(f"a value of {a.size} entries for a {r}×{c} shape")
    return a.reshape(r, c) if a.ndim != 2 or a.shape != (r, c) else a


def to_contract(a: np.ndarray, shape=None):
    """A 2-D array -> the contract's convention: float, 1-D for vectors, else 2-D. By the
    type's `shape` when given, not by the sizes: a vector(n) at n = 1 stays 1-D, a
    matrix(m, n) at 1×1 stays 2-D, as the JSON `numpy` expression computes them."""
    a = np.asarray(a, dtype=float)
    ones = (a.shape[0] == 1, a.shape[1] == 1) if shape is None else \
        (shape[0] == "1", shape[1] == "1")
    if all(ones):
        return float(a[0, 0])
    if any(ones):
        return a.reshape(-1)
    return a


def evaluate(e, values: dict, sizes: dict[str, int] | None = None, two_d: bool = False,
             memo: dict | None = None):
    """The value of the Expr `e` (see the module docstring for the conventions)."""
    ev = _Evaluator(values, sizes or {}, memo)
    out = ev.run(e)
    return out if two_d else to_contract(out, e.shape)


def evaluation_order(roots) -> list:
    """The distinct nodes of `roots`, children before parents: computed once, evaluated
    at many points with evaluate_order."""
    done: dict = {}
    order = []
    for root in roots:
        for node in postorder(root, done):
            done[node] = True
            order.append(node)
    return order


def evaluate_order(order, values: dict, sizes: dict[str, int]) -> dict:
    """{node: 2-D value} for every node of an evaluation order (float64)."""
    ev = _Evaluator(values, sizes)
    ev.run_order(order)
    return ev.memo


def evaluate_mp(e, values: dict, sizes: dict[str, int], dps: int, memo: dict | None = None,
                interval: bool = False):
    """The value of `e` as a 2-D numpy object array of mpmath numbers at `dps` digits
    (NaN where it is undefined: a log of a negative number, a singular inverse). With
    `interval`, mpmath intervals that are sure to hold the exact value; a kink whose side
    the interval cannot tell raises Ambiguous."""
    import mpmath
    ctx = mpmath.iv if interval else mpmath.mp
    old = ctx.dps
    ctx.dps = dps
    try:
        return _MpEvaluator(values, sizes, memo, ctx).run(e)
    finally:
        ctx.dps = old


class Ambiguous(ArithmeticError):
    """An interval straddles a kink (relu, abs, sign, max, min, an indicator)."""


class _Evaluator:
    dtype = float

    def __init__(self, values, sizes, memo=None):
        self.values = values
        self.sizes = sizes
        self.memo = {} if memo is None else memo
        self.table = _TABLE
        self.shapes: dict = {}

    def size(self, d: str) -> int:
        try:
            return parse_dim_size(d, self.sizes)
        except KeyError as k:
            raise EvaluationError(f"no size for the dimension {k.args[0]}") from None

    def shape(self, shape) -> tuple[int, int]:
        got = self.shapes.get(shape)
        if got is None:
            got = self.shapes[shape] = (self.size(shape[0]), self.size(shape[1]))
        return got

    def run(self, root):
        self.run_order(postorder(root, self.memo), root)
        return self.memo[root]

    def run_order(self, order, root=None):
        """Evaluate the nodes of `order` (children before parents, as evaluation_order
        gives them), skipping those already in the memo."""
        memo, table, dtype = self.memo, self.table, self.dtype
        with np.errstate(all="ignore"):
            for node in order:
                if node in memo:
                    continue
                rule = table.get(node.op)
                if rule is None:
                    raise EvaluationError(f"no numeric evaluation for the operator {node.op!r}")
                out = rule(self, node, [memo[a] for a in node.args])
                r, c = self.shape(node.shape)
                if type(out) is not np.ndarray or out.dtype != dtype:
                    out = np.asarray(out, dtype=dtype)
                if out.shape != (r, c):
                    if out.size == 1 and r * c != 1:      # a scalar standing for an array
                        out = np.full((r, c), out.reshape(-1)[0], dtype=dtype)
                    out = out.reshape(r, c)
                memo[node] = out

    # leaves
    def num(self, e, _):
        try:
            return np.full((1, 1), float(e.value))
        except OverflowError:                      # 2^(64^3): beyond floats
            return np.full((1, 1), np.inf if e.value > 0 else -np.inf)

    def var(self, e, _):
        if e.name not in self.values:
            raise EvaluationError(f"no value for the variable {e.name}")
        return as_2d(self.values[e.name], e.shape, self.sizes)

    def dim(self, e, _):
        return np.full((1, 1), float(self.size(e.name)))

    def const(self, e, _):
        if e.name not in _CONSTANTS:
            raise EvaluationError(f"no value for the constant {e.name}")
        return np.full((1, 1), _CONSTANTS[e.name])

    def ones(self, e, _):
        return np.ones((self.size(e.shape[0]), self.size(e.shape[1])))

    def eye(self, e, _):
        return np.eye(self.size(e.shape[0]))

    def zeros(self, e, _):
        return np.zeros((self.size(e.shape[0]), self.size(e.shape[1])))

    def commutation(self, e, _):
        """K_{m,n}: row j + i n of K is column i + j m of the identity (K vec(A) = vec(A'))."""
        m, n = (self.size(d) for d in e.value)
        return np.eye(m * n)[np.arange(m * n).reshape((m, n), order="F").ravel()]

    # operators
    def add(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = out + x
        return out

    def mul(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = out * x
        return out

    def pow(self, e, a):
        base, p = a
        p = float(p[0, 0])
        if abs(p) <= 64 and p == int(p):          # NaN and inf fail the first test
            return base ** int(p) if p >= 0 else 1.0 / base ** int(-p)
        return np.power(base, p)

    def matmul(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = out @ x
        return out

    def T(self, e, a):
        return a[0].T

    def vector(self, e, a):
        return np.array([[x[0, 0]] for x in a])

    def matrix(self, e, a):
        return np.array([x[0, 0] for x in a])          # reshaped to e.shape by run()

    # element-wise functions
    def sigmoid(self, e, a):
        return np.exp(-np.logaddexp(0.0, -a[0]))

    def relu(self, e, a):
        return np.maximum(a[0], 0.0)

    def compare(self, e, a):
        return _COMPARE[e.op](a[0], a[1]).astype(float)

    # reductions and matrix functions
    def mean(self, e, a):
        return np.mean(a[0])

    def norm(self, e, a):
        return np.linalg.norm(a[0])

    def logsumexp(self, e, a):
        return np.logaddexp.reduce(a[0].ravel())

    def dot(self, e, a):
        return np.sum(a[0] * a[1])

    def softmax(self, e, a):
        return np.exp(a[0] - np.logaddexp.reduce(a[0].ravel()))

    def tr(self, e, a):
        return np.trace(a[0])

    def det(self, e, a):
        return np.linalg.det(a[0])

    def logdet(self, e, a):
        return np.linalg.slogdet(a[0])[1]

    def inv(self, e, a):
        try:
            return np.linalg.inv(a[0])
        except np.linalg.LinAlgError:
            return np.full(a[0].shape, np.nan)

    def diag(self, e, a):
        x = a[0]
        if x.shape[1] == 1 and e.shape[1] != "1":             # column -> diagonal matrix
            return np.diag(x[:, 0])
        return np.diag(x).reshape(-1, 1)                      # square matrix -> its diagonal

    def kron(self, e, a):
        return np.kron(a[0], a[1])

    def vec(self, e, a):
        return a[0].reshape(-1, 1, order="F")


def _unary(f):
    return lambda self, e, a: f(a[0])


def _binary(f):
    return lambda self, e, a: f(a[0], a[1])


_CONSTANTS = {"pi": np.pi, "e": np.e}
_COMPARE = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}

_TABLE = {
    "num": _Evaluator.num, "var": _Evaluator.var, "dim": _Evaluator.dim,
    "const": _Evaluator.const, "ones": _Evaluator.ones, "eye": _Evaluator.eye,
    "zeros": _Evaluator.zeros, "commutation": _Evaluator.commutation,
    "add": _Evaluator.add, "mul": _Evaluator.mul, "pow": _Evaluator.pow,
    "matmul": _Evaluator.matmul, "T": _Evaluator.T,
    "vector": _Evaluator.vector, "matrix": _Evaluator.matrix,
    "sin": _unary(np.sin), "cos": _unary(np.cos), "tan": _unary(np.tan),
    "exp": _unary(np.exp), "log": _unary(np.log), "sqrt": _unary(np.sqrt),
    "tanh": _unary(np.tanh), "abs": _unary(np.abs), "sign": _unary(np.sign),
    "sigmoid": _Evaluator.sigmoid, "relu": _Evaluator.relu,
    "max": _binary(np.maximum), "min": _binary(np.minimum),
    **{op: _Evaluator.compare for op in _COMPARE},
    "sum": _unary(np.sum), "mean": _Evaluator.mean, "norm": _Evaluator.norm,
    "logsumexp": _Evaluator.logsumexp, "dot": _Evaluator.dot, "softmax": _Evaluator.softmax,
    "tr": _Evaluator.tr, "det": _Evaluator.det, "logdet": _Evaluator.logdet,
    "inv": _Evaluator.inv, "diag": _Evaluator.diag, "kron": _Evaluator.kron,
    "vec": _Evaluator.vec,
}

class _MpEvaluator(_Evaluator):
    """The same walk with mpmath numbers (ctx: mpmath.mp, or mpmath.iv for intervals):
    leaves become object arrays, and the functions numpy cannot apply to them are
    mpmath's, element by element."""
    dtype = object

    def __init__(self, values, sizes, memo=None, ctx=None):
        super().__init__(values, sizes, memo)
        self.mp = ctx
        self.table = _MP_TABLE
        self.nan = ctx.mpf("nan")
        import mpmath
        self.complex = mpmath.mpc

    def each(self, f, *arrays):
        return np.frompyfunc(f, len(arrays), 1)(*arrays).astype(object)

    def mpf(self, a):
        return self.each(self.mp.mpf, np.asarray(a, dtype=float))

    def test(self, truth):
        """A comparison's answer; an interval that straddles it has none."""
        if truth is None:
            raise Ambiguous
        return bool(truth)

    def num(self, e, _):
        v = e.value
        return np.full((1, 1), self.mp.mpf(v.numerator) / v.denominator, dtype=object)

    def var(self, e, _):
        return self.mpf(_Evaluator.var(self, e, _))

    def dim(self, e, _):
        return self.mpf(_Evaluator.dim(self, e, _))

    def const(self, e, _):
        if e.name not in _CONSTANTS:
            raise EvaluationError(f"no value for the constant {e.name}")
        return np.full((1, 1), +getattr(self.mp, e.name), dtype=object)

    def ones(self, e, _):
        return self.mpf(_Evaluator.ones(self, e, _))

    def eye(self, e, _):
        return self.mpf(_Evaluator.eye(self, e, _))

    def zeros(self, e, _):
        return self.mpf(_Evaluator.zeros(self, e, _))

    def real(self, f):
        """f, NaN where its value would be complex (log, sqrt of a negative number)."""
        def g(*x):
            try:
                out = f(*x)
            except (ArithmeticError, ValueError):
                return self.nan
            return self.nan if isinstance(out, self.complex) else out
        return g

    def fn(self, name):
        return lambda e, a: self.each(self.real(getattr(self.mp, name)), a[0])

    def pow(self, e, a):
        q = e.args[1].value if e.args[1].op == "num" else None
        p = int(q) if q is not None and q.denominator == 1 else a[1][0, 0]
        return self.each(self.real(lambda x: x ** p), a[0])

    def tanh(self, e, a):
        return self.each(lambda x: 1 - 2 / (self.mp.exp(2 * x) + 1), a[0])

    def sigmoid(self, e, a):
        return self.each(lambda x: 1 / (1 + self.mp.exp(-x)), a[0])

    def relu(self, e, a):
        return self.each(lambda x: x if self.test(x > 0) else 0 * x, a[0])

    def abs_(self, e, a):
        return self.each(lambda x: x if self.test(x >= 0) else -x, a[0])

    def sign(self, e, a):
        return self.each(lambda x: self.mp.mpf(1) if self.test(x > 0) else (
            self.mp.mpf(-1) if self.test(x < 0) else self.mp.mpf(0)), a[0])

    def max_(self, e, a):
        return self.each(lambda x, y: x if self.test(x >= y) else y, a[0], a[1])

    def min_(self, e, a):
        return self.each(lambda x, y: x if self.test(x <= y) else y, a[0], a[1])

    def compare(self, e, a):
        test = {"gt": lambda x, y: x > y, "ge": lambda x, y: x >= y,
                "lt": lambda x, y: x < y, "le": lambda x, y: x <= y}[e.op]
        one, zero = self.mp.mpf(1), self.mp.mpf(0)
        return self.each(lambda x, y: one if self.test(test(x, y)) else zero, a[0], a[1])

    def mean(self, e, a):
        return np.sum(a[0]) / a[0].size

    def norm(self, e, a):
        return self.mp.sqrt(np.sum(a[0] * a[0]))

    def logsumexp(self, e, a):
        return self.mp.log(np.sum(self.each(self.mp.exp, a[0])))

    def softmax(self, e, a):
        ex = self.each(self.mp.exp, a[0])
        return ex / np.sum(ex)

    def det(self, e, a):
        return self.mp.det(self.mp.matrix(a[0].tolist()))

    def logdet(self, e, a):
        return self.real(self.mp.log)(abs(self.det(e, a)))

    def inv(self, e, a):
        try:
            m = self.mp.inverse(self.mp.matrix(a[0].tolist()))
        except (ArithmeticError, ValueError):
            return np.full(a[0].shape, self.nan, dtype=object)
        return np.array(m.tolist(), dtype=object)

    def diag(self, e, a):
        x = a[0]
        if x.shape[1] == 1 and e.shape[1] != "1":             # column -> diagonal matrix
            out = self.mpf(np.zeros((x.shape[0], x.shape[0])))
            for i in range(x.shape[0]):
                out[i, i] = x[i, 0]
            return out
        return np.diag(x).reshape(-1, 1)

    def kron(self, e, a):
        x, y = a
        return np.block([[y * x[i, j] for j in range(x.shape[1])] for i in range(x.shape[0])])


_MP_TABLE = dict(_TABLE)
_MP_TABLE.update({op: (lambda name: lambda self, e, a: self.fn(name)(e, a))(op)
                  for op in ("sin", "cos", "tan", "exp", "log", "sqrt")})
_MP_TABLE.update({op: getattr(_MpEvaluator, op) for op in (
    "num", "var", "dim", "const", "ones", "eye", "zeros", "pow", "tanh", "sigmoid", "relu",
    "sign", "mean", "norm", "logsumexp", "softmax", "det", "logdet", "inv", "diag",
    "kron")})
_MP_TABLE.update({"abs": _MpEvaluator.abs_, "max": _MpEvaluator.max_,
                  "min": _MpEvaluator.min_, **{op: _MpEvaluator.compare for op in _COMPARE}})


# The operands whose kinks (non-differentiable points) a random point must avoid: the
# argument of relu/abs/sign, and the difference of the two operands of max/min/> >= < <=.
KINK_UNARY = ("relu", "abs", "sign")
KINK_BINARY = ("max", "min", "gt", "ge", "lt", "le")


def kink_distance(e, values: dict, sizes: dict[str, int], memo: dict | None = None) -> float:
    """How close the point is to a kink of any relu/abs/sign/max/min/comparison in e:
    the smallest |argument| (or |a - b|) over every such node and entry; inf if none."""
    memo = {} if memo is None else memo
    ev = _Evaluator(values, sizes, memo)
    nearest = np.inf
    seen, stack = set(), [e]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.args)
        if node.op in KINK_UNARY:
            gap = np.abs(ev.run(node.args[0]))
        elif node.op in KINK_BINARY:
            gap = np.abs(ev.run(node.args[0]) - ev.run(node.args[1]))
        else:
            continue
        gap = gap[np.isfinite(gap)]
        if gap.size:
            nearest = min(nearest, float(np.min(gap)))
    return nearest
