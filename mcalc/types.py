"""Types and shapes: the one module that knows them.

A shape is a pair of dimensions (rows, cols); a dimension is a string, a name ('n')
or a positive integer ('3'), or a product ('m*n') in vec forms. Scalars are 1×1,
vectors n×1 columns, their transposes 1×n rows.

`shape_of` is the shape law of every operator; `solve` types a parsed request by the
contract's rules (declarations, upper-case names are matrices, unification through
element-wise operators, constraints from @/sum/tr/…, the rest scalar); mcalc.build turns
the typed request into Expr trees.
"""
from __future__ import annotations

import functools
import itertools
import re

from mcalc.errors import McalcError
from mcalc.record import Record
from mcalc.syntax import Decl

Shape = tuple[str, str]
SCALAR: Shape = ("1", "1")

ELEMENTWISE_UNARY = ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid", "relu",
                     "abs", "sign")
ELEMENTWISE_BINARY = ("max", "min", "gt", "ge", "lt", "le")
REDUCTIONS = ("sum", "mean", "norm", "logsumexp")
SQUARE_TO_SCALAR = ("tr", "det", "logdet")
FUNCTIONS = ELEMENTWISE_UNARY + REDUCTIONS + SQUARE_TO_SCALAR + (
    "max", "min", "dot", "softmax", "trace", "inv", "diag", "kron", "vec", "ones", "eye",
    "transpose", "commutation")
RESERVED = ("I", "e", "pi")
DEFAULT_DIM_NAMES = ("n", "m", "k", "p", "q", "r", "s", "l", "j")


@functools.lru_cache(maxsize=1024)      # asked at every vec-form step; few distinct pairs
def dim_mul(a: str, b: str) -> str:
    """The product of two dimensions, canonical: numbers multiplied, names sorted."""
    number, names = 1, []
    for part in a.split("*") + b.split("*"):
        if part.isdigit():
            number *= int(part)
        else:
            names.append(part)
    parts = ([str(number)] if number != 1 or not names else []) + sorted(names)
    return "*".join(parts)


def describe(shape: Shape) -> str:
    """'scalar', 'vector(n)', 'row vector(n)', 'matrix(m, n)'."""
    r, c = shape
    if shape == SCALAR:
        return "scalar"
    if c == "1":
        return f"vector({r})"
    if r == "1":
        return f"row vector({c})"
    return f"matrix({r}, {c})"


def by(shape: Shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def _hint(op: str, a: Shape, b: Shape) -> str:
    """The fix a shape mismatch in an element-wise operator most likely needs."""
    if op in ("*", "⊗", "⊙", ".*") and ("1" in a) != ("1" in b):
        return "; did you mean @ (matrix product)?"
    if a == (b[1], b[0]):
        return "; one of them needs a transpose"
    return ""


def _mismatch(op_text: str, shapes, column, hint: str = "") -> McalcError:
    what = " and ".join(describe(s) for s in shapes)
    return McalcError(f"shape mismatch in {op_text}: {what}{hint}", column)


def _elementwise(op, shapes, column):
    """Scalars broadcast; the other operands have one shape, the result's."""
    out = SCALAR
    for s in shapes:
        if s != SCALAR:
            if out is SCALAR:
                out = s
            elif s != out:
                spelled = _SPELL.get(op, op)
                raise _mismatch(f"'{spelled}'", (out, s), column, _hint(spelled, out, s))
    return out


_SPELL = {"add": "+", "mul": "*", "pow": "^", "matmul": "@", "gt": ">", "ge": ">=", "lt": "<",
          "le": "<="}


def shape_of(op: str, shapes: list[Shape], column: int = 0, args=()) -> Shape:
    """The shape law of each operator: the result's shape, or a McalcError at `column`."""
    if op == "matmul":                       # (the most frequent first)
        out = shapes[0]
        for s in shapes[1:]:
            if out[1] != s[0]:
                hint = ""
                if out[1] == "1" and s[0] != "1" and out[0] == s[0]:
                    hint = "; did you mean to transpose the left operand (x'@A)?"
                raise _mismatch("'@'", (out, s), column, hint)
            out = (out[0], s[1])
        return out
    if op == "pow":
        if shapes[1] != SCALAR:
            raise McalcError("the exponent of ^ must be a scalar (element-wise power)", column)
        return shapes[0]
    if op in ("add", "mul") or op in ELEMENTWISE_BINARY:
        return _elementwise(op, shapes, column)
    if op in ELEMENTWISE_UNARY:
        return shapes[0]
    if op == "T":
        return (shapes[0][1], shapes[0][0])
    if op in REDUCTIONS:
        if shapes[0] == SCALAR and op != "norm":
            raise McalcError(f"{op}() takes a vector or matrix, not a scalar", column)
        return SCALAR
    if op == "dot":
        a, b = shapes
        if a[1] != "1" or a != b:
            raise _mismatch("dot()", (a, b), column, "; dot takes two vectors of one length")
        return SCALAR
    if op == "softmax":
        if shapes[0][1] != "1" or shapes[0] == SCALAR:
            raise McalcError(f"softmax() takes a vector, not a {describe(shapes[0])}", column)
        return shapes[0]
    if op in SQUARE_TO_SCALAR or op == "inv":
        r, c = shapes[0]
        if r != c or shapes[0] == SCALAR and op != "inv":
            raise McalcError(f"{op}() needs a square matrix, not a {describe(shapes[0])}", column)
        return SCALAR if op != "inv" else shapes[0]
    if op == "diag":
        r, c = shapes[0]
        if c == "1" and r != "1":
            return (r, r)
        if r == c and r != "1":
            return (r, "1")
        raise McalcError(f"diag() takes a vector or a square matrix, not a {describe(shapes[0])}",
                         column)
    if op == "kron":
        (a, b), (c, d) = shapes
        return (dim_mul(a, c), dim_mul(b, d))
    if op == "vec":
        return (dim_mul(shapes[0][0], shapes[0][1]), "1")
    raise McalcError(f"unknown operator {op}", column)


# ---- type inference ----------------------------------------------------------------

class VarType(Record):      # a Record, not a frozen dataclass: built on every cold call
    __slots__ = ("kind", "shape", "_text")
    _fields = ("kind", "shape")

    def __init__(self, kind: str, shape: Shape):    # kind: scalar|vector|matrix|symmetric
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "shape", shape)
        if kind == "scalar":
            text = "scalar"
        elif kind in ("vector", "symmetric"):
            text = f"{kind}({shape[0]})"
        else:
            text = f"matrix({shape[0]}, {shape[1]})"
        object.__setattr__(self, "_text", text)     # (str() of each variable's type is
                                                    # asked by every derivation)

    def __str__(self):
        return self._text


