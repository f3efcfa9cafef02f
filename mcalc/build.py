"""Syntax tree + typing -> typed Expr (the operators' synonyms resolved, shapes checked, S' = S
for a symmetric S)."""
from __future__ import annotations

from fractions import Fraction

from mcalc import expr as E
from mcalc.errors import McalcError
from mcalc.types import (ELEMENTWISE_BINARY, ELEMENTWISE_UNARY, SCALAR, Typing, scalar_operand,
                         shape_of, solve)

_CALL_ALIASES = {"trace": "tr", "transpose": "T"}
_COMPARE = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
MAX_EXPONENT = 10_000          # |p| in x^p: beyond it a power is pathological, not calculus


def infer(bodies, decls, source: str = "", defs=(), local_defs=()) -> tuple[list, Typing]:
    """Type the syntax trees `bodies` together (mcalc.types.solve) and build their typed
    trees. A defined name stands for its expression: the typed tree holds the expression
    (shared, not copied) wherever the name is used."""
    typing, inference, shape_of_tv = solve(bodies, decls, source, defs, local_defs)
    built: dict[int, E.Expr] = {}                   # id(syntax node) -> Expr, shared by all
    sym = _Symmetric(typing)
    roots = list(bodies)
    if defs or any(local_defs):
        roots = [d.body for d in defs] + [d.body for ds in local_defs for d in ds] + roots
    exprs = [build(b, typing, shape_of_tv, inference, built, sym) for b in roots]
    return exprs[len(exprs) - len(bodies):], typing


def build(root, typing, shape_of_tv, inference, done: dict | None = None,
          sym: "_Symmetric | None" = None) -> E.Expr:
    """The typed tree of `root`. `done` (id(syntax node) -> Expr) and `sym` are shared by
    the trees of one request, so a defined name is its definition's Expr, built before its
    uses, and is looked through for symmetric variables once."""
    done = {} if done is None else done
    sym = sym or _Symmetric(typing)
    resolved, dim_args = inference.resolved, inference.dim_args

    def shape_here(n):
        return shape_of_tv(inference.t(n))

    # nodes in pre-order, right operand first: reversed, that is the left-to-right
    # post-order (children before parents, and the same first error as a recursive walk);
    # a syntax tree shares no nodes (a defined name refers to its body through `resolved`).
    # The inference walked the tree so already, unless an operand is a size.
    order = None if dim_args else inference.orders.get(id(root))
    if order is None:
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            if node.args and not (dim_args and id(node) in dim_args):   # commutation(m, n):
                stack.extend(node.args)                                 # operands are sizes
    for node in reversed(order):
        key = id(node)
        if node.args:
            done[key] = E.commutation(*dim_args[key]) if dim_args and key in dim_args else \
                _node(node, list(map(done.__getitem__, map(id, node.args))), typing,
                      shape_here, sym)
        else:
            body = resolved.get(key) if resolved else None
            done[key] = done[id(body)] if body is not None else \
                _node(node, (), typing, shape_here, sym)
    return done[id(root)]


MAX_NUMBER_EXPONENT = 300      # 1e300: beyond it a literal would print as thousands of digits


_numbers: dict[str, E.Expr] = {}   # literal -> its node: the same few recur in every request
_NUMBERS_KEPT = 512                # bounded: cleared when full
_MINUS_ONE = E.num(-1)


