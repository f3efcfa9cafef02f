"""The derivation engine: Parr & Howard's four steps, applied for real.

1. introduce an intermediate variable for every operator application that depends on the
   variable (identical subexpressions share one, which is what makes a total derivative);
2. take each one's partial derivatives by a named rule of mcalc.rules;
3. combine them by the chain rule — forward for a scalar variable (dy/dx = dy/du du/dx),
   backward for a scalar function of a vector or matrix (the gradient flows from the
   output; for matrices this is the differential method dL = G : dX), and backward with
   Jacobians (vec/Kronecker forms beyond 2-D) otherwise;
4. substitute the intermediates back and simplify.

The engine knows no individual rule and never prints: it returns steps as data.
"""
from __future__ import annotations

import dataclasses
import itertools

from mcalc import expr as E
from mcalc import rules as R
from mcalc.derivation import Eq, Step
from mcalc.errors import McalcError, NoRule
from mcalc.expr import Expr
from mcalc.simplify import Simplifier
from mcalc.types import SCALAR, dim_mul


def binary_products(e: Expr) -> Expr:
    """A@B@C as (A@B)@C: each intermediate is one product of two operands."""
    memo: dict[Expr, Expr] = {}

    def go(n):
        got = memo.get(n)
        if got is None:
            args = tuple(go(a) for a in n.args)
            if n.op == "matmul" and len(args) > 2:
                got = args[0]
                for a in args[1:]:
                    got = E.make("matmul", got, a)
            else:
                got = n if args == n.args else Expr(n.op, args, n.shape, n.name, n.value)
            memo[n] = got
        return got
    return go(e)


def labels(f: Expr) -> tuple[str, str]:
    """The name of the expression (y) and the letter of its intermediates (u), chosen so
    that neither collides with a variable or a dimension of f."""
    taken = set(E.free_vars(f)) | set(f.shape)
    fallback = (f"y_{k}" for k in range(len(taken) + 1))
    root = next(r for r in itertools.chain(("y", "f", "L", "out"), fallback) if r not in taken)
    letters = itertools.chain(("u", "v", "t"), (f"u{k}_" for k in range(len(taken) + 1)))
    letter = next(c for c in letters if not any(n.startswith((c, c.upper())) for n in taken))
    return root, letter


class Names:
    """The names of one derivation's intermediates: each defined once, never a variable's,
    a dimension's or another intermediate's (a second derivative or another stacked scalar
    continues the same list, and a node met again keeps its name)."""

    def __init__(self, f: Expr, taken=()):
        self.root, self.letter = labels(f)
        self.taken = set(E.free_vars(f)) | E.dimension_names(f) | set(taken) | {self.root}
        self.k = 0
        self.of: dict[Expr, str] = {}            # node -> its name
        self.defined: set[str] = set()
        self.partials: set = set()               # (of, by) pairs already stated

    def copy(self) -> "Names":
        other = Names.__new__(Names)
        other.restore(self)
        return other

    def restore(self, other: "Names"):
        """Take back the state of `other` (a copy): an attempt that failed named nothing."""
        self.root, self.letter, self.k = other.root, other.letter, other.k
        self.taken, self.of = set(other.taken), dict(other.of)
        self.defined, self.partials = set(other.defined), set(other.partials)

    def fresh(self, base: str = "", upper: bool = False) -> str:
        """base itself if free (g), else base2, base3 ...; without base: u1, U2, ..."""
        if base:
            cands = itertools.chain((base,), (f"{base}{k}" for k in itertools.count(2)))
            name = next(c for c in cands if c not in self.taken)
        else:
            while True:
                self.k += 1
                name = f"{self.letter.upper() if upper else self.letter}{self.k}"
                if name not in self.taken:
                    break
        self.taken.add(name)
        return name


def numerator_shape(of: tuple, by: tuple) -> tuple:
    """The contract's numerator-layout shape of ∂of/∂by when it is not a vec form."""
    if by == SCALAR:
        return of
    if of == SCALAR:
        return (by[1], by[0])
    return (dim_mul(*of), dim_mul(*by))