_var_types: dict[tuple[str, Shape], VarType] = {}   # (kind, shape) -> its VarType: the same
_VAR_TYPES_KEPT = 512                                # few recur in every request; bounded


def _var_type(kind: str, shape: Shape) -> VarType:
    vt = _var_types.get((kind, shape))
    if vt is None:
        if len(_var_types) >= _VAR_TYPES_KEPT:
            _var_types.clear()
        vt = _var_types[kind, shape] = VarType(kind, shape)
    return vt


class _UnionFind:
    __slots__ = ()

    def find(self):
        if self.parent is None:                    # (the usual: a root)
            return self
        root = self
        while root.parent is not None:
            root = root.parent
        node = self                                # path compression: later finds are O(1)
        while node.parent is not None and node.parent is not root:
            node.parent, node = root, node.parent
        return root


class _Dim(_UnionFind):
    """A dimension variable (union-find); `fixed` is a name or integer once known;
    `wide` marks a dimension of an upper-case (matrix) name, which cannot be 1."""
    __slots__ = ("parent", "fixed", "wide")

    def __init__(self, fixed=None, wide=False):
        self.parent, self.fixed, self.wide = None, fixed, wide



class _TV(_UnionFind):
    """A type variable (union-find): unknown, scalar, or an array (rows, cols)."""
    __slots__ = ("parent", "kind", "dims")

    def __init__(self, kind=None, dims=None):
        self.parent, self.kind, self.dims = None, kind, dims