def _number(text: str, column: int) -> E.Expr:
    node = _numbers.get(text)
    if node is not None:
        return node
    if len(text) > 40:
        raise McalcError("number too long", column)
    exponent = text.lower().partition("e")[2]
    if exponent and abs(int(exponent)) > MAX_NUMBER_EXPONENT:
        raise McalcError(f"number out of range ({text}; the limit is 1e±{MAX_NUMBER_EXPONENT})",
                         column)
    try:
        node = E.num(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise McalcError(f"bad number {text!r}", column) from None
    if len(_numbers) >= _NUMBERS_KEPT:
        _numbers.clear()
    _numbers[text] = node
    return node


def _node(n, args, typing, shape_here, sym) -> E.Expr:
    op, col = n.op, n.column                         # the most frequent operators first
    if op == "name":
        name = n.text
        vt = typing.vars.get(name)                   # (e, pi and I are never variables)
        if vt is not None:
            return E.var(name, vt.shape, vt.kind == "symmetric")
        if name == "e":
            return E.make("exp", E.ONE)
        if name == "pi":
            return E.Expr("const", (), SCALAR, "pi")
        if name == "I":
            return E.eye(shape_here(n)[0])
        return E.dim(name)
    if op == "number":
        return _number(n.text, col)
    if op == "call":
        f = _CALL_ALIASES.get(n.text, n.text)
        if f == "T":
            return sym.transpose(args[0], col)
        if f in ("ones", "eye"):
            return (E.ones if f == "ones" else E.eye)(shape_here(n)[0])
        if f in ("max", "min") and any(E.is_number(a, 0) for a in args) and f == "max":
            other = args[1] if E.is_number(args[0], 0) else args[0]
            return E.make("relu", other, column=col)
        return E.make(f, *args, column=col)
    if op == "matmul":
        if args[0].shape == SCALAR or args[1].shape == SCALAR:
            _no_scalar_operand(n, args)
        return E.make("matmul", *args, column=col)
    if op == "mul":
        return E.make("mul", *args, column=col)
    if op == "pow":
        p = args[1].value if args[1].op == "num" else None
        # |p| > MAX_EXPONENT on the Fraction's integer parts: comparing Fractions is slow
        if p is not None and abs(p.numerator) > MAX_EXPONENT * p.denominator:
            raise McalcError(f"exponent too large (|p| > {MAX_EXPONENT})", col)
        return E.make("pow", *args, column=col)
    if op == "add":
        return E.make("add", *args, column=col)
    if op == "sub":
        return E.make("add", args[0], E.make("mul", _MINUS_ONE, args[1]), column=col)
    if op == "neg":
        return E.make("mul", _MINUS_ONE, args[0], column=col)
    if op == "div":
        shape_of("mul", [a.shape for a in args], col)          # check the shapes as written
        return E.make("mul", args[0], E.make("pow", args[1], _MINUS_ONE), column=col)
    if op == "compare":
        return E.make(_COMPARE[n.text], *args, column=col)
    if op == "T":
        return sym.transpose(args[0], col)
    if op == "list":
        if all(a.op == "list" for a in n.args):
            rows = [_list_row(r, args[i]) for i, r in enumerate(n.args)]
            flat = tuple(x for row in rows for x in row)
            return E.Expr("matrix", flat, (str(len(rows)), str(len(rows[0]))))
        return E.Expr("vector", tuple(args), (str(len(args)), "1"))
    raise McalcError(f"unsupported syntax {op}", col)


def _no_scalar_operand(n, args) -> None:
    """The scalar operands of @ that typing found only once solved (x@b, b inferred)."""
    for side, a, s in zip(("left", "right"), args, n.args):
        inner = a                                     # (as typing: through ' and -)
        while inner.op == "T" or inner.op == "mul" and inner.args[0] is _MINUS_ONE:
            inner = inner.args[-1]
        if a.shape == SCALAR and inner.op != "matmul":
            raise McalcError(scalar_operand(side, s), s.column)


def _list_row(row_syntax, row_expr):
    return row_expr.args


# ---- S' is S for a symmetric S (CONTRACT §1) -------------------------------------------
# Rewritten here, as the typed tree is built, so requests and claims both have it before
# anything is differentiated. A transpose of an expression that holds S is pushed down to
# S through the operators ((A@S)' = S@A', (S*B)' = S*B'), so that the derivative, taken
# with S's n² entries independent, does not depend on where the request writes a transpose.

_THROUGH = frozenset(("add", "mul", "pow", "inv", "kron", "matmul") + ELEMENTWISE_UNARY
                     + ELEMENTWISE_BINARY)


class _Symmetric:
    """The request's symmetric variables, and which subtrees hold one (memoised)."""

    def __init__(self, typing: Typing):
        self.vars = typing.vars
        self.names: frozenset | None = None      # found at the first transpose
        self.memo: dict = {}                      # E.free_vars' memo

    def held(self, e: E.Expr) -> bool:
        names = self.names
        if names is None:
            names = self.names = frozenset(n for n, vt in self.vars.items()
                                           if vt.kind == "symmetric")
        return bool(names) and not names.isdisjoint(E.free_vars(e, self.memo))

    def transpose(self, a: E.Expr, column: int = 0) -> E.Expr:
        """a', with S' = S for every symmetric S in a (pushed down to it, no recursion)."""
        if not self.held(a):
            return E.make("T", a, column=column)
        done: dict[E.Expr, E.Expr] = {}              # node -> its transpose
        stack = [a]
        while stack:
            x = stack[-1]
            if x in done:
                stack.pop()
                continue
            if x.is_scalar or x.is_symmetric:
                done[x] = x
            elif x.op == "T":
                done[x] = x.args[0]
            elif x.op not in _THROUGH or not self.held(x):
                done[x] = E.make("T", x, column=column)
            else:
                todo = [y for y in x.args if y not in done]
                if todo:
                    stack.extend(todo)
                    continue
                ts = [done[y] for y in x.args]
                done[x] = E.make("matmul", *reversed(ts), column=column) if x.op == "matmul" \
                    else E.make(x.op, *ts, column=column)
            stack.pop()
        return done[a]