def derivative_eq(kind: str, of: str, by: str, of_shape, by_shape, rhs: Expr,
                  layout: str = "numerator") -> Eq:
    """∂of/∂by = rhs (kind 'partial' or 'total'), marked vec where rhs is ∂vec/∂vec in a
    case whose usual shape is another one (a scalar by a matrix, a matrix by a scalar)."""
    num = rhs.shape if layout == "numerator" else (rhs.shape[1], rhs.shape[0])
    return Eq(kind, of, by, rhs, layout=layout, vec=num != numerator_shape(of_shape, by_shape))


class Graph:
    """The intermediate variables of `f` with respect to the variables named in `xs` (one,
    or the stacked scalars of d/d(x, y): one graph serves every pass)."""

    def __init__(self, f: Expr, xs: tuple, names: Names | None = None, root: str = ""):
        self.order: list[Expr] = []               # intermediates, inputs first
        self.name: dict[Expr, Expr] = {}          # node -> its variable (u1, U2, y)
        dep: dict[Expr, frozenset] = {}           # node -> the variables of xs it uses
        none = frozenset()
        stack = [(f, False)]
        while stack:
            node, ready = stack.pop()
            if node in dep:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in reversed(node.args) if a not in dep)
                continue
            d = frozenset((node.name,)) if node.op == "var" and node.name in xs else \
                none.union(*(dep[a] for a in node.args))
            dep[node] = d
            if d and node.op != "var":
                self.order.append(node)
        self.dep = dep
        # A transposed vector (w' in w'@x) is written inline, not as an intermediate of its
        # own: vec(w') = w, so its partials are those of w (P&H's w·x is one step).
        self.transparent = {n for n in self.order
                            if n.op == "T" and n.args[0].is_column and n is not f}
        self.order = [n for n in self.order if n not in self.transparent]
        names = names or Names(f)
        self.names = names
        for node in self.order:
            if node is self.order[-1] and node == f and (root or node not in names.of):
                label = root or names.root
            else:
                label = names.of.get(node) or names.fresh(upper=node.is_matrix)
            names.of.setdefault(node, label)
            self.name[node] = E.var(label, node.shape)
        for node in sorted(self.transparent, key=lambda n: n.size):
            inner = node.args[0]
            self.name[node] = Expr("T", (self.name.get(inner, inner),), node.shape)
        self.root = f

    def through(self, e: Expr) -> Expr:
        """The node that receives e's derivative: the vector inside an inline transpose."""
        return e.args[0] if e in self.transparent else e

    def depends(self, e: Expr, x: str | None = None) -> bool:
        d = self.dep.get(e, ())
        return bool(d) if x is None else x in d

    def local(self, node: Expr) -> Expr:
        """The node with its operands replaced by their intermediate names."""
        return Expr(node.op, tuple(self.name.get(a, a) for a in node.args), node.shape,
                    node.name, node.value)

    def label(self, e: Expr) -> str:
        e = self.through(e)
        return self.name[e].name if e in self.name else e.name

    def substitute(self, e: Expr) -> Expr:
        """Step 4: the intermediates replaced by what they stand for."""
        return E.replace(e, {v: k for k, v in self.name.items()})