class _Solver:
    def __init__(self, decls, source):
        self.source = source
        self.one = _Dim("1")
        self.named: dict[str, _Dim] = {}
        self.vars: dict[str, _TV] = {}
        self.symmetric: set[str] = set()
        self.deferred: dict[int, tuple] = {}      # id -> a constraint not applied yet, in order
        self.changes = 0            # counts unifications that may let a deferred step progress
        self.dim_names: set[str] = set()
        self.order: dict[str, None] = {}     # the variables, in order of first use
        self.declared: dict[str, Decl] = {}       # name -> its declaration
        self.products: list[tuple[_Dim, tuple[_Dim, ...]]] = []     # vec and kron sizes
        types: dict[str, tuple] = {}             # name -> (kind, dims) as declared
        for d in decls:
            try:
                dims = [self.product(*map(self.dim, x.split("*"))) if "*" in x else
                        self.dim(x) for x in d.dims]
            except McalcError as e:               # vector(0): at the declaration
                raise McalcError(e.message, e.column or d.column) from None
            for i, name in enumerate(d.names):
                if name in RESERVED:
                    raise McalcError(f"'{name}' is reserved and cannot be declared",
                                     d.name_column(i))
                first = self.declared.get(name)
                if first is not None:
                    # the same type again (-t and where, a check's pinned typing) adds
                    # nothing; another type would silently replace the first
                    if types[name] == (d.kind, dims):
                        continue
                    raise McalcError(f"'{name}' is declared twice, as {first.text()} and as "
                                     f"{d.text()}", d.name_column(i))
                self.declared[name] = d
                types[name] = (d.kind, dims)      # (a named size is one _Dim: 03 is 3)
                if d.kind == "scalar":
                    tv = self.scalar()
                elif d.kind == "vector":
                    tv = _TV("array", (dims[0], self.one))
                elif d.kind == "symmetric":
                    tv = _TV("array", (dims[0], dims[0]))
                    self.symmetric.add(name)
                else:
                    tv = _TV("array", (dims[0], dims[1]))
                self.vars[name] = tv
            self.dim_names.update(p for x in d.dims for p in x.split("*") if not p.isdigit())
        if decls and not self.dim_names.isdisjoint(self.declared):
            self._variable_and_dimension(decls)

    def _variable_and_dimension(self, decls):
        """A declared variable that is also a size in a declaration (n: scalar; x:
        vector(n)) is an error at whichever use comes second: the name would be a
        variable in the expression and a dimension in the typing."""
        uses: dict[str, list] = {}                # name -> [(order, column, what)]
        for k, d in enumerate(decls):
            for i, name in enumerate(d.names):
                uses.setdefault(name, []).append(((k, 0), d.name_column(i), None))
            for i, x in enumerate(d.dims):
                for p in x.split("*"):
                    uses.setdefault(p, []).append(((k, 1), d.dim_column(i), d))
        for name, found in uses.items():
            if name in self.declared and name in self.dim_names:
                var = next(u for u in found if u[2] is None)
                dim = next(u for u in found if u[2] is not None)
                raise McalcError(both_uses(name, self.declared[name], dim[2].text()),
                                 max(var[:2], dim[:2])[1])

    # dimensions
    def dim(self, text: str | None = None) -> _Dim:
        if text is None:
            return _Dim()
        if text == "1":
            return self.one
        if text.isdigit():
            # `03` is `3`; stripping zeros, not int(), keeps huge sizes within digit limits
            text = text.lstrip("0")
            if not text:
                raise McalcError("dimensions must be positive")
        return self.named.setdefault(text, _Dim(text))

    def unify_dim(self, a: _Dim, b: _Dim, column, what):
        if a.parent is not None:                   # (a root, the usual, needs no call)
            a = a.find()
        if b.parent is not None:
            b = b.find()
        if a is b:
            return
        if a.fixed and b.fixed and a.fixed != b.fixed:
            raise McalcError(f"dimension mismatch in {what}: {a.fixed} vs {b.fixed}", column)
        if (a is self.one and b.wide) or (b is self.one and a.wide):
            raise McalcError(f"dimension mismatch in {what}: an upper-case name is a matrix, "
                             "not a vector or a scalar", column)
        a.wide = b.wide = a.wide or b.wide
        self.changes += 1
        fa = fb = None
        if self.products:                          # (few requests have a kron or a vec)
            fa, fb = self._factors(a), self._factors(b)
        if a.fixed:
            b.parent = a
        else:
            a.parent = b
        if fa and fb:
            self._cancel(fa, fb, column, what)
        root = a.find()
        for fs in (fa, fb):         # d = d·k or 1 = k·l (x + kron(a, x)): the k are 1
            if fs and (root is self.one or any(f.find() is root for f in fs)):
                # no longer a product (d = d·1): named as any dimension is
                self.products = [(o, f) for o, f in self.products if o.find() is not root]
                for f in fs:
                    if f.find() is not root or root is self.one:
                        self.unify_dim(f, self.one, column, what)

    def _factors(self, d: _Dim) -> list | None:
        """The factors of d if it is a product (kron, vec), else None; a factor that is a
        product itself is replaced by its own (a = n·(n·a) in A + kron(x, kron(x, A)) is
        a = n·n·a, so n = 1)."""
        of = {id(out.find()): factors for out, factors in self.products}
        top = of.get(id(d))
        if top is None:
            return None
        out, stack, seen = [], [f.find() for f in reversed(top)], {id(d)}
        while stack:
            f = stack.pop()
            inner = of.get(id(f))
            if inner is None or id(f) in seen:
                out.append(f)
            else:
                seen.add(id(f))
                stack.extend(g.find() for g in reversed(inner))
        return out

    def _cancel(self, fa: list, fb: list, column, what):
        """Two equal products: common factors cancel (sizes are positive), so 2·r = 2·c
        makes r = c (tr(kron(X, eye(2))) needs a square X)."""
        rest = list(fb)
        left = []
        for f in fa:
            f = f.find()
            match = next((k for k, g in enumerate(rest) if g.find() is f), None)
            if match is None:
                left.append(f)
            else:
                rest.pop(match)
        if len(left) == 1 and len(rest) == 1:
            self.unify_dim(left[0], rest[0], column, what)

    def product(self, *factors: _Dim) -> _Dim:
        """The dimension that is the product of `factors` (vec(X) has rows·cols rows):
        named at once when the factors are, else once they are (_name_dims)."""
        factors = tuple(f for f in factors if f.find() is not self.one) or (self.one,)
        if len(factors) == 1:                   # n·1 is n (kron(x, 2) has x's rows)
            return factors[0]
        fixed = [f.find().fixed for f in factors]
        if all(fixed):
            return self.dim(functools.reduce(dim_mul, fixed))
        out = _Dim()
        self.products.append((out, factors))
        return out

    # types
    def scalar(self):
        return _TV("array", (self.one, self.one))

    def is_scalar(self, tv):
        t = tv if tv.parent is None else tv.find()
        return t.kind == "array" and t.dims[0].find() is self.one and t.dims[1].find() is self.one

    def unify(self, a: _TV, b: _TV, column=0, what="an element-wise operator"):
        if a.parent is not None:                   # (a root, the usual, needs no call)
            a = a.find()
        if b.parent is not None:
            b = b.find()
        if a is b:
            return
        if a.kind and b.kind:
            self.unify_dim(a.dims[0], b.dims[0], column, what)
            self.unify_dim(a.dims[1], b.dims[1], column, what)
            b.parent = a
        elif a.kind:
            b.parent = a
        else:
            a.parent = b
        if a.kind or b.kind:            # an unknown type became known (or dims merged)
            self.changes += 1

    def make_array(self, tv: _TV, rows=None, cols=None):
        """Force an unknown type to an array; lower-case unknowns become column vectors."""
        t = tv if tv.parent is None else tv.find()
        if t.kind is None:
            t.kind, t.dims = "array", (rows or self.dim(), cols or self.one)
            self.changes += 1
        return t


