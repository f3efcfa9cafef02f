"""The typed expression tree: immutable nodes with a shape.

One node class for everything (leaves, operators, functions): `op` names what it is,
`args` are the operands. Nodes are hashed once at construction, so structural
equality and dictionary look-ups stay O(1) on large shared trees (the engine and the
simplifier memoise on them). Shapes and their laws live in mcalc.types.
"""
from __future__ import annotations

import weakref
from _weakref import _remove_dead_weakref
from fractions import Fraction
from operator import attrgetter

from mcalc.types import SCALAR, Shape, dim_mul, shape_of

LEAVES = frozenset({"var", "num", "dim", "const", "ones", "eye", "zeros", "commutation"})


# The live nodes: key -> a weak reference to the node (a WeakValueDictionary's contents
# without its Python-code get and __setitem__: every node built looks itself up here
# first). An entry's reference carries its key, and its callback removes the entry when
# the node dies, unless a node built since holds the key (_remove_dead_weakref, in C,
# as WeakValueDictionary's own callback does, which is Python code doing more).
_INTERNED_REFS: dict = {}


def _forget(ref, _refs=_INTERNED_REFS, _drop=_remove_dead_weakref):
    _drop(_refs, ref.key)


class _KeyedRef(weakref.ref):
    """weakref.KeyedRef without its __new__ and __init__, which are Python code (two calls
    for every node made): the key is set after construction, which is all in C."""
    __slots__ = ("key",)
_SIZE = attrgetter("size")
_SHAPE = attrgetter("shape")

# How repr() writes a node: mcalc.printing.text registers its printer when it is imported
# (the printer sits above this module, which never imports it).
_show = None


def show_with(printer) -> None:
    global _show
    _show = printer


class Expr:
    """Hash-consed: building a node equal to a live one returns that very object, so
    equality is identity and shared subtrees are never compared element by element.
    Hence `==` and hash() are object's own (by identity, in C: no Python call at each
    dictionary look-up)."""
    __slots__ = ("op", "args", "shape", "name", "value", "size", "is_scalar", "__weakref__")

    def __new__(cls, op: str, args: tuple = (), shape: Shape = SCALAR, name=None, value=None,
                size: int | None = None):
        # the operands tuple itself: operands are interned (equal is identical) and hash
        # by identity, in C; a tuple of their ids would cost an int object per operand,
        # memory quadratic in n for the chain rule's products of 1, 2, ..., n factors. A
        # number (a Fraction, whose hash is Python code) by its numerator and denominator.
        if value is None or type(value) is not Fraction:      # (most nodes: no value)
            key = (op, args, shape, name, value)
        else:
            key = (op, shape, value._numerator, value._denominator)
        ref = _INTERNED_REFS.get(key)
        if ref is not None:
            node = ref()
            if node is not None:
                return node
        node = object.__new__(cls)
        node.op, node.args, node.shape, node.name, node.value = op, args, shape, name, value
        n = len(args)                          # (most nodes have one or two operands)
        node.size = size if size is not None else 1 if not n else 1 + args[0].size \
            if n == 1 else 1 + args[0].size + args[1].size if n == 2 else \
            1 + sum(map(_SIZE, args))          # (`size`: a caller that knows it, cheaper)
        node.is_scalar = shape == SCALAR       # asked everywhere: an attribute, not a call
        ref = _INTERNED_REFS[key] = _KeyedRef(node, _forget)
        ref.key = key
        return node

    def __reduce__(self):
        return (Expr, (self.op, self.args, self.shape, self.name, self.value))

    def __repr__(self):
        shown = _show(self) if _show else f"{self.op} of {self.size} nodes"
        return f"Expr({shown!r}, {self.shape})"

    # shape predicates (and is_scalar, set at construction)
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


# Expr.__new__ as a function, new(Expr, op, args, shape, ...): what Expr(...) does without
# the class call, which packs the arguments in a tuple, passes them on in another with the
# class in front, then calls __init__ (a third of the cost of a node that exists already).
# The builders that make most of a derivation's nodes call it.
new = Expr.__new__


# ---- leaves ----------------------------------------------------------------

def var(name: str, shape: Shape, symmetric: bool = False) -> Expr:
    return new(Expr, "var", (), shape, name, "symmetric" if symmetric else None)


def num(value) -> Expr:
    return new(Expr, "num", (), SCALAR, None, Fraction(value))


def dim(name: str) -> Expr:
    """A dimension name used as a scalar (e.g. N in sum(y)/N)."""
    return new(Expr, "dim", (), SCALAR, name)


def ones(n: str) -> Expr:
    return new(Expr, "ones", (), (n, "1"))


def eye(n: str) -> Expr:
    return new(Expr, "eye", (), (n, n)) if n != "1" else num(1)     # the 1×1 identity is 1


def commutation(m: str, n: str) -> Expr:
    """The mn×mn commutation matrix K_{m,n}: K@vec(A) = vec(A') for an m×n A. K_{1,n} and
    K_{n,1} are the identity."""
    if m == "1" or n == "1":
        return eye(n if m == "1" else m)
    mn = dim_mul(m, n)
    return Expr("commutation", (), (mn, mn), None, (m, n))


