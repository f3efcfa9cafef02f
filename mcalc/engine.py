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

import itertools

from mcalc import expr as E
from mcalc import rules as R
from mcalc.derivation import Step
from mcalc.errors import McalcError, NoRule
from mcalc.expr import Expr
from mcalc.simplify import Simplifier


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


class Graph:
    """The intermediate variables of `f` with respect to the variable named `x`."""

    def __init__(self, f: Expr, x: str):
        self.x = x
        self.order: list[Expr] = []               # intermediates, inputs first
        self.name: dict[Expr, Expr] = {}          # node -> its variable (u1, U2, y)
        dep: dict[Expr, bool] = {}
        stack = [(f, False)]
        while stack:
            node, ready = stack.pop()
            if node in dep:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if a not in dep)
                continue
            d = (node.op == "var" and node.name == x) or any(dep[a] for a in node.args)
            dep[node] = d
            if d and node.op != "var":
                self.order.append(node)
        self.dep = dep
        # A transposed vector (w' in w'@x) is written inline, not as an intermediate of its
        # own: vec(w') = w, so its partials are those of w (P&H's w·x is one step).
        self.transparent = {n for n in self.order
                            if n.op == "T" and n.args[0].is_column and n is not f}
        self.order = [n for n in self.order if n not in self.transparent]
        root, letter = labels(f)
        for k, node in enumerate(self.order, 1):
            label = root if node is self.order[-1] and node == f else \
                (f"{letter.upper()}{k}" if node.is_matrix else f"{letter}{k}")
            self.name[node] = E.var(label, node.shape)
        for node in sorted(self.transparent, key=lambda n: n.size):
            inner = node.args[0]
            self.name[node] = Expr("T", (self.name.get(inner, inner),), node.shape)
        self.root = f

    def through(self, e: Expr) -> Expr:
        """The node that receives e's derivative: the vector inside an inline transpose."""
        return e.args[0] if e in self.transparent else e

    def depends(self, e: Expr) -> bool:
        return self.dep.get(e, False)

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

    def __init__(self, f: Expr, x: Expr, method: str, simplifier: Simplifier):
        f = binary_products(f)
        self.f, self.x, self.method = f, x, method
        self.simp = simplifier
        self.g = Graph(f, x.name)
        self.steps: list[Step] = []               # intermediate definitions and notes
        self.partials: list[Step] = []
        self.chains: list[Step] = []
        self.kinks: list[str] = []

    # -- the four steps --------------------------------------------------------------
    def run(self, layout: str) -> Expr:
        """The derivative in `layout`; the steps end with its substituted, simplified form."""
        g = self.g
        if not g.depends(self.f):
            return self.orient(self.zero(), layout)
        if self.f.op == "var":
            return self.orient(self.identity(), layout)
        for node in g.order:
            self.steps.append(Step("define", g.label(node), g.local(node)))
        if self.x.is_scalar:
            out = self.forward()
        elif self.f.is_scalar:
            out = self.backward_gradient()
        else:
            out = self.backward_jacobian()
        self.steps += self.partials + self.chains
        substituted = g.substitute(self.orient(out, layout))
        self.steps.append(Step("substitute", (g.label(self.f), self.x.name),
                               _shown(substituted, size=MAX_SHOWN_SUBSTITUTED)))
        fired: list[str] = []
        self.simp.fired = fired
        result = self.simp(substituted)
        if result != substituted and fired:
            self.steps.append(Step("simplify", (g.label(self.f), self.x.name), result,
                                   rule=", ".join(fired) or "simplify"))
        for k in dict.fromkeys(self.kinks):
            self.steps.append(Step("note", text=k))
        return result

    def orient(self, out: Expr, layout: str) -> Expr:
        """Numerator layout is the transpose of a gradient; denominator its transpose."""
        numerator = self.simp(R.T(out)) if self.f.is_scalar and not self.x.is_scalar else out
        return numerator if layout == "numerator" else self.simp(R.T(numerator))

    @property
    def vec_form(self) -> bool:
        return not self.x.is_scalar and not self.f.is_scalar and \
            (self.x.is_matrix or self.f.is_matrix)

    def zero(self):
        self.steps.append(Step("note", text=f"the expression does not depend on {self.x.name}"))
        if self.x.is_scalar:
            return E.zeros(self.f.shape)
        if self.f.is_scalar:
            return E.zeros(self.x.shape)
        return E.zeros((R.numel(self.f), R.numel(self.x)))

    def identity(self):
        self.steps.append(Step("note", text=f"∂{self.x.name}/∂{self.x.name} is the identity"))
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
        if show and jac is not None:
            self.partials.append(Step("partial", (self.g.label(node), self.g.label(node.args[i])),
                                      jac, rule=rule.name, source=rule.cite))
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
        return [i for i, a in enumerate(node.args) if self.g.depends(a)]

    def _path(self, node, a):
        """∂f/∂node ∂node/∂a (just ∂f/∂a when node is f itself)."""
        own = (self.g.label(node), self.g.label(a))
        return (own,) if node is self.f else ((self.g.label(self.f), self.g.label(node)), own)

    def _chain(self, terms, node) -> dict:
        """The chain rule that combines `terms`, as Step fields: rule and source."""
        if len(terms) > 1:
            return {"rule": "total-derivative chain rule", "source": "P&H §4.5.2"}
        if node.is_scalar and self.x.is_scalar and self.f.is_scalar:
            return {"rule": "single-variable chain rule", "source": "P&H §4.5.1"}
        return {"rule": "vector chain rule", "source": "P&H §4.5.3"}

    def forward(self) -> Expr:
        """x scalar: dy/dx = Σ ∂y/∂u du/dx, inputs first (forward accumulation)."""
        g, x = self.g, self.x
        tangent: dict[Expr, Expr] = {x: E.ONE}
        for node in g.order:
            if node.op in ("vector", "matrix"):          # a literal: component by component
                parts = [self.simp(tangent[a]) if g.depends(a) else E.ZERO for a in node.args]
                value = Expr(node.op, tuple(parts), node.shape)
                terms = [((g.label(node), "components"), ("components", x.name))]
            else:
                total, terms = [], []
                for i in self._operands(node):
                    a = node.args[i]
                    rule, local, _ = self.partial(node, i)
                    da = tangent[g.through(a)]
                    if a in g.transparent:
                        da = self.simp(R.T(da))
                    total.append(self.named(rule.differential(local, i, da), node, keep=da))
                    own = (g.label(node), g.label(a))
                    terms.append((own,) if a == x else (own, (g.label(a), x.name)))
                value = self.simp(R.add(*total) if len(total) > 1 else total[0])
            tangent[node] = value
            self.chains.append(Step("chain", (g.label(node), x.name), _shown(value, node is self.f),
                                   **self._chain(terms, node), terms=tuple(terms)))
        return tangent[self.f]

    def backward_gradient(self) -> Expr:
        """f scalar: the gradient flows back from y (dL = G : dU  ->  G' : dA)."""
        g, x = self.g, self.x
        grads: dict[Expr, list] = {self.f: [E.ONE]}
        terms: dict[Expr, list] = {}
        moved: dict[Expr, list] = {}                 # operand -> rules that moved G onto it
        differential = self.method == "differential" or self.x.is_matrix and self.method != "chain"
        for node in reversed(g.order):
            G = self.simp(R.add(*grads[node]) if len(grads[node]) > 1 else grads[node][0])
            grads[node] = [G]
            if node is not self.f:
                self._report_gradient(node, G, terms.get(node, ()), differential,
                                      moved.get(node, ()))
            for i in self._operands(node):
                a = node.args[i]
                rule, local, _ = self.partial(node, i, show=not differential)
                contrib = self.simp(self.named(rule.grad(local, i, G), node, keep=G))
                if differential:
                    self.chains.append(Step("differential", g.label(self.f), _shown(G),
                                            rule=rule.name, source=rule.cite,
                                            text=self._gradient_symbol(node),
                                            by=self.simp(self.named(rule.differential(
                                                local, i, self._d_operand(a)), node))))
                if a in g.transparent:
                    contrib = self.simp(R.T(contrib))
                terms.setdefault(g.through(a), []).append(self._path(node, a))
                moved.setdefault(g.through(a), []).append(rule.name)
                grads.setdefault(g.through(a), []).append(contrib)
        G = self.simp(R.add(*grads[x]) if len(grads[x]) > 1 else grads[x][0])
        self._report_gradient(x, G, terms.get(x, ()), differential, moved.get(x, ()))
        return G

    def _gradient_symbol(self, node: Expr) -> str:
        """How a differential step names a gradient too large to show: ∂y/∂u3."""
        return f"∂{self.g.label(self.f)}/∂{self.g.label(node)}"

    def _d_operand(self, a: Expr) -> Expr:
        """d of an operand: dw, or dw' for an inline transpose."""
        inner = self.g.through(a)
        d = _d(self.g.label(inner), inner)
        return Expr("T", (d,), a.shape) if a is not inner else d

    def _report_gradient(self, node, G, terms, differential, moved_by=()):
        if differential:
            d_node = _d(self.g.label(node), node)
            last = self.chains[-1] if self.chains else None
            if last is not None and last.kind == "differential" and last.by == d_node \
                    and last.rhs == G:
                return                             # the rule left the gradient as it was
            # G : du, with du written out by the rule, read as (moved gradient) : da
            rule = (f"{moved_by[0]}: move the factors off d{self.g.label(node)}"
                    if len(moved_by) == 1 else "sum over every use (total differential)")
            self.chains.append(Step("differential", self.g.label(self.f),
                                    _shown(G, node == self.x), rule=rule,
                                    text=self._gradient_symbol(node),
                                    by=_d(self.g.label(node), node)))
        else:
            # ∂y/∂u in numerator layout: Gᵀ for a column or a matrix, G itself for a row
            shown = G if G.is_scalar or G.is_row else self.simp(R.T(G))
            self.chains.append(Step("chain", (self.g.label(self.f), self.g.label(node)),
                                    _shown(shown, node == self.x),
                                    **self._chain(terms, node), terms=tuple(terms)))

    def backward_jacobian(self) -> Expr:
        """f non-scalar: Jacobians multiply from the output back (vec forms for matrices)."""
        g, x = self.g, self.x
        jac: dict[Expr, list] = {self.f: [E.eye(R.numel(self.f))]}
        terms: dict[Expr, list] = {}
        for node in reversed(g.order):
            J = self.simp(R.add(*jac[node]) if len(jac[node]) > 1 else jac[node][0])
            if node is not self.f:
                self.chains.append(Step("chain", (g.label(self.f), g.label(node)), _shown(J),
                                       **self._chain(terms.get(node, ()), node),
                                       terms=tuple(terms.get(node, ()))))
            for i in self._operands(node):
                a = node.args[i]
                rule, local, part = self.partial(node, i)
                if part is None:
                    part = rule.jacobian(local, i)           # raises NoRule with the reason
                jac.setdefault(g.through(a), []).append(R.mm(J, part))
                terms.setdefault(g.through(a), []).append(self._path(node, a))
        J = self.simp(R.add(*jac[x]) if len(jac[x]) > 1 else jac[x][0])
        self.chains.append(Step("chain", (g.label(self.f), x.name), J,
                               **self._chain(terms.get(x, ()), x),
                               terms=tuple(terms.get(x, ()))))
        return J