_DIVIDED = re.compile(r"(?<![\w.])([d∂])\s*/\s*$")     # `d /` before a name

_ARITY = {"max": 2, "min": 2, "dot": 2, "kron": 2, "commutation": 2}     # (others: 1)


def _unwind(steps, root) -> None:
    """Run steps(root), a generator that yields each node whose own steps must run before
    it goes on — a recursive walk written without recursion: the generators wait on a
    stack (a sum 3,000 terms long is as deep, beyond Python's recursion limit)."""
    stack = [steps(root)]
    while stack:
        for node in stack[-1]:
            stack.append(steps(node))
            break
        else:
            stack.pop()


class _Infer:
    """Walk the syntax tree once, recording each node's type variable."""

    def __init__(self, solver: _Solver):
        self.s = solver
        self.tv: dict[int, _TV] = {}
        self.pending: dict[int, tuple] = {}            # element-wise node -> its constraint
        self.defined: dict[str, object] = {}          # definitions in scope: name -> body
        self.all_defined: set[str] = set()
        self.resolved: dict[int, object] = {}         # id(name node) -> definition body
        self.dim_args: dict[int, tuple] = {}          # id(commutation(m, n) node) -> (m, n)
        self.orders: dict[int, list] = {}             # id(root) -> its nodes, as walk has them
        self.settled: dict[int, int] = {}             # id(node) -> s.changes it settled at

    def walk(self, root):
        # post-order, iterative (deep trees never reach the recursion limit): the nodes in
        # pre-order, right operand first, reversed (kept: mcalc.build.build goes the same way)
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(node.args)
        self.orders[id(root)] = order
        tv, visit, unsupported = self.tv, _VISIT, _Infer.unsupported
        for node in reversed(order):
            tv[id(node)] = visit.get(node.op, unsupported)(self, node)
        return tv[id(root)]

    def define(self, d, claim: bool = False):
        """`where t = expr`: type expr; from here on the name t stands for it. A claim's
        definitions come after the request is typed: its variables are known (declared,
        inferred, or pinned by mcalc.checker as declarations)."""
        s, name = self.s, d.name
        if name in RESERVED:
            raise McalcError(f"'{name}' is reserved and cannot be defined", d.column)
        if name in self.all_defined:
            raise McalcError(f"'{name}' is defined twice", d.column)
        if claim and (name in s.vars or name in s.declared):
            raise McalcError(f"'{name}' is a variable of the request; a claim cannot define "
                             "it (name the definition otherwise)", d.column)
        if name in s.declared:
            raise McalcError(f"'{name}' is both declared and defined; a name is one or the "
                             "other", d.column)
        if name in s.dim_names:
            raise McalcError(f"'{name}' is a dimension and cannot be defined", d.column)
        self.walk(d.body)
        if name in s.vars:                      # used earlier, or in its own definition
            raise McalcError(f"'{name}' is used as a variable before its definition (a "
                             "definition applies to the body and to later definitions)",
                             d.column)
        self.defined[name] = d.body
        self.all_defined.add(name)

    def t(self, node) -> _TV:
        return self.tv[id(node)]

    # the type of each kind of node, its operands typed already (_VISIT: by op)
    def number(self, n):
        return self.s.scalar()

    def matmul(self, n):
        s, out = self.s, _TV()
        for a in n.args:
            self.force_array(a)
        a, b = s.make_array(self.tv[id(n.args[0])]), s.make_array(self.tv[id(n.args[1])])
        try:
            self.step(("mm", a, b, out, n.column), final=True)
        except McalcError:
            for side, x in zip(("left", "right"), n.args):
                if s.is_scalar(self.tv[id(x)]):
                    self.refuse_scalar_operand(side, x)
            raise
        return out

    def refuse_scalar_operand(self, side, a):
        """A scalar operand of @ that makes its shapes clash (2@A): that is the error to
        report (numpy's @ refuses a scalar). mcalc.build finds the others once typed; a
        1×1 matrix product ((x'@y)@z') is no scalar operand."""
        inner = a
        while inner.op in ("T", "neg"):
            inner = inner.args[0]
        if inner.op != "matmul" and id(inner) not in self.resolved:
            raise McalcError(scalar_operand(side, a), a.column)

    def power(self, n):
        s = self.s
        s.unify(self.tv[id(n.args[1])], s.scalar(), n.column, "the exponent of ^")
        return self.tv[id(n.args[0])]

    def transposed(self, n):
        return self.transpose(n, self.tv[id(n.args[0])])

    def negated(self, n):
        return self.tv[id(n.args[0])]

    def unsupported(self, n):
        raise McalcError(f"unsupported syntax {n.op}", n.column)

    def name(self, n):
        s, name = self.s, n.text
        tv = s.vars.get(name)           # (a variable is never a definition, a constant or
        if tv is None:                  # a dimension)
            if name in self.defined:
                body = self.defined[name]
                self.resolved[id(n)] = body
                return self.tv[id(body)]
            if name in ("e", "pi"):
                return s.scalar()
            if name == "I":
                d = s.dim()
                return _TV("array", (d, d))
            if name in s.dim_names:
                return s.scalar()
            tv = s.vars[name] = _TV("array", (_Dim(wide=True), _Dim(wide=True))) \
                if name[0].isupper() else _TV()
        s.order[name] = None            # (a name used again keeps its place)
        return tv

    def transpose(self, n, operand: _TV) -> _TV:
        t = operand.find()
        if t.kind:
            return _TV("array", (t.dims[1], t.dims[0]))
        out = _TV()
        c = ("T", operand, out, n.column)
        self.s.deferred[id(c)] = c
        self.pending[id(n)] = c
        return out

    def elementwise(self, n):
        out = _TV()
        c = ("ew", self.tv[id(n.args[0])], self.tv[id(n.args[1])], out, n.column, n.text)
        self.s.deferred[id(c)] = c
        self.pending[id(n)] = c
        return out

    def settle(self, node):
        """Decide what can be decided below a node whose type is still unknown (so that
        s*B'@z sees s*B' as a matrix before @ asks for an array)."""
        if self.tv[id(node)].find().kind is None:      # (else nothing to do: no walk)
            _unwind(self._settle, node)

    def _settle(self, node):
        # (settle's steps, its operands yielded to be settled first: see _unwind)
        if self.tv[id(node)].find().kind is not None:
            return
        # A walk below node that let nothing progress is in vain again until a type
        # becomes known (s.changes, as in solve): force_array of a long chain of unknown
        # operands settles each link, which would walk the chain below it again and again.
        changes = self.s.changes
        if self.settled.get(id(node)) == changes:
            return
        yield from node.args
        c = self.pending.get(id(node))
        if c is not None and id(c) in self.s.deferred and self.step(c, final=False):
            del self.s.deferred[id(c)]
        if self.s.changes == changes:
            self.settled[id(node)] = changes

    def force_array(self, node):
        """An operand of @ (or a vector function) that is still unknown becomes a vector."""
        tv = self.tv[id(node)]
        if tv.find().kind is not None:                 # nothing to do: no walk
            return
        if node.args or id(node) in self.resolved:
            _unwind(self._force_array, node)
        else:                                          # a name: nothing below to settle
            self.s.make_array(tv)

    def _force_array(self, node):
        # (force_array's steps, the nodes it forces first yielded: see _unwind)
        tv = self.tv[id(node)]
        self.settle(node)
        if tv.find().kind is not None:
            return
        if node.op == "T":              # the operand first, as what it is (t1' with t1 = A + B:
            yield node.args[0]          # a matrix, by its definition — not a column by its name)
            inner = self.s.make_array(self.tv[id(node.args[0])])
            self.s.make_array(tv, inner.dims[1], inner.dims[0])
            return
        if node.op == "neg":
            yield node.args[0]
            return
        if id(node) in self.resolved:                 # a defined name: its definition
            yield self.resolved[id(node)]
            return
        c = self.pending.get(id(node))
        if c is not None and c[0] == "ew":
            # an element-wise result used as an array: its non-scalar operands are arrays
            # (and a transposed one a row: 2*x' is a row, not a column)
            for a in node.args:
                if not self.s.is_scalar(self.tv[id(a)]):
                    yield a
            if id(c) in self.s.deferred and self.step(c, final=False):
                del self.s.deferred[id(c)]
            if tv.find().kind is not None:
                return
        self.s.make_array(tv)

    def dimension(self, a, f: str) -> str:
        """The argument of ones()/eye(): a name, a positive integer, or their product m*n
        (the size of a vec form), as a dimension string."""
        if a.op == "mul" and a.text == "*":             # its factors, left to right
            factors, stack = [], [a]
            while stack:
                b = stack.pop()
                if b.op == "mul" and b.text == "*":
                    stack += reversed(b.args)
                else:
                    factors.append(self.dimension(b, f))
            return functools.reduce(dim_mul, factors)
        if a.op == "number" and a.text.isdigit() and a.text.strip("0"):
            return a.text.lstrip("0")
        if a.op != "name":
            raise McalcError(f"{f}() takes a dimension (a name, a positive integer or a "
                             "product of them)", a.column)
        s = self.s
        if a.text in s.declared:
            use = f"{f}({a.text})" if f != "commutation" else "in commutation()"
            raise McalcError(both_uses(a.text, s.declared[a.text], use), a.column)
        s.dim_names.add(a.text)
        s.vars.pop(a.text, None)
        s.order.pop(a.text, None)
        return a.text

    def literal(self, n):
        s = self.s
        if all(a.op == "list" for a in n.args):          # [[a, b], [c, d]]: rows
            widths = {len(r.args) for r in n.args}
            if len(widths) != 1:
                raise McalcError("rows of a matrix literal must have equal lengths", n.column)
            for r in n.args:
                for a in r.args:
                    s.unify(self.tv[id(a)], s.scalar(), a.column, "a matrix literal")
            return _TV("array", (s.dim(str(len(n.args))), s.dim(str(widths.pop()))))
        for a in n.args:
            if a.op == "list":
                raise McalcError("mix of rows and scalars in a literal", a.column)
            s.unify(self.tv[id(a)], s.scalar(), a.column, "a vector literal (entries are scalars)")
        return _TV("array", (s.dim(str(len(n.args))), s.one))

    def call(self, n):
        s, f, args = self.s, n.text, n.args
        if f not in FUNCTIONS:
            # d / dx (x^2) is d divided by a call of dx: a derivative prefix, spaced
            d = _DIVIDED.search(s.source, 0, n.column - 1) if f[0] in "d∂" else None
            if d and s.source.startswith(f, n.column - 1):
                raise McalcError(f"write the derivative prefix as {d[1]}/{f}, without spaces "
                                 "around '/'", d.start() + 1)
            raise McalcError(f"unknown function '{f}'", n.column)
        arity = _ARITY.get(f, 1)
        if len(args) != arity:
            raise McalcError(f"{f}() takes {arity} argument{'s' * (arity > 1)}, got {len(args)}",
                             n.column)
        ts = list(map(self.tv.__getitem__, map(id, args)))
        if f in ELEMENTWISE_UNARY:
            return ts[0]
        if f in ("max", "min"):
            return self.elementwise(n)
        if f in ("ones", "eye"):
            d = s.dim(self.dimension(args[0], f))
            return _TV("array", (d, s.one if f == "ones" else d))
        if f == "commutation":                   # K_{m,n}: mn×mn
            m, n_ = (self.dimension(a, f) for a in args)
            self.dim_args[id(n)] = (m, n_)
            d = s.dim(dim_mul(m, n_))
            return _TV("array", (d, d))
        for a in args:
            self.force_array(a)
        if f in REDUCTIONS:
            return s.scalar()
        if f == "dot":
            s.unify(ts[0], ts[1], n.column, "dot()")
            return s.scalar()
        if f == "softmax":
            return ts[0]
        if f in SQUARE_TO_SCALAR or f in ("trace", "inv"):
            t = ts[0].find()
            if t.dims[1].find() is s.one and t.dims[0].find() is not s.one:
                raise McalcError(f"{f}() needs a square matrix, not a vector", n.column)
            s.unify_dim(t.dims[0], t.dims[1], n.column, f"{f}() (a square matrix)")
            return ts[0] if f == "inv" else s.scalar()
        if f == "diag":
            t = ts[0].find()
            d = t.dims[0]
            if t.dims[1].find() is s.one:
                return _TV("array", (d, d))
            s.unify_dim(t.dims[0], t.dims[1], n.column, "diag() (a square matrix)")
            return _TV("array", (d, s.one))
        if f == "transpose":
            return self.transpose(n, ts[0])
        a = ts[0].find()
        if f == "vec":
            return _TV("array", (s.product(*a.dims), s.one))
        b = ts[1].find()                                # kron: rows times rows, cols times cols
        return _TV("array", (s.product(a.dims[0], b.dims[0]), s.product(a.dims[1], b.dims[1])))

    def solve(self):
        """Passes over the deferred constraints, in order, applying each that can progress;
        when a pass applies none, the first remaining one is forced (final=True).

        A pass that applies nothing changes nothing, and a forced step that unifies only
        unknown types (s.changes unchanged) cannot let any other constraint progress, so the
        pass after such a step is skipped and the next one is forced at once: the outcome
        is that of passing every time, in linear rather than quadratic time on long chains
        of unknown element-wise operands (x + x + ... + x)."""
        s = self.s
        pending = list(s.deferred.values())
        s.deferred.clear()
        while pending:
            rest = [c for c in pending if not self.step(c, final=False)]
            if len(rest) < len(pending):
                pending[:] = rest
                continue
            k = 0
            while k < len(pending):
                before = s.changes
                self.step(pending[k], final=True)
                k += 1
                if s.changes != before:
                    break
            del pending[:k]

    def mismatch(self, op: str, a: _TV, b: _TV, column) -> McalcError:
        """Both shapes as far as they are known, and the likely fix."""
        shapes = [tuple(d.find().fixed or "?" for d in t.find().dims) for t in (a, b)]
        return _mismatch(f"'{op}'" if op else "an element-wise operator", shapes, column,
                         _hint(op, *shapes))

    def step(self, c, final):
        s = self.s
        kind = c[0]
        if kind == "ew":
            _, a, b, out, col, op = c
            if s.is_scalar(a):
                s.unify(out, b, col)
            elif s.is_scalar(b):
                s.unify(out, a, col)
            elif a.find().kind or b.find().kind or out.find().kind and not s.is_scalar(out) \
                    or final:
                try:
                    s.unify(a, b, col)
                except McalcError:
                    raise self.mismatch(op, a, b, col) from None
                s.unify(out, a, col)
            else:
                return False
            return True
        if kind == "T":
            _, a, out, col = c
            ta, to = a.find(), out.find()
            if ta.kind:
                s.unify(out, _TV("array", (ta.dims[1], ta.dims[0])), col, "a transpose")
            elif to.kind:
                s.unify(a, _TV("array", (to.dims[1], to.dims[0])), col, "a transpose")
            elif final:
                s.unify(a, out, col)
            else:
                return False
            return True
        _, a, b, out, col = c                                          # matmul
        ta, tb = a.find(), b.find()
        try:
            s.unify_dim(ta.dims[1], tb.dims[0], col, "'@' (inner dimensions)")
        except McalcError as e:
            left, right = (tuple(d.find().fixed or "?" for d in t.dims) for t in (ta, tb))
            if left[1] == "1" and left[0] != "1":        # x@A: a column on the left
                raise _mismatch("'@'", (left, right), col,
                                "; did you mean to transpose the left operand (x'@A)?") from None
            raise e from None
        s.unify(out, _TV("array", (ta.dims[0], tb.dims[1])), col, "'@'")
        return True


