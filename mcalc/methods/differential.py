"""The differential method (Magnus & Neudecker, ch. 9; the Matrix Cookbook §2): the
differential of every intermediate, then the derivative identified from the differential
of the output. A scalar function of a vector or matrix writes the whole differential
dy = G : dU line by line, moving the factors off each dU until dy = G : dX, whose G is
the gradient; anything else writes each intermediate's differential in terms of dX and
reads the derivative off dF, which is linear in dX (dF = A dX B gives kron(B', A))."""
from __future__ import annotations

from mcalc import expr as E
from mcalc import rules as R
from mcalc.derivation import Derivation, make_eq, make_step
from mcalc.expr import Expr
from mcalc.methods.chain import ChainRule
from mcalc.methods.graph import (MAX_SHOWN, Derive, _shown, derivative_eq, derive_groups,
                                 once, summed)

NAME = "differential"


class Differential(Derive):
    NAME = NAME
    SHOWS_PARTIALS = False                 # each intermediate's differential says it all

    def combine(self) -> Expr:
        if self.f.is_scalar and not self.x.is_scalar:
            # the nodes with a gradient not yet moved onto their operands, kept as the
            # gradient flows back (scanning every gradient at every node was quadratic)
            self._open = {self.f: None}
            return self.backward_gradient()
        return self.forward_differential()

    def orientation_step(self, of: str, out: Expr, numerator: Expr, oriented: Expr,
                         layout: str):
        if not (self.f.is_scalar and not self.x.is_scalar):
            return super().orientation_step(of, out, numerator, oriented, layout)
        # dy = G : dX: G is the gradient (denominator layout), its transpose numerator
        self.steps.append(make_step("identify", (of, self.x.name), _shown(oriented), rule=(
            "identification: dy = G : dX gives the gradient G" +
            ("" if layout == "denominator" else "; numerator layout: its transpose" +
             self.transpose_rewrites(out))),
            source="M&N ch. 9; P&H §4", eq=self._total(of, oriented, layout)))

    def at_node(self, node, G, terms, grads, done):
        """The terms of the differential still to move, and this node's pieces and rules."""
        del self._open[node]
        return self._pending(grads), [], []

    def operand(self, state, node, i, rule, local):
        state[1].append(self.simp(self.named(rule.differential(
            local, i, self._d_operand(node.args[i])), node)))
        state[2].append(rule)

    def after_node(self, state, node, G, grads, done):
        others, pieces, rules = state
        for i in self._operands(node):
            self._open[self.g.through[node.args[i]]] = None
        self._differential_moves(node, G, others, pieces, rules, grads)

    def forward_differential(self) -> Expr:
        """The differential method for any shape (Magnus & Neudecker): the differential of
        each intermediate in terms of dX, inputs first, then the derivative read off the
        differential of the output, which is linear in dX (the identification theorem)."""
        g, x = self.g, self.x
        dx = _d(x.name, x)
        tangent: dict[Expr, Expr] = {x: dx}
        for node in g.order:
            if x.name not in g.dep[node]:
                continue
            rules = []
            if node.op in ("vector", "matrix"):          # a literal: component by component
                name, source = "components", ""
            else:
                for i in self._operands(node):
                    rules.append((i,) + self.partial(node, i, show=False)[:2])
                product = len(rules) > 1 and node.op in ("mul", "matmul", "dot", "kron")
                name = "product rule" if product else \
                    " + ".join(dict.fromkeys(r.name for _, r, _ in rules))
                source = "MC (eq. 37)" if product else \
                    "; ".join(dict.fromkeys(r.cite for _, r, _ in rules))
            value = tangent[node] = self._tangent(node, rules, tangent)
            if self.quiet:
                continue
            if node is not self.f and value.size > MAX_SHOWN:
                # too large to write out: in terms of the operands' own differentials, d(u5)
                # for a large one (each stated on its own line above)
                value = self._tangent(node, rules, {
                    a: tangent[a] if tangent[a].size <= MAX_SHOWN else _d(g.label[a], a)
                    for a in map(g.through.__getitem__, node.args) if a in tangent})
            label = g.label[node]
            self.chains.append(make_step("differential", label, rule=name, source=source,
                                         terms=((E.ONE, value, ""),),
                                         eq=make_eq("differential", label,
                                                    terms=((E.ONE, value),))))
        dF = self.simp(tangent[self.f])
        if x.is_scalar:                                   # dF = A dx
            J = self.simp(E.replace(dF, {dx: E.ONE}))
        else:                                             # ∂vec(dF)/∂vec(dX), dF linear
            inner = ChainRule(dF, dx, self.simp)
            inner.quiet = True                  # its J alone: its steps are not shown
            J = inner.run("numerator")
        if self.quiet:
            return J
        y = g.label[self.f]
        self.chains.append(make_step(
            "identify", (y, x.name), _shown(J, True),
            rule=("identification: dF = A dx gives dF/dx = A" if x.is_scalar else
                  "identification: dF = A dx gives ∂F/∂x = A" if x.is_column else
                  "identification: vec(dF) = J vec(dX) gives ∂vec(F)/∂vec(X) = J "
                  "(dF = A dX B: J = kron(B', A))"),
            source="M&N ch. 9",
            eq=derivative_eq("total", y, x.name, self.f.shape, x.shape, J)))
        return J

    def _pending(self, grads: dict) -> list:
        """The terms G : d(u) of the whole differential: every node with a gradient that
        has not yet been moved onto its operands, the output side first."""
        g = self.g
        rank = self._rank
        nodes = sorted(self._open, key=lambda n: -rank.get(n, -1))
        return [(summed(self.simp, grads[n]), _d(g.label[n], n), n) for n in nodes]

    def _differential_step(self, terms, rule: str, source: str = ""):
        """dy = Σ G : dU over `terms` ((G, dU, node)), as one step and one equation."""
        y = self.g.label[self.f]
        shown = tuple((_shown(G, n is self.x), D, f"d{y}/d{self.g.label[n]}")
                      for G, D, n in terms)
        written, uses = [], []                  # a large G by its name (LargeNames)
        for G, D, n in terms:
            _, ref, names = self.gradient_ref(n, G, n is self.x)
            written.append((ref, D))
            uses += names
        self.large.state(tuple(dict.fromkeys(uses)))
        self.chains.append(make_step("differential", y, rule=rule, source=source, terms=shown,
                                     eq=make_eq("differential", y, terms=tuple(written))))

    def _differential_moves(self, node, G, others, pieces, rules, grads):
        """Two lines of the differential method for one intermediate: its differential
        written out by its rule (all terms of a product rule at once), then the factors
        moved off the differentials of its operands (Magnus & Neudecker, ch. 9)."""
        label = self.g.label[node]
        if len(rules) == 1:
            name, source = rules[0].name, rules[0].cite
        else:
            product = node.op in ("mul", "matmul", "dot", "kron")
            name = "product rule" if product else " + ".join(dict.fromkeys(r.name for r in rules))
            source = "MC (eq. 37)" if product else "; ".join(dict.fromkeys(r.cite for r in rules))
        written = [(G, R.add(*pieces) if len(pieces) > 1 else pieces[0], node)] + others
        self._differential_step(written, f"{name} on d{label}", source)
        after = self._pending(grads)
        if [(G, D) for G, D, _ in after] != [(G, D) for G, D, _ in written]:
            self._differential_step(after, "move the factors across ':' "
                                    "(G : A dU B = A'G B' : dU)", "MC (eq. 16)")

    @once
    def _rank(self) -> dict:
        """node -> its place among the intermediates (inputs first)."""
        return {n: k for k, n in enumerate(self.g.order)}

    def _d_operand(self, a: Expr) -> Expr:
        """d of an operand: dw, or dw' for an inline transpose."""
        inner = self.g.through[a]
        d = _d(self.g.label[inner], inner)
        return Expr("T", (d,), a.shape) if a is not inner else d


def _d(label: str, like: Expr) -> Expr:
    """The differential d(label) as a variable of the same shape (marked, so that products
    write it last: 2*u2*d(u2))."""
    return E.new(Expr, "var", (), like.shape, f"d({label})", "differential")


def derive(req, body: Expr, typing, layout: str, quiet: bool = False) -> Derivation:
    """The request by the differential method, every derivative of it (`quiet`: no
    steps)."""
    return derive_groups(req, body, typing, layout, lambda f, xs: Differential, quiet)
