"""The chain-rule method (Parr & Howard §4.5): partials of the intermediates multiplied
together — forward for a scalar variable (dy/dx = ∂y/∂u du/dx), backward for a scalar
function of a vector or matrix (the gradient flows from the output), and backward with
Jacobians (vec/Kronecker forms beyond 2-D) otherwise."""
from __future__ import annotations

from mcalc import expr as E
from mcalc import rules as R
from mcalc.derivation import Derivation, Total, make_step
from mcalc.errors import McalcError
from mcalc.expr import Expr
from mcalc.methods.graph import (MAX_SHOWN, Derive, _shown, derivative_eq, derive_groups,
                                 once, simplified, sum_with_names)

NAME = "chain"


class ChainRule(Derive):
    NAME = NAME

    def combine(self) -> Expr:
        if self.x.is_scalar:
            return self.forward()
        if self.f.is_scalar:
            return self.backward_gradient()
        return self.backward_jacobian()

    def at_node(self, node, G, terms, grads, done):
        if node is not self.f:
            self._report_gradient(node, G, terms.get(node, ()))

    def at_variable(self, G, terms):
        self._report_gradient(self.x, G, terms)

    def _chain(self, terms, node) -> dict:
        """The chain rule that combines `terms`, as Step fields: rule and source, chosen by
        the shapes of the step's own quantities (every one a scalar: single-variable)."""
        if len(terms) > 1:
            return {"rule": "total-derivative chain rule", "source": "P&H §4.5.2"}
        names = [self.g.label[node]]
        for pair in terms[0] if terms else ():
            names += pair
        if self._arrays.isdisjoint(names):
            return {"rule": "single-variable chain rule", "source": "P&H §4.5.1"}
        return {"rule": "vector chain rule", "source": "P&H §4.5.3"}

    @once
    def _arrays(self) -> frozenset:
        """The names of the intermediates and x that are not scalars: fixed once the graph
        is built, so taken once per derivation rather than at every chain step (linear in
        depth)."""
        shapes = dict(self.g.shapes)
        shapes[self.x.name] = self.x.shape
        return frozenset(n for n, shape in shapes.items() if shape != E.ONE.shape)

    def forward(self) -> Expr:
        """x scalar: dy/dx = Σ ∂y/∂u du/dx, inputs first (forward accumulation)."""
        g, x = self.g, self.x
        tangent: dict[Expr, Expr] = {x: E.ONE}
        refs: dict[Expr, tuple] = {x: (E.ONE, ())}       # what equations write (LargeNames)
        dep = g.dep                                      # (every node of f is in it)
        for node in g.order:
            if x.name not in dep[node]:
                continue
            jac, rules = None, []
            if node.op not in ("vector", "matrix"):      # (a literal: component by component)
                for i in self._operands(node):
                    rule, local, jac = self.partial(node, i, show=not self.quiet)
                    rules.append((i, rule, local))
            by_x = len(rules) == 1 and node.args[rules[0][0]] == x   # x alone varies
            if by_x and jac is not None and jac.shape == node.shape:
                value = tangent[node] = jac              # (the partial: simplified already)
            else:
                value = tangent[node] = self._tangent(node, rules, tangent)
            if self.quiet:
                continue
            label = g.label[node]
            terms = [] if rules else [((label, "components"), ("components", x.name))]
            for i, _, _ in rules:
                a = node.args[i]
                own = (label, g.label[a])
                terms.append((own,) if a == x else (own, Total(g.label[a], x.name)))
            stated, uses = value, ()
            last = node is self.f
            if not last and value.size > MAX_SHOWN:      # written with names for the large
                sources = [g.through[a] for a in node.args if x.name in dep[a]]
                stated = self._tangent(node, rules, {a: refs[a][0] for a in sources})
                uses = tuple(dict.fromkeys(u for a in sources for u in refs[a][1]))
            refs[node] = self.large.ref(value, stated, uses, label, x.name, label, last)
            if by_x and jac == value:
                continue                                 # the partial above says it already
            self.large.state(uses)
            self._append_chain((label, x.name), _shown(value, last), self._chain(terms, node),
                               tuple(terms),
                               derivative_eq("total", label, x.name, node.shape, x.shape, stated))
        return tangent[self.f]

    def gradient_form(self, G):
        # ∂y/∂u in numerator layout: Gᵀ for a column or a matrix, G itself for a row
        return G if G.is_scalar or G.is_row else self.simp(R.T(G))

    def _report_gradient(self, node, G, terms):
        shown, stated, uses = self.stated[node]       # (G's gradient_form, taken once)
        self._chain_step(node, terms, shown, stated, uses)

    def _chain_step(self, node, terms, value, stated, uses=()):
        """One line of the chain rule; a line that restates a partial is left out, and one
        that only reshapes a vec-form partial says so. `value` is the derivative; its
        equation states it as `stated`, with the names `uses` when it is too large to show."""
        terms = tuple(terms)
        y, u = self.g.label[self.f], self.g.label[node]
        chain = None
        if terms == (((y, u),),):
            first = self.partial_eqs.get((y, u))
            if first is not None and first.rhs == value:
                return
            if first is not None:
                chain = {"rule": "the partial above, reshaped from its vec form",
                         "source": "MC §10.2.2"}
        chain = chain or self._chain(terms, node)
        self.large.state(uses)
        self._append_chain((y, u), _shown(value, node == self.x), chain, terms,
                           derivative_eq("total", y, u, self.f.shape, node.shape, stated))

    @once
    def _chain_eqs(self) -> dict:
        """(of, by) -> the equation of its chain line, when not a vec form."""
        return {}

    def _append_chain(self, lhs: tuple, rhs: Expr | None, chain: dict, terms: tuple, eq):
        """Append a chain line (rhs: the value shown; chain: its rule and source), with the
        product of the partials it multiplies written out when the simplifier's named
        rewrites turn that product into the value shown (ones(n)'@diag(x) = x'): a
        transformation is never silent."""
        rule, product = chain["rule"], self._product(terms, rhs)
        if product is not None:
            product, fired = product
            rule = f"{rule}; {', '.join(dict.fromkeys(fired))}"
        self.chains.append(make_step("chain", lhs, rhs, rule=rule, terms=terms,
                                     source=chain["source"], eq=eq, product=product))
        if not eq.vec:
            self._chain_eqs[lhs] = eq

    def _product(self, terms: tuple, rhs: Expr | None) -> tuple | None:
        """(the product of the stated partials of `terms`, the names of the rewrites that
        simplify it to rhs), or None when it is not written out."""
        if rhs is None:
            return None
        partials, chains = self.partial_eqs, self._chain_eqs
        xx = (self.x.name, self.x.name)
        total = []
        for term in terms:
            prod = None
            for p in term:
                if p == xx:              # ∂x/∂x: the identity
                    v = E.ONE
                else:                    # a chain line over a partial of the same pair
                    eq = chains[p] if p in chains else partials.get(p)
                    if eq is None or eq.vec:
                        return None
                    v = eq.rhs
                if prod is None:
                    prod = v
                    continue
                try:                     # a vec form and a gradient do not multiply
                    prod = R.mul(prod, v) if prod.is_scalar or v.is_scalar else R.mm(prod, v)
                except McalcError:
                    return None
            total.append(prod)
        if not total or len(total) > 1 and len({t.shape for t in total}) > 1:
            return None
        raw = R.add(*total) if len(total) > 1 else total[0]
        if raw == rhs or raw.size > MAX_SHOWN:
            return None
        try:
            out, fired = simplified(self.simp, raw, order=False)
        except McalcError:             # a product the simplifier cannot take as it stands
            return None
        return (raw, fired) if out == rhs and fired else None

    def backward_jacobian(self) -> Expr:
        """f non-scalar: Jacobians multiply from the output back (vec forms for matrices)."""
        g, x, quiet = self.g, self.x, self.quiet
        eye = E.eye(R.numel(self.f))
        # node -> its shares (J, P): J@P, the Jacobian of the node it feeds times that
        # node's partial by it
        jac: dict[Expr, list] = {self.f: [(eye, eye)]}     # (f's own: the identity)
        # node -> the same shares as written with LargeNames: (J or its name, P, the names)
        smalls: dict[Expr, list] = {}
        terms: dict[Expr, list] = {}
        y = g.label[self.f]
        for node in reversed(g.order):
            if node not in jac:
                continue
            J = self._jacobian(jac[node])
            stated, uses, ref = J, (), (J, ())
            if node is not self.f and not quiet:
                label = g.label[node]
                if J.size > MAX_SHOWN:                   # written with names for the large
                    stated, uses = sum_with_names(
                        self.simp, [(R.mm(r, P), us) for r, P, us in smalls[node]])
                    ref = self.large.ref(J, stated, uses, y, label, label)
                self._chain_step(node, terms.get(node, ()), J, stated, uses)
            for i in self._operands(node):
                a = node.args[i]
                rule, local, part = self.partial(node, i)
                if part is None:
                    part = rule.jacobian(local, i)           # raises NoRule with the reason
                jac.setdefault(g.through[a], []).append((J, part))
                if quiet:
                    continue
                smalls.setdefault(g.through[a], []).append((ref[0], part, ref[1]))
                terms.setdefault(g.through[a], []).append(self._path(node, a))
        J = self._jacobian(jac[x])
        if not quiet:
            self._chain_step(x, terms.get(x, ()), J, J)
        return J

    def _jacobian(self, shares: list) -> Expr:
        """The simplified sum of the products J@P of `shares` ((J, P), ...). One share
        through an identity is P itself, simplified already (by partial): no product to
        build and simplify back."""
        if len(shares) == 1:
            J, P = shares[0]
            return P if J.op == "eye" else self.simp(R.mm(J, P))
        return self.simp(R.add(*[R.mm(J, P) for J, P in shares]))


def derive(req, body: Expr, typing, layout: str, quiet: bool = False) -> Derivation:
    """The request by the chain rule, every derivative of it (`quiet`: no steps)."""
    return derive_groups(req, body, typing, layout, lambda f, xs: ChainRule, quiet)