_VISIT = {"name": _Infer.name, "call": _Infer.call, "number": _Infer.number,
          "matmul": _Infer.matmul, "add": _Infer.elementwise, "sub": _Infer.elementwise,
          "mul": _Infer.elementwise, "div": _Infer.elementwise, "compare": _Infer.elementwise,
          "pow": _Infer.power, "T": _Infer.transposed, "neg": _Infer.negated,
          "list": _Infer.literal}


def _match_products(solver: _Solver):
    """Two products of dimensions found equal with nothing in common to cancel — m·p = k·n
    in tr(kron(X, Y)) or kron(X, Y)@kron(A, B) — have many solutions; with free factors of
    as many, the one that matches them in order (k = m, n = p: X and Y square) is taken,
    rather than no typing at all. A declared size keeps its product as it is."""
    groups: dict[int, list] = {}
    for out, factors in solver.products:
        groups.setdefault(id(out.find()), []).append([f.find() for f in factors])
    for fss in groups.values():
        first = fss[0]
        for fs in fss[1:]:
            if len(fs) == len(first) and all(f.fixed is None for f in first + fs):
                for f, g in zip(first, fs):
                    solver.unify_dim(f, g, 0, "a product of dimensions")


def _fresh_names(used) -> itertools.filterfalse:
    """The textbook dimension names not in `used`, then n1, n2, ... (unbounded: any number
    of free dimensions); all in C, as most requests take none or one."""
    return itertools.filterfalse(used.__contains__, itertools.chain(
        DEFAULT_DIM_NAMES, map("n{}".format, itertools.count(1))))