def zeros(shape: Shape) -> Expr:
    return num(0) if shape == SCALAR else new(Expr, "zeros", (), shape)


ZERO, ONE = num(0), num(1)


def make(op: str, *args: Expr, column: int = 0, name=None) -> Expr:
    """Build an operator node, checking the operands' shapes by the shape law of `op`."""
    return new(Expr, op, args, shape_of(op, list(map(_SHAPE, args)), column, args), name)


def is_number(e: Expr, value=None) -> bool:
    if e.op != "num":
        return False
    if type(value) is int:                     # (Fraction == int is Python code)
        return e.value._denominator == 1 and e.value._numerator == value
    return value is None or e.value == value


def postorder(root: Expr, done):
    """The nodes reachable from root that are not in `done`, children before parents,
    without recursion (trees may be deep). The caller puts each yielded node in `done`."""
    stack = [root]
    while stack:
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        if node.args:                          # (a leaf has nothing to wait for)
            pending = [a for a in node.args if a not in done]
            if pending:
                stack.extend(pending)
                continue
        stack.pop()
        yield node


def holds(e: Expr, node: Expr, keep: Expr | None = None) -> bool:
    """Whether node occurs in e, outside `keep` (a subtree known not to hold it); subtrees
    no larger than node are not walked. (replace's first look, for one node: no mapping
    to make, the usual answer no.)"""
    size = node.size
    if e.size < size:
        return False
    seen = set()
    stack = [e]
    while stack:
        n = stack.pop()
        if n is node:
            return True
        if n.size > size and n is not keep and n not in seen:
            seen.add(n)
            stack.extend(n.args)
    return False


def replace(e: Expr, mapping: dict, keep=()) -> Expr:
    """e with every occurrence of a key of `mapping` replaced by its value; the subtrees
    in `keep` are known to hold none and are left as they are, and so are those smaller
    than every key (they cannot hold one): not walked."""
    if not mapping:
        return e
    smallest = min(map(_SIZE, mapping))
    # First look for a key: the usual answer is none (an intermediate's own value is in few
    # of its partials), and looking is cheaper than rebuilding.
    seen = set(keep)
    stack = [e]
    while stack:
        node = stack.pop()
        if node in mapping:
            break
        if node.size > smallest and node not in seen:
            seen.add(node)
            stack.extend(node.args)
    else:
        return e
    done: dict[Expr, Expr] = {}
    for k in keep:                             # (none or one: no comprehension to call)
        done[k] = k
    stack = [e]
    while stack:                               # postorder, pruned: children first
        node = stack[-1]
        if node in done:
            stack.pop()
        elif node in mapping:
            done[node] = mapping[node]
            stack.pop()
        elif node.size <= smallest or not node.args:
            done[node] = node
            stack.pop()
        else:
            pending = False                    # (a loop: a comprehension is a call)
            for a in node.args:
                if a not in done:
                    stack.append(a)
                    pending = True
            if pending:
                continue
            stack.pop()
            args = tuple(map(done.__getitem__, node.args))
            done[node] = node if args == node.args else \
                new(Expr, node.op, args, node.shape, node.name, node.value)
    return done[e]


def dimension_names(*roots: Expr) -> set[str]:
    """The named dimensions in the shapes of the nodes (and dimension leaves) of roots."""
    return names_and_dimensions(*roots)[1]


def names_and_dimensions(*roots: Expr) -> tuple[set[str], set[str]]:
    """The names of the variables in roots, and dimension_names(*roots): one walk (in no
    particular order: a set is the answer)."""
    names: set[str] = set()
    dims: set[str] = set()                     # each dimension text once: few, nodes many
    done: set = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in done:
            continue
        done.add(node)
        dims.update(node.shape)
        if node.args:
            stack.extend(node.args)
        elif node.op == "var":
            names.add(node.name)
        elif node.op == "dim":
            dims.add(node.name)
    return names, {p for d in dims for p in d.split("*") if p and not p.isdigit()}


def free_vars(e: Expr, _memo=None) -> frozenset[str]:
    """Names of the variables in e. With `_memo` (kept by the caller) every subtree's set
    is remembered too; without, only e's is made (a set per node would grow along a long
    product chain, quadratic in its length)."""
    if _memo is None:
        names: set[str] = set()
        done: dict = {}
        for node in postorder(e, done):
            done[node] = True
            if node.op == "var":
                names.add(node.name)
        return frozenset(names)
    memo = _memo
    for node in postorder(e, memo):
        args = node.args
        if not args:
            memo[node] = frozenset((node.name,)) if node.op == "var" else _NO_VARS
        elif len(args) == 1:                   # f(x), x': the operand's set itself
            memo[node] = memo[args[0]]
        else:
            memo[node] = _NO_VARS.union(*[memo[a] for a in args])
    return memo[e]


_NO_VARS: frozenset[str] = frozenset()


def depends_on(e: Expr, name: str, memo=None) -> bool:
    return name in free_vars(e, memo)
