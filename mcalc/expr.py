"""The typed expression tree: immutable nodes with a shape.

One node class for everything (leaves, operators, functions): `op` names what it is,
`args` are the operands. Nodes are hashed once at construction, so structural
equality and dictionary look-ups stay O(1) on large shared trees (the engine and the
simplifier memoise on them). Shapes and their laws live in mcalc.types.
"""
from __future__ import annotations

from fractions import Fraction

from mcalc.types import SCALAR, Shape, shape_of

LEAVES = frozenset({"var", "num", "dim", "const", "ones", "eye", "zeros"})


class Expr:
    __slots__ = ("op", "args", "shape", "name", "value", "_hash", "size")

    def __init__(self, op: str, args: tuple = (), shape: Shape = SCALAR, name=None, value=None):
        self.op = op
        self.args = args
        self.shape = shape
        self.name = name
        self.value = value
        self._hash = hash((op, args, shape, name, value))
        self.size = 1 + sum(a.size for a in args)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return self is other or (
            isinstance(other, Expr) and self._hash == other._hash and self.op == other.op
            and self.shape == other.shape and self.name == other.name
            and self.value == other.value and self.args == other.args)

    def __repr__(self):
        from mcalc.printing.text import to_text
        return f"Expr({to_text(self)!r}, {self.shape})"

    # shape predicates
    @property
    def is_scalar(self) -> bool:
        return self.shape == SCALAR

    @property
    def is_column(self) -> bool:
        return self.shape[1] == "1" and self.shape[0] != "1"

    @property
    def is_row(self) -> bool:
        return self.shape[0] == "1" and self.shape[1] != "1"

    @property
    def is_vectorlike(self) -> bool:
        """A scalar, a column or a row: its vec is itself up to a transpose."""
        return "1" in self.shape

    @property
    def is_matrix(self) -> bool:
        return "1" not in self.shape

    @property
    def is_symmetric(self) -> bool:
        return self.op == "var" and self.value == "symmetric"


# ---- leaves ----------------------------------------------------------------

def var(name: str, shape: Shape, symmetric: bool = False) -> Expr:
    return Expr("var", (), shape, name, "symmetric" if symmetric else None)


def num(value) -> Expr:
    return Expr("num", (), SCALAR, None, Fraction(value))


def dim(name: str) -> Expr:
    """A dimension name used as a scalar (e.g. N in sum(y)/N)."""
    return Expr("dim", (), SCALAR, name)


def ones(n: str) -> Expr:
    return Expr("ones", (), (n, "1"))


def eye(n: str) -> Expr:
    return Expr("eye", (), (n, n))


def zeros(shape: Shape) -> Expr:
    return num(0) if shape == SCALAR else Expr("zeros", (), shape)


ZERO, ONE = num(0), num(1)


def make(op: str, *args: Expr, column: int = 0, name=None) -> Expr:
    """Build an operator node, checking the operands' shapes by the shape law of `op`."""
    return Expr(op, tuple(args), shape_of(op, [a.shape for a in args], column, args), name)


def is_number(e: Expr, value=None) -> bool:
    return e.op == "num" and (value is None or e.value == value)


def free_vars(e: Expr, _memo=None) -> frozenset[str]:
    """Names of the variables in e (iterative over the shared DAG)."""
    memo = {} if _memo is None else _memo
    stack = [e]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        pending = [a for a in node.args if a not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        own = frozenset((node.name,)) if node.op == "var" else frozenset()
        memo[node] = own.union(*(memo[a] for a in node.args)) if node.args else own
    return memo[e]


def depends_on(e: Expr, name: str, memo=None) -> bool:
    return name in free_vars(e, memo)