def _name_dims(solver: _Solver, used: set[str]):
    """Give free dimensions textbook names: vectors first (n), then matrices (m, n)."""
    pool = None                                 # made at the first free dimension: most
    products = set()                            # requests have none
    if solver.products:                         # (few requests have a kron or a vec)
        _match_products(solver)
        for out, factors in solver.products:
            # a product fixed from outside (commutation(m, n)@vec(X)) names free factors
            parts, fs = (out.find().fixed or "").split("*"), [f.find() for f in factors]
            if out.find().fixed and len(parts) == len(fs) and all(f.fixed is None for f in fs):
                for f, part in zip(fs, parts):
                    solver.unify_dim(f, solver.dim(part), 0, "a product of dimensions")
        for out, _ in solver.products:
            r = out.find()
            if r.fixed is None:
                products.add(id(r))

    def name(d: _Dim):
        nonlocal pool
        r = d.find()
        if r.fixed is None and id(r) not in products:   # a product is named by its factors
            if pool is None:
                pool = _fresh_names(used)
            r.fixed = next(pool)

    # vectors' lengths first, then every variable's (cols, rows), in order of appearance
    lengths, sizes = [], []
    for v in solver.order:
        tv = solver.vars.get(v)
        t = tv.find() if tv is not None else None
        if t is not None and t.kind:
            rows, cols = t.dims[0].find(), t.dims[1].find()
            if cols is solver.one and rows.fixed is None:       # (named ones are skipped:
                lengths.append(rows)                             # a scalar's, most often)
            if cols.fixed is None:
                sizes.append(cols)
            if rows.fixed is None:
                sizes.append(rows)
    for d in lengths + sizes:
        name(d)
    # inner products first (post-order); a product whose factor is a product unified
    # with a variable's size (A's columns = I's rows·n in kron(I, x') + kron(x, A)) waits
    # for that one: passes until none is named
    pending = list(solver.products)
    while pending:
        waiting = []
        for out, factors in pending:
            r = out.find()
            if r.fixed is None:
                for f in factors:                       # a factor no variable has: the
                    name(f)                             # size of I in vec(I) + x
                parts = [f.find().fixed for f in factors]
                if all(parts):
                    r.fixed = functools.reduce(dim_mul, parts)
                else:
                    waiting.append((out, factors))
        if len(waiting) == len(pending):
            break
        pending = waiting