class Derive:
    """One first derivative: ∂f/∂x (f any expression, x a variable)."""

    def __init__(self, f: Expr, x: Expr, method: str, simplifier: Simplifier,
                 names: Names | None = None, root: str = "", within: tuple = ()):
        f = binary_products(f)
        self.f, self.x, self.method = f, x, method
        self.simp = simplifier
        self.g = Graph(f, within or (x.name,), names, root)
        self.root = root or self.g.names.root
        self.steps: list[Step] = []               # intermediate definitions and notes
        self.partials: list[Step] = []
        self.chains: list[Step] = []
        self.kinks: list[str] = []

    # -- the four steps --------------------------------------------------------------
    def run(self, layout: str) -> Expr:
        """The derivative in `layout`; the steps end with its substituted, simplified form."""
        g = self.g
        if not g.depends(self.f, self.x.name) or self.f.op == "var":
            if self.f.op == "var" and self.f.name == self.x.name:
                text, out = f"∂{self.x.name}/∂{self.x.name} is the identity", self.identity()
            else:
                text, out = f"the expression does not depend on {self.x.name}", self.zero()
            result = self.orient(out, layout)
            if self.root not in g.names.defined:
                g.names.defined.add(self.root)
                self.steps.append(Step("define", self.root, self.f,
                                       eq=Eq("define", self.root, rhs=self.f)))
            self.steps.append(Step("note", text=text, eq=self._total(self.root, result, layout)))
            return result
        for node in g.order:
            label = g.label(node)
            if label not in g.names.defined:
                g.names.defined.add(label)
                local = g.local(node)
                self.steps.append(Step("define", label, local, eq=Eq("define", label, rhs=local)))
        if self.method == "differential" and (self.x.is_scalar or not self.f.is_scalar):
            out = self.forward_differential()
        elif self.x.is_scalar:
            out = self.forward()
        elif self.f.is_scalar:
            out = self.backward_gradient()
        else:
            out = self.backward_jacobian()
        self.steps += self.partials + self.chains
        for k in dict.fromkeys(self.kinks):
            self.steps.append(Step("note", text=k))
        of = g.label(self.f)
        oriented = self.orient(out, layout)
        if self.method == "differential" and self.f.is_scalar and not self.x.is_scalar:
            # dy = G : dX: G is the gradient (denominator layout), its transpose numerator
            self.steps.append(Step("identify", (of, self.x.name), _shown(oriented), rule=(
                "identification: dy = G : dX gives the gradient G" +
                ("" if layout == "denominator" else "; numerator layout: its transpose")),
                source="M&N ch. 9; P&H §4", eq=self._total(of, oriented, layout)))
        elif layout == "denominator" and oriented != self.orient(out, "numerator"):
            self.steps.append(Step("layout", (of, self.x.name), _shown(oriented),
                                   rule="denominator layout: transpose", source="P&H §4",
                                   eq=self._total(of, oriented, layout)))
        substituted = g.substitute(oriented)
        last = next((s.eq for s in reversed(self.steps) if s.eq is not None), None)
        said = last is not None and last.kind in ("partial", "total") and last.of == of \
            and last.by == self.x.name and last.rhs == substituted and last.layout == layout
        if not said:                                # no line says this yet
            self.steps.append(Step("substitute", (of, self.x.name),
                                   _shown(substituted, size=MAX_SHOWN_SUBSTITUTED),
                                   eq=self._total(of, substituted, layout)))
        fired: list[str] = []
        self.simp.fired = fired
        result = self.simp(substituted)
        if result != substituted and fired:         # a named rewrite changed it
            self.steps.append(Step("simplify", (of, self.x.name), result,
                                   rule=", ".join(dict.fromkeys(fired)),
                                   eq=self._total(of, result, layout)))
        return result

    def _total(self, of: str, rhs: Expr, layout: str = "numerator") -> Eq:
        """d(of)/dx = rhs, x the variable."""
        shape = self.f.shape if of == self.g.label(self.f) or of == self.root else \
            next(n.shape for n, v in self.g.name.items() if v.name == of)
        return derivative_eq("total", of, self.x.name, shape, self.x.shape, rhs, layout)

    def orient(self, out: Expr, layout: str) -> Expr:
        """Numerator layout is the transpose of a gradient; denominator its transpose."""
        numerator = self.simp(R.T(out)) if self.f.is_scalar and not self.x.is_scalar else out
        return numerator if layout == "numerator" else self.simp(R.T(numerator))

    @property
    def vec_form(self) -> bool:
        return not self.x.is_scalar and not self.f.is_scalar and \
            (self.x.is_matrix or self.f.is_matrix)

    def zero(self):
        if self.x.is_scalar:
            return E.zeros(self.f.shape)
        if self.f.is_scalar:
            return E.zeros(self.x.shape)
        return E.zeros((R.numel(self.f), R.numel(self.x)))

    def identity(self):
        return E.ONE if self.x.is_scalar else E.eye(R.numel(self.x))

    def partial(self, node: Expr, i: int, show: bool = True):
        """Step 2: the partial of one intermediate by one operand, by its named rule."""
        local = self.g.local(node)
        rule = R.rule_for(local, i)
        if rule.kink:
            self.kinks.append(rule.kink)
        try:
            jac = self.simp(self.named(rule.jacobian(local, i), node))
        except NoRule:
            jac = None
        key = (self.g.label(node), self.g.label(node.args[i]))
        by = self.g.through(node.args[i])
        eq = derivative_eq("partial", *key, node.shape, by.shape, jac) if jac is not None \
            else None
        if sum(self.g.through(a) is by for a in node.args) > 1:
            # x^x, X@X: one operand's share of the product rule, not a partial by x
            key, eq = (key[0], f"{key[1]} (operand {i + 1})"), None
        if show and jac is not None and key not in self.g.names.partials:
            self.g.names.partials.add(key)
            self.partials.append(Step("partial", key, jac, rule=rule.name, source=rule.cite,
                                      eq=eq))
        return rule, local, jac

    def named(self, e: Expr, node: Expr, keep: Expr | None = None) -> Expr:
        """Write the intermediate's own value by its name: exp(u1) -> u2 where u2 = exp(u1).
        `keep` (the incoming gradient or tangent) cannot contain it and is not searched,
        which keeps a deep network's derivation linear."""
        if node is self.f and self.f.op == "var":
            return e
        return E.replace(e, {self.g.local(node): self.g.name[node]},
                         keep=(keep,) if keep is not None else ())

    def _operands(self, node):
        """Operand indices that depend on x (X@X has two: the product rule)."""
        return [i for i, a in enumerate(node.args) if self.g.depends(a, self.x.name)]

    def _path(self, node, a):
        """∂f/∂node ∂node/∂a (just ∂f/∂a when node is f itself)."""
        own = (self.g.label(node), self.g.label(a))
        return (own,) if node is self.f else ((self.g.label(self.f), self.g.label(node)), own)

    def _chain(self, terms, node) -> dict:
        """The chain rule that combines `terms`, as Step fields: rule and source, chosen by
        the shapes of the step's own quantities (every one a scalar: single-variable)."""
        if len(terms) > 1:
            return {"rule": "total-derivative chain rule", "source": "P&H §4.5.2"}
        shapes = {v.name: v.shape for v in self.g.name.values() if v.op == "var"}
        shapes[self.x.name] = self.x.shape
        names = {n for pair in (terms[0] if terms else ()) for n in pair}
        if all(shapes.get(n, E.ONE.shape) == E.ONE.shape for n in names | {self.g.label(node)}):
            return {"rule": "single-variable chain rule", "source": "P&H §4.5.1"}
        return {"rule": "vector chain rule", "source": "P&H §4.5.3"}

    def forward(self) -> Expr:
        """x scalar: dy/dx = Σ ∂y/∂u du/dx, inputs first (forward accumulation)."""
        g, x = self.g, self.x
        tangent: dict[Expr, Expr] = {x: E.ONE}
        for node in g.order:
            if not g.depends(node, x.name):
                continue
            jac = None
            if node.op in ("vector", "matrix"):          # a literal: component by component
                parts = [self.simp(tangent[a]) if g.depends(a, x.name) else E.ZERO
                         for a in node.args]
                value = Expr(node.op, tuple(parts), node.shape)
                terms = [((g.label(node), "components"), ("components", x.name))]
            else:
                total, terms = [], []
                for i in self._operands(node):
                    a = node.args[i]
                    rule, local, jac = self.partial(node, i)
                    da = tangent[g.through(a)]
                    if a in g.transparent:
                        da = self.simp(R.T(da))
                    total.append(self.named(rule.differential(local, i, da), node, keep=da))
                    own = (g.label(node), g.label(a))
                    terms.append((own,) if a == x else (own, (g.label(a), x.name)))
                value = self.simp(R.add(*total) if len(total) > 1 else total[0])
            tangent[node] = value
            if terms == [((g.label(node), x.name),)] and jac == value:
                continue                                 # the partial above says it already
            label = g.label(node)
            self.chains.append(self._with_product(Step(
                "chain", (label, x.name), _shown(value, node is self.f),
                **self._chain(terms, node), terms=tuple(terms),
                eq=derivative_eq("total", label, x.name, node.shape, x.shape, value))))
        return tangent[self.f]

    def forward_differential(self) -> Expr:
        """The differential method for any shape (Magnus & Neudecker): the differential of
        each intermediate in terms of dX, inputs first, then the derivative read off the
        differential of the output, which is linear in dX (the identification theorem)."""
        g, x = self.g, self.x
        dx = _d(x.name, x)
        tangent: dict[Expr, Expr] = {x: dx}
        for node in g.order:
            if not g.depends(node, x.name):
                continue
            if node.op in ("vector", "matrix"):          # a literal: component by component
                value = Expr(node.op, tuple(self.simp(tangent[a]) if g.depends(a, x.name)
                                            else E.ZERO for a in node.args), node.shape)
                name, source = "components", ""
            else:
                total, rules = [], []
                for i in self._operands(node):
                    a = node.args[i]
                    rule, local, _ = self.partial(node, i, show=False)
                    da = tangent[g.through(a)]
                    if a in g.transparent:
                        da = self.simp(R.T(da))
                    total.append(self.named(rule.differential(local, i, da), node, keep=da))
                    rules.append(rule)
                value = self.simp(R.add(*total) if len(total) > 1 else total[0])
                product = len(rules) > 1 and node.op in ("mul", "matmul", "dot", "kron")
                name = "product rule" if product else \
                    " + ".join(dict.fromkeys(r.name for r in rules))
                source = "MC (eq. 37)" if product else \
                    "; ".join(dict.fromkeys(r.cite for r in rules))
            tangent[node] = value
            label = g.label(node)
            self.chains.append(Step("differential", label, rule=name, source=source,
                                    terms=((E.ONE, value, ""),),
                                    eq=Eq("differential", label, terms=((E.ONE, value),))))
        dF = self.simp(tangent[self.f])
        if x.is_scalar:                                   # dF = A dx
            J = self.simp(E.replace(dF, {dx: E.ONE}))
        else:                                             # ∂vec(dF)/∂vec(dX), dF linear
            inner = Derive(dF, dx, "chain", self.simp)
            J = inner.run("numerator")
        y = g.label(self.f)
        self.chains.append(Step(
            "identify", (y, x.name), _shown(J, True),
            rule=("identification: dF = A dx gives dF/dx = A" if x.is_scalar else
                  "identification: dF = A dx gives ∂F/∂x = A" if x.is_column else
                  "identification: dF = A dX B gives ∂vec(F)/∂vec(X) = kron(B', A)"),
            source="M&N ch. 9",
            eq=derivative_eq("total", y, x.name, self.f.shape, x.shape, J)))
        return J

    def _pending(self, grads: dict, done: set) -> list:
        """The terms G : d(u) of the whole differential: every node with a gradient that
        has not yet been moved onto its operands, the output side first."""
        g = self.g
        rank = {n: k for k, n in enumerate(g.order)}
        nodes = sorted((n for n in grads if n not in done), key=lambda n: -rank.get(n, -1))
        return [(self.simp(R.add(*grads[n]) if len(grads[n]) > 1 else grads[n][0]),
                 _d(g.label(n), n), n) for n in nodes]

    def _differential_step(self, terms, rule: str, source: str = ""):
        """dy = Σ G : dU over `terms` ((G, dU, node)), as one step and one equation."""
        y = self.g.label(self.f)
        shown = tuple((_shown(G, n is self.x), D, f"∂{y}/∂{self.g.label(n)}")
                      for G, D, n in terms)
        self.chains.append(Step("differential", y, rule=rule, source=source, terms=shown,
                                eq=Eq("differential", y, terms=tuple((G, D) for G, D, _ in terms))))

    def backward_gradient(self) -> Expr:
        """f scalar: the gradient flows back from y (dL = G : dU  ->  G' : dA)."""
        g, x = self.g, self.x
        grads: dict[Expr, list] = {self.f: [E.ONE]}
        terms: dict[Expr, list] = {}
        done: set = set()
        differential = self.method == "differential" or self.x.is_matrix and self.method != "chain"
        for node in reversed(g.order):
            if node not in grads:                     # depends on another stacked scalar
                continue
            G = self.simp(R.add(*grads[node]) if len(grads[node]) > 1 else grads[node][0])
            grads[node] = [G]
            if node is not self.f and not differential:
                self._report_gradient(node, G, terms.get(node, ()))
            others = self._pending(grads, done | {node}) if differential else []
            done.add(node)
            pieces, rules = [], []
            for i in self._operands(node):
                a = node.args[i]
                rule, local, _ = self.partial(node, i, show=not differential)
                contrib = self.simp(self.named(rule.grad(local, i, G), node, keep=G))
                if differential:
                    pieces.append(self.simp(self.named(rule.differential(
                        local, i, self._d_operand(a)), node)))
                    rules.append(rule)
                if a in g.transparent:
                    contrib = self.simp(R.T(contrib))
                terms.setdefault(g.through(a), []).append(self._path(node, a))
                grads.setdefault(g.through(a), []).append(contrib)
            if differential:
                self._differential_moves(node, G, others, pieces, rules, grads, done)
        G = self.simp(R.add(*grads[x]) if len(grads[x]) > 1 else grads[x][0])
        if not differential:
            self._report_gradient(x, G, terms.get(x, ()))
        return G

    def _differential_moves(self, node, G, others, pieces, rules, grads, done):
        """Two lines of the differential method for one intermediate: its differential
        written out by its rule (all terms of a product rule at once), then the factors
        moved off the differentials of its operands (Magnus & Neudecker, ch. 9)."""
        label = self.g.label(node)
        if len(rules) == 1:
            name, source = rules[0].name, rules[0].cite
        else:
            product = node.op in ("mul", "matmul", "dot", "kron")
            name = "product rule" if product else " + ".join(dict.fromkeys(r.name for r in rules))
            source = "MC (eq. 37)" if product else "; ".join(dict.fromkeys(r.cite for r in rules))
        written = [(G, R.add(*pieces) if len(pieces) > 1 else pieces[0], node)] + others
        self._differential_step(written, f"{name} on d{label}", source)
        after = self._pending(grads, done)
        if [(G, D) for G, D, _ in after] != [(G, D) for G, D, _ in written]:
            self._differential_step(after, "move the factors across ':' "
                                    "(G : A dU B = A'G B' : dU)", "MC (eq. 16)")

    def _d_operand(self, a: Expr) -> Expr:
        """d of an operand: dw, or dw' for an inline transpose."""
        inner = self.g.through(a)
        d = _d(self.g.label(inner), inner)
        return Expr("T", (d,), a.shape) if a is not inner else d

    def _report_gradient(self, node, G, terms):
        # ∂y/∂u in numerator layout: Gᵀ for a column or a matrix, G itself for a row
        shown = G if G.is_scalar or G.is_row else self.simp(R.T(G))
        y, u = self.g.label(self.f), self.g.label(node)
        eq = derivative_eq("total", y, u, self.f.shape, node.shape, shown)
        self._chain_step(node, terms, shown, eq)

    def _chain_step(self, node, terms, value, eq):
        """One line of the chain rule; a line that restates a partial is left out, and one
        that only reshapes a vec-form partial says so."""
        terms = tuple(terms)
        y, u = self.g.label(self.f), self.g.label(node)
        chain = self._chain(terms, node)
        if terms == (((y, u),),):
            stated = next((s.eq for s in self.partials if s.lhs == (y, u)), None)
            if stated is not None and stated.rhs == value:
                return
            if stated is not None:
                chain = {"rule": "the partial above, reshaped from its vec form",
                         "source": "MC §10.2.2"}
        self.chains.append(self._with_product(Step(
            "chain", (y, u), _shown(value, node == self.x), **chain, terms=terms, eq=eq)))

    def _with_product(self, step: Step) -> Step:
        """The step with the product of the partials it multiplies written out, when the
        simplifier's named rewrites turn that product into the value shown (ones(n)'@diag(x)
        = x'): a transformation is never silent."""
        stated = {s.lhs: s.eq for s in self.partials + self.chains
                  if s.eq is not None and not s.eq.vec}
        stated[(self.x.name, self.x.name)] = None
        total = []
        for term in step.terms:
            factors = [stated.get(p, False) for p in term]
            if any(f is False for f in factors):
                return step
            values = [E.ONE if f is None else f.rhs for f in factors]
            prod = values[0]
            try:                         # a vec form and a gradient do not multiply
                for v in values[1:]:
                    prod = R.mul(prod, v) if prod.is_scalar or v.is_scalar else R.mm(prod, v)
            except McalcError:
                return step
            total.append(prod)
        if not total or step.rhs is None or len({t.shape for t in total}) > 1:
            return step
        raw = R.add(*total) if len(total) > 1 else total[0]
        fired: list[str] = []
        self.simp.fired = fired
        try:
            same = raw != step.rhs and raw.size <= MAX_SHOWN and self.simp(raw) == step.rhs
        except McalcError:             # a product the simplifier cannot take as it stands
            return step
        if not same or not fired:
            return step
        return dataclasses.replace(step, product=raw,
                                   rule=f"{step.rule}; {', '.join(dict.fromkeys(fired))}")

    def backward_jacobian(self) -> Expr:
        """f non-scalar: Jacobians multiply from the output back (vec forms for matrices)."""
        g, x = self.g, self.x
        jac: dict[Expr, list] = {self.f: [E.eye(R.numel(self.f))]}
        terms: dict[Expr, list] = {}
        y = g.label(self.f)
        for node in reversed(g.order):
            if node not in jac:
                continue
            J = self.simp(R.add(*jac[node]) if len(jac[node]) > 1 else jac[node][0])
            if node is not self.f:
                self._chain_step(node, terms.get(node, ()), J, derivative_eq(
                    "total", y, g.label(node), self.f.shape, node.shape, J))
            for i in self._operands(node):
                a = node.args[i]
                rule, local, part = self.partial(node, i)
                if part is None:
                    part = rule.jacobian(local, i)           # raises NoRule with the reason
                jac.setdefault(g.through(a), []).append(R.mm(J, part))
                terms.setdefault(g.through(a), []).append(self._path(node, a))
        J = self.simp(R.add(*jac[x]) if len(jac[x]) > 1 else jac[x][0])
        self._chain_step(x, terms.get(x, ()), J, derivative_eq(
            "total", y, x.name, self.f.shape, x.shape, J))
        return J