MAX_SHOWN = 80                 # a chain step's multiplied-out form larger than this is left out:
MAX_SHOWN_SUBSTITUTED = 400    # its factors are all shown, and a deep network stays linear


def _shown(e: Expr, always: bool = False, size: int = MAX_SHOWN) -> Expr | None:
    """What a step shows of a value: the value, or None (just the product of partials)."""
    return e if always or e.size <= size else None


def _d(label: str, like: Expr) -> Expr:
    """The differential d<label> as a variable of the same shape (marked, so that products
    write it last: 2*u2*du2)."""
    return Expr("var", (), like.shape, "d" + label, "differential")


def first_derivative(f: Expr, x: Expr, layout: str, method: str,
                     simplifier: Simplifier | None = None):
    """∂f/∂x in `layout`: (result, steps, vec_form)."""
    simp = simplifier or Simplifier()
    try:
        d = Derive(f, x, method, simp)
        result = d.run(layout)
        return result, d.steps, d.vec_form
    except NoRule as first_failure:
        # An intermediate with no 2-D form (diag(x)@a) may vanish once the expression is
        # simplified (x*a); if it does not, the first reason stands.
        simpler = simp(f)
        if simpler == f:
            raise
        try:
            d = Derive(simpler, x, method, simp)
            result = d.run(layout)
        except NoRule:
            raise first_failure from None
        note = Step("note", rhs=simpler, text="rewritten first by the simplification rules:")
        return result, [note] + d.steps, d.vec_form


def stacked_derivative(f: Expr, xs: list[Expr], layout: str, method: str,
                       simplifier: Simplifier | None = None):
    """d/d(x, y) f: the derivative by scalars stacked into one vector (P&H §3, §4)."""
    simp = simplifier or Simplifier()
    if not f.is_scalar and not f.is_column:
        raise McalcError("d/d(x, y) takes a scalar or a vector expression")
    cols, steps = [], []
    for x in xs:
        if not x.is_scalar:
            raise McalcError(f"d/d(...) stacks scalars; {x.name} is not a scalar")
        col, st, _ = first_derivative(f, x, "numerator", method, simp)
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
    steps.append(Step("chain", (labels(f)[0], stacked), jac,
                      rule="stack the partial derivatives",
                      source="P&H §3 (gradient), §4 (Jacobian)"))
    return jac, steps, False