def _resolve_dim(d: _Dim, solver) -> str:
    r = d.find()
    if r.fixed is None:
        _name_dims(solver, set())
        r = r.find()
    if r.fixed is None:                  # a dimension no variable has (I on its own)
        taken = set(solver.named) | set(solver.vars) | solver.dim_names | {
            x.find().fixed for tv in solver.vars.values() if tv.find().kind
            for x in tv.find().dims}
        r.fixed = next(_fresh_names(taken))
    return r.fixed


def scalar_operand(side: str, syntax) -> str:
    """The error for x@b with a scalar b (the contract's @: matrices and vectors only)."""
    what = f" ('{syntax.text}')" if syntax.op in ("name", "number") else ""
    return (f"the {side} operand of @ is a scalar{what}; @ multiplies matrices and vectors: "
            "scale with *")


def both_uses(name: str, decl, dimension_use: str) -> str:
    """The error for a name declared as a variable and used as a dimension."""
    return (f"'{name}' is a declared variable, not a dimension: it is declared "
            f"({name}: {decl.text()}) and used as a size ({dimension_use}); a name is one or "
            "the other")


class Typing:
    """The typing of one request: every variable's type, the dimension names and the
    defined names (`where t = …`). Written out, not a dataclass: built on every cold call."""
    def __init__(self, vars: dict[str, VarType], dims: frozenset[str],
                 defined: frozenset[str] = frozenset()):
        self.vars, self.dims, self.defined = vars, dims, defined

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return (self.vars, self.dims, self.defined) == (other.vars, other.dims, other.defined)
        return NotImplemented

    __hash__ = None                      # mutable, as the dataclass it replaces

    def __repr__(self):
        return f"Typing(vars={self.vars!r}, dims={self.dims!r}, defined={self.defined!r})"

    def not_a_variable(self, name: str) -> str:
        """Why d/d<name> has nothing to differentiate by."""
        if name in self.defined:
            return f"'{name}' is a definition (where {name} = …), not a variable; " \
                "differentiate by the variables it is made of"
        if name in self.dims:
            return f"'{name}' is a dimension (a size), not a variable"
        if name in RESERVED:
            meaning = {"I": "the identity matrix", "e": "Euler's number", "pi": "π"}[name]
            return f"'{name}' is a constant ({meaning}), not a variable"
        return f"'{name}' does not appear in the expression"

    def as_strings(self) -> dict[str, str]:
        return {k: v._text for k, v in self.vars.items()}      # (str(v), without a call)