MAX_SHOWN = 80                 # a chain step's multiplied-out form larger than this is left out:
MAX_SHOWN_SUBSTITUTED = 400    # its factors are all shown, and a deep network stays linear


def _shown(e: Expr, always: bool = False, size: int = MAX_SHOWN) -> Expr | None:
    """What a step shows of a value: the value, or None (just the product of partials)."""
    return e if always or e.size <= size else None


def _d(label: str, like: Expr) -> Expr:
    """The differential d(label) as a variable of the same shape (marked, so that products
    write it last: 2*u2*d(u2))."""
    return Expr("var", (), like.shape, f"d({label})", "differential")


def wrt_groups(req, typing):
    """Innermost derivative first: [(layout-independent) list of variable Exprs, stacked?]."""
    groups = []
    for k, group in enumerate(reversed(req.wrt)):
        col = req.wrt_columns[len(req.wrt) - 1 - k] if len(req.wrt_columns) > k else 0
        xs = []
        for name in group:
            if name not in typing.vars:
                raise McalcError(f"'{name}' does not appear in the expression", col)
            vt = typing.vars[name]
            xs.append(E.var(name, vt.shape, vt.kind == "symmetric"))
        if len(xs) > 1 and any(not x.is_scalar for x in xs):
            bad = next(x for x in xs if not x.is_scalar)
            raise McalcError(f"d/d(...) stacks scalars; {bad.name} is not a scalar", col)
        groups.append((xs, len(xs) > 1))
    return groups