def solve(bodies, decls, source: str = "", defs=(), local_defs=()):
    """Type the syntax trees `bodies` (request and, for check, the claim) together:
    (typing, the inference — each node's type and each defined name's definition —, and
    the shape of a node's type). mcalc.build.infer builds the typed trees from them.

    `defs` (mcalc.syntax.Definition, in order) apply to every body; `local_defs[i]` to
    bodies[i] alone (a claim's own definitions)."""
    solver = _Solver(decls, source)
    inf = _Infer(solver)
    for d in defs:
        inf.define(d)
    for i, body in enumerate(bodies):
        scope = dict(inf.defined)
        for d in (local_defs[i] if i < len(local_defs) else ()):
            inf.define(d, claim=i > 0)
        inf.walk(body)
        inf.defined = scope
    inf.solve()
    roots = {}                          # name -> its type (fixed from here on)
    for name, tv in solver.vars.items():
        t = roots[name] = tv.find()
        if t.kind is None:                                           # the rest is scalar
            t.kind, t.dims = "array", (solver.one, solver.one)
    used = set(solver.named) | set(solver.vars) | solver.dim_names
    _name_dims(solver, used)
    typing = {}
    sizes = set()
    order = list(solver.order)          # the variables in order of use (a subset of vars)
    if len(order) < len(solver.vars):   # then those declared but not used
        order += [v for v in solver.vars if v not in solver.order]
    for name in order:
        t = roots[name]
        shape = (t.dims[0].find().fixed, t.dims[1].find().fixed)
        if name in solver.symmetric:
            typing[name] = _var_type("symmetric", shape)
        elif shape == SCALAR:
            typing[name] = _var_type("scalar", shape)
        elif shape[1] == "1":
            typing[name] = _var_type("vector", shape)
        else:
            typing[name] = _var_type("matrix", shape)
        sizes.update(shape)
    dims = set(solver.dim_names)
    for d in sizes:
        if "*" in d:                                                    # m*n: m and n
            dims.update(p for p in d.split("*") if not p.isdigit())
        elif not d.isdigit():
            dims.add(d)
    result = Typing(typing, frozenset(dims), frozenset(inf.all_defined))
    return result, inf, lambda tv: _shape_of_tv(tv, solver)


def _shape_of_tv(tv: _TV, solver) -> Shape:
    t = tv.find()
    if t.kind is None:
        return SCALAR
    return (_resolve_dim(t.dims[0], solver), _resolve_dim(t.dims[1], solver))


def parse_dim_size(d: str, sizes: dict[str, int]) -> int:
    """The integer value of a dimension string under `sizes` ('m*n' multiplies)."""
    out = 1
    for part in d.split("*"):
        out *= int(part) if part.isdigit() else sizes[part]
    return out