def first_derivative(f: Expr, x: Expr, layout: str, method: str,
                     simplifier: Simplifier | None = None, names: Names | None = None,
                     root: str = "", within: tuple = ()):
    """∂f/∂x in `layout`: (result, steps, vec_form). `names` continues the intermediates
    of the derivation so far; `root` names f (g for the gradient a Hessian differentiates)."""
    simp = simplifier or Simplifier()
    names = names or Names(f)
    before = names.copy()
    try:
        d = Derive(f, x, method, simp, names, root, within)
        result = d.run(layout)
        return result, d.steps, d.vec_form
    except NoRule as first_failure:
        # An intermediate with no 2-D form (diag(x)@a) may vanish once the expression is
        # simplified (x*a); if it does not, the first reason stands.
        simpler = simp(f)
        if simpler == f:
            raise
        names.restore(before)
        try:
            d = Derive(simpler, x, method, simp, names, root, within)
            result = d.run(layout)
        except NoRule:
            raise first_failure from None
        note = Step("note", rhs=simpler, text="rewritten first by the simplification rules:")
        return result, [note] + d.steps, d.vec_form


def stacked_derivative(f: Expr, xs: list[Expr], layout: str, method: str,
                       simplifier: Simplifier | None = None, names: Names | None = None,
                       root: str = ""):
    """d/d(x, y) f: the derivative by scalars stacked into one vector (P&H §3, §4)."""
    simp = simplifier or Simplifier()
    names = names or Names(f)
    if not f.is_scalar and not f.is_column:
        raise McalcError("d/d(x, y) takes a scalar or a vector expression")
    cols, steps = [], []
    for x in xs:
        if not x.is_scalar:
            raise McalcError(f"d/d(...) stacks scalars; {x.name} is not a scalar")
        col, st, _ = first_derivative(f, x, "numerator", method, simp, names, root,
                                      tuple(v.name for v in xs))
        root = ""                               # named by the first pass
        cols.append(col)
        steps.extend(st)
    m = len(xs)
    if f.is_scalar:                             # the gradient: a row in numerator layout
        grad = Expr("vector", tuple(cols), (str(m), "1"))
        jac = grad if layout == "denominator" else Expr("T", (grad,), ("1", str(m)))
    elif all(c.op in ("vector", "zeros") for c in cols) and f.shape[0].isdigit():
        k = int(f.shape[0])
        rows = [[c.args[i] if c.op == "vector" else E.ZERO for c in cols] for i in range(k)]
        jac = Expr("matrix", tuple(e for r in rows for e in r), (str(len(rows)), str(m)))
        if layout == "denominator":
            t = [[rows[i][j] for i in range(len(rows))] for j in range(m)]
            jac = Expr("matrix", tuple(e for r in t for e in r), (str(m), str(len(rows))))
    else:
        # columns of any length: J = Σ ∂f/∂xᵢ eᵢᵀ (eᵢ the i-th unit vector of length m)
        units = [Expr("vector", tuple(E.ONE if j == i else E.ZERO for j in range(m)),
                      (str(m), "1")) for i in range(m)]
        jac = simp(R.add(*(R.mm(c, R.T(u)) for c, u in zip(cols, units))))
        jac = jac if layout == "numerator" else simp(R.T(jac))
    stacked = "(" + ", ".join(x.name for x in xs) + ")"
    of = names.of.get(binary_products(f)) or root or names.root
    steps.append(Step("chain", (of, stacked), jac,
                      rule="stack the partial derivatives",
                      source="P&H §3 (gradient), §4 (Jacobian)",
                      eq=Eq("total", of, stacked, jac, layout=layout)))
    return jac, steps, False
