"""The machinery the derivation methods share (mcalc.methods.chain, .differential): Parr &
Howard's four steps, of which a method supplies the third.

1. introduce an intermediate variable for every operator application that depends on the
   variable (identical subexpressions share one, which is what makes a total derivative);
2. take each one's partial derivatives by a named rule of mcalc.rules;
3. combine them — the method's own step (`Derive.combine`): the chain rule, or the
   differential of every intermediate and the identification of the derivative;
4. substitute the intermediates back and simplify.

`derive_groups` runs a whole request (one derivative after another for a Hessian). The
machinery knows no individual rule and never prints: it returns steps as data. A derivative
too large to show is stated with names for the large derivatives it is made of
(`LargeNames`), so that every equation stays small.
"""
from __future__ import annotations

import itertools
from operator import attrgetter, itemgetter

from mcalc import expr as E
from mcalc import rules as R
from mcalc.derivation import (Derivation, Eq, Step, Total, dim_sources, make_derivation,
                               make_eq, make_step)
from mcalc.errors import McalcError, NoRule
from mcalc.expr import Expr
from mcalc.share import shared_names
from mcalc.simplify import Simplifier
from mcalc.types import SCALAR, dim_mul

class once:
    """A method computed on first use and then kept as the instance's attribute:
    functools.cached_property without its lock (Python 3.11 takes one at every first use,
    a few per derivation)."""

    def __init__(self, method):
        self.method, self.name = method, method.__name__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.method(obj)
        return value


def _has(e: Expr, found) -> bool:
    """Whether an operator node of e is `found` (a walk without rebuilding: when the answer
    is no, the usual, cheaper than a rewrite that changes nothing)."""
    seen, stack = set(), [e]
    while stack:
        n = stack.pop()
        if n.args and n not in seen:
            if found(n):
                return True
            seen.add(n)
            stack.extend(n.args)
    return False


def _chained(n: Expr) -> bool:
    return n.op == "matmul" and len(n.args) > 2


def binary_products(e: Expr) -> Expr:
    """A@B@C as (A@B)@C: each intermediate is one product of two operands."""
    return _binary(e) if _has(e, _chained) else e  # (parsed requests are binary already)


def _binary(e: Expr) -> Expr:
    """binary_products(e), e known to hold a product of more than two factors."""
    memo: dict[Expr, Expr] = {}
    for n in E.postorder(e, memo):
        if not n.args:                            # (a leaf: half the nodes)
            memo[n] = n
            continue
        args = tuple([memo[a] for a in n.args])
        if n.op == "matmul" and len(args) > 2:
            got = args[0]
            for a in args[1:]:
                got = E.make("matmul", got, a)
        else:
            got = n if args == n.args else Expr(n.op, args, n.shape, n.name, n.value)
        memo[n] = got
    return memo[e]


def labels(f: Expr, variables: frozenset | None = None) -> tuple[str, str]:
    """The name of the expression (y) and the letter of its intermediates (u), chosen so
    that neither collides with a variable (`variables`: E.free_vars(f), when known) or a
    dimension of f."""
    taken = set(E.free_vars(f) if variables is None else variables) | set(f.shape)
    for root in ("y", "f", "L", "out"):
        if root not in taken:
            break
    else:
        root = next(r for r in (f"y_{k}" for k in range(len(taken) + 1)) if r not in taken)
    return root, _free_letter(("u", "v", "t"), "u", taken)


_FIRST = itemgetter(slice(0, 1))             # n[:1]: a name's first letter, in C


def _free_letter(letters: tuple, fallback: str, taken, skip: str = "") -> str:
    """The first of `letters` (other than `skip`) that begins no name in `taken`, in either
    case, else the first of fallback + "0_", fallback + "1_", ... that begins none."""
    firsts = set(map(_FIRST, taken))
    for c in letters:
        if c != skip and c not in firsts and c.upper() not in firsts:
            return c
    for k in range(len(taken) + 1):
        c = f"{fallback}{k}_"
        if c != skip and not any(n.startswith((c, c.upper())) for n in taken):
            return c


class Names:
    """The names of one derivation's intermediates: each defined once, never a variable's,
    a dimension's or another intermediate's (a second derivative or another stacked scalar
    continues the same list, and a node met again keeps its name)."""

    def __init__(self, f: Expr, taken=()):
        variables, dimensions = E.names_and_dimensions(f)
        self.root, self.letter = labels(f, variables)
        self.taken = variables | dimensions
        self.taken.update(taken)
        self.taken.add(self.root)
        # the letter of the names given to derivatives too large to write at each use
        # (v6 for du6/dx): not the intermediates', nor t (the result's `where` names)
        self.dletter = _free_letter(("v", "w", "z", "q", "p"), "v", self.taken,
                                    skip=self.letter)
        self.k = 0
        self.of: dict[Expr, str] = {}            # node -> its name
        self.defined: set[str] = set()
        self.partials: set = set()               # (of, by) pairs already stated

    def state(self) -> tuple:
        """What an attempt changes (root and letters are fixed): restore takes it back."""
        return self.k, set(self.taken), dict(self.of), set(self.defined), set(self.partials)

    def restore(self, state: tuple):
        """Take back `state` (self.state(), each container a copy used once): an attempt
        that failed named nothing."""
        self.k, self.taken, self.of, self.defined, self.partials = state

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


    def derivative_name(self, label: str, upper: bool = False) -> str:
        """A fresh name for a derivative of the intermediate `label`: v6 for u6 (V6 for a
        matrix), v6_2 for a second one."""
        n = len(self.letter)
        suffix = label[n:] if label[:n].lower() == self.letter and label[n:] else "_" + label
        base = (self.dletter.upper() if upper else self.dletter) + suffix
        cands = itertools.chain((base,), (f"{base}_{k}" for k in itertools.count(2)))
        name = next(c for c in cands if c not in self.taken)
        self.taken.add(name)
        return name


class LargeNames:
    """Names for the derivatives too large to write out (more than MAX_SHOWN nodes) where a
    later equation uses them, so that every equation stays small and a deep derivation's
    equations grow linearly (the contract: a define step may name a derivative).

    `ref` gives what an equation writes for a derivative: its value when small, else a
    name, whose definition — the derivative as its own step states it, itself written with
    earlier names — `state` appends to the steps just before the first equation that uses
    it."""

    def __init__(self, names: Names, steps: list):
        self.names, self.steps = names, steps
        self.var: dict[Expr, Expr] = {}           # full value -> its name
        self.define: dict[str, tuple] = {}        # name -> (its step, the names it uses)
        self.stated: set[str] = set()

    def ref(self, full: Expr, stated: Expr, uses: tuple, of: str, by: str, label: str,
            always: bool = False) -> tuple[Expr, tuple]:
        """(what to write for the derivative d(of)/d(by) whose value is `full`, the names
        that uses). `stated` is the form its own step states, written with `uses`; the
        name is made from `label`, the intermediate's."""
        if always or full.size <= MAX_SHOWN:
            return full, ()
        v = self.var.get(full)
        if v is None:
            name = self.names.derivative_name(label, upper=stated.is_matrix)
            v = self.var[full] = E.var(name, stated.shape)
            self.define[name] = (make_step("name", name, stated, terms=((Total(of, by),),),
                                           eq=make_eq("define", name, rhs=stated)), uses)
        return v, (v.name,)

    def state(self, uses: tuple):
        """Append the definitions of the names in `uses`, and of the names they use, that
        are not stated yet (each after those it uses; no recursion)."""
        if not uses:                              # (the usual: a small derivative)
            return
        stack = [(n, False) for n in reversed(uses)]
        while stack:
            name, ready = stack.pop()
            if name in self.stated:
                continue
            step, sub = self.define[name]
            if ready:
                self.stated.add(name)
                self.steps.append(step)
            else:
                stack.append((name, True))
                stack.extend((n, False) for n in reversed(sub) if n not in self.stated)


def sum_with_names(simp: Simplifier, parts: list) -> tuple[Expr, tuple]:
    """The simplified sum of `parts` ((term, the names it uses), ...), and the names."""
    total = simp(R.add(*[p for p, _ in parts]) if len(parts) > 1 else parts[0][0])
    return total, tuple(dict.fromkeys(u for _, us in parts for u in us))


def summed(simp: Simplifier, parts: list) -> Expr:
    """The simplified sum of `parts`, each simplified already: one part is its own sum
    (the simplifier would only give it back)."""
    return simp(R.add(*parts)) if len(parts) > 1 else parts[0]


def derivative_eq(kind: str, of: str, by: str, of_shape, by_shape, rhs: Expr,
                  layout: str = "numerator") -> Eq:
    """∂of/∂by = rhs (kind 'partial' or 'total'), marked vec where rhs is ∂vec/∂vec in a
    case whose usual shape is another one (a scalar by a matrix, a matrix by a scalar)."""
    num = rhs.shape if layout == "numerator" else (rhs.shape[1], rhs.shape[0])
    # the contract's numerator-layout shape of ∂of/∂by when it is not a vec form
    usual = of_shape if by_shape == SCALAR else (by_shape[1], by_shape[0]) \
        if of_shape == SCALAR else (dim_mul(*of_shape), dim_mul(*by_shape))
    return make_eq(kind, of, by, rhs, layout=layout, vec=num != usual)


class _Labels(dict):
    """Graph.label's table: a node outside it (a variable) is written by its own name."""
    __slots__ = ()

    def __missing__(self, e: Expr) -> str:
        return e.name


class _Names(dict):
    """Graph.name's table. f's own variable (y) is made on first use: only a rule whose
    derivative holds f itself (exp' = exp) writes it, and building and freeing an interned
    node costs as much as much of the rest of a small graph (f is no operand: _Local never
    asks for it)."""
    __slots__ = ("root", "label")               # f, and its label once named ("": not)

    def __missing__(self, node: Expr) -> Expr:
        if node is not self.root or not self.label:
            raise KeyError(node)
        got = self[node] = E.new(Expr, "var", (), node.shape, self.label)
        return got


class _Through(dict):
    """Graph.through's table: an inline transpose -> the vector in it; any other node is
    its own."""
    __slots__ = ()

    def __missing__(self, e: Expr) -> Expr:
        return e


class _Local(dict):
    """Graph.local's table, filled on first use of each node; `names` is Graph.name."""
    __slots__ = ("names",)

    def __missing__(self, node: Expr) -> Expr:
        args = tuple(map(self.names.get, node.args, node.args))     # (name or itself)
        got = self[node] = E.new(Expr, node.op, args, node.shape, node.name, node.value)
        return got


def _intermediates(f: Expr, xs: tuple):
    """(the intermediates of f, inputs first; node -> the variables of xs it uses; the
    inline transposes; whether f holds a product of more than two factors, which has no
    intermediates of its own until binary_products): one walk, children first."""
    order: list[Expr] = []
    # A transposed vector (w' in w'@x) is written inline, not as an intermediate of its
    # own: vec(w') = w, so its partials are those of w (P&H's w·x is one step).
    transparent: set[Expr] = set()
    dep: dict[Expr, frozenset] = {}
    none = frozenset()
    own = {x: frozenset((x,)) for x in xs}      # a variable of xs -> what it uses
    chained = False
    stack = [f]
    while stack:
        node = stack.pop()
        if node is None:                          # (a mark: the node below it has its
            node = stack.pop()                    # operands done, and is done now)
            args = node.args
        else:
            if node in dep:
                continue
            args = node.args
            if not args:                          # (f itself: other leaves are operands)
                dep[node] = own.get(node.name, none) if node.op == "var" else none
                continue
            pending = False                       # (a loop: a comprehension is a call)
            for a in args[::-1]:                  # the first operand on top: done first
                if a not in dep:
                    if a.args:
                        if not pending:           # back once its operands are done
                            stack.append(node)
                            stack.append(None)
                            pending = True
                        stack.append(a)
                    else:                         # a leaf (half the nodes): at once
                        dep[a] = own.get(a.name, none) if a.op == "var" else none
            if pending:
                continue
        n = len(args)
        if n == 1:
            d = dep[args[0]]
        elif n == 2:                              # (most: no union to make)
            d, d2 = dep[args[0]], dep[args[1]]
            if d2 and d2 is not d:
                d = d | d2 if d else d2
        else:
            d = none.union(*[dep[a] for a in args])
            chained = chained or node.op == "matmul"
        dep[node] = d
        if d:
            if node.op == "T" and node is not f and args[0].is_column:
                transparent.add(node)
            else:
                order.append(node)
    return order, dep, transparent, chained


class Graph:
    """The intermediate variables of `f` with respect to the variables named in `xs` (one,
    or the stacked scalars of d/d(x, y): one graph serves every pass)."""

    def __init__(self, f: Expr, xs: tuple, names: Names | None = None, root: str = ""):
        order, dep, transparent, chained = _intermediates(f, xs)
        if chained:                               # A@B@C (a simplified f): (A@B)@C first
            f = _binary(f)
            order, dep, transparent, _ = _intermediates(f, xs)
        self.order, self.dep, self.transparent = order, dep, transparent
        names = names or Names(f)
        self.names = names
        # node -> its variable (u1, U2, y; an inline transpose: w'), the name its
        # derivative is written by (label), the node that receives its derivative
        # (through), its operands by their names (local), and name -> shape: asked at
        # every step, so looked up (subscripted: no call) in tables made once
        name = self.name = _Names()
        name.root, name.label = f, ""
        labels = self.label = _Labels()
        shapes = self.shapes = {}
        last = order[-1] if order else None
        of = names.of
        new: set = set()                          # the nodes this graph names afresh
        for node in order:
            if node is last and node is f and (root or node not in of):
                label = root or names.root
                of.setdefault(node, label)
            else:
                label = of.get(node)
                if label is not None and new and any(
                        (a.args[0] if a in transparent else a) in new for a in node.args):
                    # named by an earlier pass, but an operand is an intermediate new in
                    # this one (b - a by b, then by a: u2 = -a): its definition as stated
                    # does not read with that name, so its partials by it would be false
                    label = None
                if label is None:                 # ("1" not in: is_matrix without a call)
                    label = of[node] = names.fresh(upper="1" not in node.shape)
                    new.add(node)
            if node is f:                         # (made on first use: _Names)
                name.label = label
            else:
                name[node] = E.new(Expr, "var", (), node.shape, label)
            labels[node] = label
            shapes[label] = node.shape
        for node in sorted(transparent, key=lambda n: n.size) if transparent else ():
            inner = node.args[0]
            name[node] = Expr("T", (name.get(inner, inner),), node.shape)
            labels[node] = labels[inner]
        self.root = f
        through = self.through = _Through(zip(dep, dep))     # (a miss is a Python call)
        for n in transparent:
            through[n] = n.args[0]
        local = self.local = _Local()             # (names set after: no __init__ to call)
        local.names = name

    # label[e] -> str: the name e's derivative is written by (an intermediate's, else e's)
    # through[e] -> Expr: the node that receives e's derivative: the vector inside an inline
    #     transpose, else e
    # local[node] -> Expr: the node with its operands replaced by their intermediate names

    def substitute(self, e: Expr) -> Expr:
        """Step 4: the intermediates replaced by what they stand for."""
        return E.replace(e, {v: k for k, v in self.name.items()})


class Derive:
    """One first derivative: ∂f/∂x (f any expression, x a variable). A method is a
    subclass: `combine` is its step 3 (how the partials make the derivative)."""

    NAME = ""                                     # the method's name (--method)
    # True: the derivative alone, no steps (a plain batch line, check's own derivative):
    # what only the steps say (the partials as written, the chain and differential
    # lines, the names of large gradients) is not worked out. The derivative is the same
    # either way (tests/test_quiet.py).
    quiet = False

    def __init__(self, f: Expr, x: Expr, simplifier: Simplifier,
                 names: Names | None = None, root: str = "", within: tuple = ()):
        self.g = Graph(f, within or (x.name,), names, root)
        self.f, self.x = self.g.root, x           # (f with binary products)
        self.simp = simplifier
        self.root = root or self.g.names.root
        self.steps: list[Step] = []               # intermediate definitions and notes
        self.partials: list[Step] = []
        self.partial_eqs: dict = {}               # (of, by) of a partial step -> its eq
        self.chains: list[Step] = []
        self.kinks: list[str] = []
        # node -> (its derivative as the method writes it (gradient_form), as its own
        # equation states it, the names that uses)
        self.stated: dict[Expr, tuple] = {}

    @once
    def large(self) -> LargeNames:
        """Names for the derivatives too large to write out (made for the steps alone)."""
        return LargeNames(self.g.names, self.chains)

    # -- the four steps --------------------------------------------------------------
    def run(self, layout: str) -> Expr:
        """The derivative in `layout`; the steps end with its substituted, simplified form."""
        g = self.g
        if self.x.name not in g.dep.get(self.f, ()) or self.f.op == "var":
            if self.f.op == "var" and self.f.name == self.x.name:
                text, out = f"∂{self.x.name}/∂{self.x.name} is the identity", self.identity()
            else:
                text, out = f"the expression does not depend on {self.x.name}", self.zero()
            result = self.orient(out, layout)
            if self.root not in g.names.defined:
                g.names.defined.add(self.root)
                self.steps.append(make_step("define", self.root, self.f,
                                            eq=make_eq("define", self.root, rhs=self.f)))
            self.steps.append(make_step("note", text=text,
                                        eq=self._total(self.root, result, layout)))
            return result
        if self.quiet:
            numerator = self.orient(self.combine(), "numerator")
            oriented = numerator if layout == "numerator" else self.simp(R.T(numerator))
            return self.simp(g.substitute(oriented))
        for node in g.order:
            label = g.label[node]
            if label not in g.names.defined:
                g.names.defined.add(label)
                local = g.local[node]
                self.steps.append(make_step("define", label, local,
                                            eq=make_eq("define", label, rhs=local)))
        out = self.combine()
        self.steps += self.partials + self.chains
        for k in dict.fromkeys(self.kinks):
            self.steps.append(make_step("note", text=k))
        of = g.label[self.f]
        numerator = self.orient(out, "numerator")
        oriented = numerator if layout == "numerator" else self.simp(R.T(numerator))
        self.orientation_step(of, out, numerator, oriented, layout)
        substituted = g.substitute(oriented)
        last = next((s.eq for s in reversed(self.steps) if s.eq is not None), None)
        said = last is not None and last.kind in ("partial", "total") and last.of == of \
            and last.by == self.x.name and last.rhs == substituted and last.layout == layout
        if not said:                                # no line says this yet
            self.steps.append(make_step("substitute", (of, self.x.name),
                                        _shown(substituted, size=MAX_SHOWN_SUBSTITUTED),
                                        eq=self._total(of, substituted, layout)))
        result, fired = simplified(self.simp, substituted)
        if fired:                                   # every visible change is a named step
            self.steps.append(make_step("simplify", (of, self.x.name), result,
                                        rule=", ".join(dict.fromkeys(fired)),
                                        eq=self._total(of, result, layout)))
        return result

    def _total(self, of: str, rhs: Expr, layout: str = "numerator") -> Eq:
        """d(of)/dx = rhs, x the variable."""
        shape = self.f.shape if of == self.g.label[self.f] or of == self.root else \
            self.g.shapes[of]
        return derivative_eq("total", of, self.x.name, shape, self.x.shape, rhs, layout)

    def orient(self, out: Expr, layout: str) -> Expr:
        """Numerator layout is the transpose of a gradient; denominator its transpose."""
        numerator = self.simp(R.T(out)) if self.f.is_scalar and not self.x.is_scalar else out
        return numerator if layout == "numerator" else self.simp(R.T(numerator))

    @property
    def vec_form(self) -> bool:
        x, f = self.x, self.f                     # ("1" not in: is_matrix without a call)
        return not x.is_scalar and not f.is_scalar and \
            ("1" not in x.shape or "1" not in f.shape)

    def zero(self):
        if self.x.is_scalar:
            return E.zeros(self.f.shape)
        if self.f.is_scalar:
            return E.zeros(self.x.shape)
        return E.zeros((R.numel(self.f), R.numel(self.x)))

    def identity(self):
        return E.ONE if self.x.is_scalar else E.eye(R.numel(self.x))

    def partial(self, node: Expr, i: int, show: bool = True):
        """Step 2: the partial of one intermediate by one operand, by its named rule (its
        value only when shown: a method that says each differential instead needs the rule)."""
        local = self.g.local[node]
        rule = R.rule_for(local, i)
        if rule.kink:
            self.kinks.append(rule.kink)
        if not show:
            return rule, local, None
        try:
            jac = self.simp(self.named(rule.jacobian(local, i), node))
        except NoRule:
            return rule, local, None
        if self.quiet:
            return rule, local, jac
        g = self.g
        args, through = node.args, g.through
        key = (g.label[node], g.label[args[i]])
        by = through[args[i]]
        # x^x, X@X: one operand's share of the product rule, not a partial by x
        share = len(args) == 2 and through[args[1 - i]] is by or \
            len(args) > 2 and [through[a] for a in args].count(by) > 1
        if share:
            key = (key[0], f"{key[1]} (operand {i + 1})")
        if key not in g.names.partials:
            g.names.partials.add(key)
            eq = None if share else derivative_eq("partial", *key, node.shape, by.shape, jac)
            self.partials.append(make_step("partial", key, jac, rule=rule.name, source=rule.cite,
                                           eq=eq))
            self.partial_eqs[key] = eq
        return rule, local, jac

    def named(self, e: Expr, node: Expr, keep: Expr | None = None) -> Expr:
        """Write the intermediate's own value by its name: exp(u1) -> u2 where u2 = exp(u1).
        `keep` (the incoming gradient or tangent) cannot contain it and is not searched,
        which keeps a deep network's derivation linear."""
        if node is self.f and self.f.op == "var":
            return e
        local = self.g.local[node]
        if not E.holds(e, local, keep):           # (the usual: few partials hold it)
            return e
        return E.replace(e, {local: self.g.name[node]}, keep=(keep,) if keep is not None else ())

    def _tangent(self, node, rules, incoming) -> Expr:
        """The node's tangent (or differential) from its operands' (`incoming`: node -> its
        tangent, differential, or a name for one) by the node's rules ((operand index,
        rule, local form); none for a literal)."""
        g = self.g
        if not rules:                                   # a literal: component by component
            return Expr(node.op, tuple(self.simp(incoming[a]) if self.x.name in g.dep[a]
                                       else E.ZERO for a in node.args), node.shape)
        total = []
        for i, rule, local in rules:
            a = node.args[i]
            da = incoming[g.through[a]]
            if a in g.transparent:
                da = self.simp(R.T(da))
            total.append(self.named(rule.differential(local, i, da), node, keep=da))
        return self.simp(R.add(*total) if len(total) > 1 else total[0])

    def _operands(self, node):
        """Operand indices that depend on x (X@X has two: the product rule)."""
        dep, x = self.g.dep, self.x.name
        args = node.args
        n = len(args)
        if n == 1:                                # (most: no comprehension to call)
            return [0] if x in dep[args[0]] else []
        if n == 2:
            if x in dep[args[0]]:
                return [0, 1] if x in dep[args[1]] else [0]
            return [1] if x in dep[args[1]] else []
        return [i for i, a in enumerate(args) if x in dep[a]]

    def _path(self, node, a):
        """∂f/∂node ∂node/∂a (just ∂f/∂a when node is f itself)."""
        own = (self.g.label[node], self.g.label[a])
        return (own,) if node is self.f else (Total(self.g.label[self.f], self.g.label[node]), own)

    def backward_gradient(self) -> Expr:
        """f scalar: the gradient flows back from y (dL = G : dU  ->  G' : dA). What is said
        on the way is the method's: `at_node` before an intermediate's operands receive
        their shares, `operand` for each, `after_node` once they have, `at_variable`."""
        g, x, quiet = self.g, self.x, self.quiet
        grads: dict[Expr, list] = {self.f: [E.ONE]}
        # node -> the same contributions written with the names of the large gradients,
        # each with the names it uses: what the equations state (LargeNames)
        self.smalls: dict[Expr, list] = {self.f: [(E.ONE, ())]}
        terms: dict[Expr, list] = {}
        done: set = set()
        for node in reversed(g.order):
            if node not in grads:                     # depends on another stacked scalar
                continue
            parts = grads[node]                       # (one part, the usual: no call)
            G = parts[0] if len(parts) == 1 else summed(self.simp, parts)
            grads[node] = [G]
            if not quiet:
                self.stated[node], ref, uses = self.gradient_ref(node, G, node is self.f)
                state = self.at_node(node, G, terms, grads, done)
                done.add(node)
            for i in self._operands(node):
                a = node.args[i]
                rule, local, jac = self.partial(node, i, show=self.SHOWS_PARTIALS and not quiet)
                if G is E.ONE and jac is not None and jac.shape == a.shape:
                    contrib = jac           # ∂y/∂a = ∂u/∂a, a scalar: the partial
                else:
                    contrib = self.simp(self.named(rule.grad(local, i, G), node, keep=G))
                if quiet:
                    grads.setdefault(g.through[a], []).append(
                        self.simp(R.T(contrib)) if a in g.transparent else contrib)
                    continue
                small = contrib if ref is G else \
                    self.simp(self.named(rule.grad(local, i, ref), node, keep=ref))
                self.operand(state, node, i, rule, local)
                if a in g.transparent:
                    contrib = self.simp(R.T(contrib))
                    small = contrib if ref is G else self.simp(R.T(small))
                terms.setdefault(g.through[a], []).append(self._path(node, a))
                grads.setdefault(g.through[a], []).append(contrib)
                self.smalls.setdefault(g.through[a], []).append((small, uses))
            if not quiet:
                self.after_node(state, node, G, grads, done)
        G = summed(self.simp, grads[x])
        if quiet:
            return G
        self.stated[x] = self.gradient_ref(x, G, True)[0]
        self.at_variable(G, terms.get(x, ()))
        return G

    def gradient_form(self, G: Expr) -> Expr:
        """The gradient G as the method's equations state it (the chain rule: numerator)."""
        return G

    def gradient_ref(self, node: Expr, G: Expr, always: bool = False):
        """For the gradient G (so far) at node: ((its form, its stated form, the names
        that uses), what later equations write for G, the names that uses)."""
        full = self.gradient_form(G)
        if always or full.size <= MAX_SHOWN:
            return (full, full, ()), G, ()
        small, uses = sum_with_names(self.simp, self.smalls[node])
        stated = self.gradient_form(small)
        label = self.g.label[node]
        v, vuses = self.large.ref(full, stated, uses, self.g.label[self.f], label, label)
        ref = v if full is G else self.simp(R.T(v))        # the name is of the stated form
        return (full, stated, uses), ref, vuses

    # the method's part: step 3, and what backward_gradient says on the way
    SHOWS_PARTIALS = True

    def combine(self) -> Expr:
        raise NotImplementedError

    def orientation_step(self, of: str, out: Expr, numerator: Expr, oriented: Expr,
                         layout: str):
        """The step that turns the combined derivative (out; numerator, in numerator
        layout) into the requested layout (oriented)."""
        if layout == "denominator" and oriented != numerator:
            self.steps.append(make_step("layout", (of, self.x.name), _shown(oriented),
                                        rule="denominator layout: transpose" +
                                        self.transpose_rewrites(numerator),
                                        source="P&H §4", eq=self._total(of, oriented, layout)))

    def transpose_rewrites(self, e: Expr) -> str:
        """'; ' and the names of the rewrites that tidy e' ((AB)' = B'A'), or ''."""
        fired = simplified(self.simp, R.T(e), order=False)[1]
        return "; " + ", ".join(fired) if fired else ""

    def at_node(self, node, G, terms, grads, done):
        return None

    def operand(self, state, node, i, rule, local):
        pass

    def after_node(self, state, node, G, grads, done):
        pass

    def at_variable(self, G, terms):
        pass


def simplified(simp: Simplifier, e: Expr, order: bool = True) -> tuple[Expr, list[str]]:
    """simp(e), and the names (simplify.REWRITES) of the rewrites that made it — those an
    earlier step's work already did too (the simplifier remembers which rewrites changed
    each node); a change that no rewrite recorded is the canonical order of operands
    (with `order`)."""
    fired: list[str] = []
    simp.fired = fired
    out = simp(e)
    if out != e and not fired and order and (out.op != e.op or _flat(out) != _flat(e)):
        fired = ["canonical order"]                                          # visible
    return out, fired if out != e else []


_NARY = ("add", "mul", "matmul")


def _nested(n: Expr) -> bool:
    return n.op in _NARY and n.op in map(_OP, n.args)       # (map: no generator to make)


_OP = attrgetter("op")


def _flat(e: Expr) -> Expr:
    """e with nested sums and products merged (a + (b + c) as a + b + c, (A@B)@C as
    A@B@C): a change only of this grouping is not visible, and no step."""
    if not _has(e, _nested):
        return e
    memo: dict[Expr, Expr] = {}
    for n in E.postorder(e, memo):
        args: list = []
        for a in n.args:
            fa = memo[a]
            args.extend(fa.args if n.op in _NARY and fa.op == n.op else (fa,))
        memo[n] = n if tuple(args) == n.args else Expr(n.op, tuple(args), n.shape, n.name,
                                                       n.value)
    return memo[e]


MAX_SHOWN = 80                 # a chain step's multiplied-out form larger than this is left out
MAX_SHOWN_SUBSTITUTED = 400    # (its factors are all shown) and its equation is written with
                               # names for the large derivatives (LargeNames): a deep network
                               # stays linear


def _shown(e: Expr, always: bool = False, size: int = MAX_SHOWN) -> Expr | None:
    """What a step shows of a value: the value, or None (just the product of partials)."""
    return e if always or e.size <= size else None


def wrt_groups(req, typing):
    """Innermost derivative first: [(layout-independent) list of variable Exprs, stacked?]."""
    groups = []
    for k, group in enumerate(reversed(req.wrt)):
        col = req.wrt_columns[len(req.wrt) - 1 - k] if len(req.wrt_columns) > k else 0
        xs = [_variable(name, typing, req, len(req.wrt) - 1 - k) for name in group]
        if len(xs) > 1:
            _stacked_scalars(xs, col)
        groups.append((xs, len(xs) > 1))
    return groups


def _stacked_scalars(xs: list[Expr], col: int | None):
    """d/d(x, y) stacks scalars: the first variable that is not one is an error."""
    bad = next((x for x in xs if not x.is_scalar), None)
    if bad is not None:
        raise McalcError(f"d/d(...) stacks scalars; {bad.name} is not a scalar", col)


def first_derivative(f: Expr, x: Expr, layout: str, method: type,
                     simplifier: Simplifier | None = None, names: Names | None = None,
                     root: str = "", within: tuple = (), quiet: bool = False):
    """∂f/∂x in `layout` by `method` (a Derive subclass): (result, steps, vec_form). `names`
    continues the intermediates of the derivation so far; `root` names f (g for the
    gradient a Hessian differentiates); `quiet`: no steps (Derive.quiet)."""
    simp = simplifier or Simplifier()
    names = names or Names(f)
    before = names.state()
    try:
        d = method(f, x, simp, names, root, within)
        d.quiet = quiet
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
            d = method(simpler, x, simp, names, root, within)
            d.quiet = quiet
            result = d.run(layout)
        except NoRule:
            raise first_failure from None
        note = make_step("note", rhs=simpler, text="rewritten first by the simplification rules:")
        return result, [note] + d.steps, d.vec_form


def stacked_derivative(f: Expr, xs: list[Expr], layout: str, method: type,
                       simplifier: Simplifier | None = None, names: Names | None = None,
                       root: str = "", quiet: bool = False):
    """d/d(x, y) f: the derivative by scalars stacked into one vector (P&H §3, §4): the
    gradient of a scalar, the Jacobian of a vector, ∂vec(F)/∂(x, y) of a matrix (a vec
    form, as by a vector variable). (result, steps, vec_form)."""
    simp = simplifier or Simplifier()
    names = names or Names(f)
    cols, steps = [], []
    for x in xs:
        col, st, _ = first_derivative(f, x, "numerator", method, simp, names, root,
                                      tuple(v.name for v in xs), quiet)
        root = ""                               # named by the first pass
        cols.append(col)                        # ∂f/∂x: f's shape
        steps.extend(st)
    m = len(xs)
    entries = [_vec_entries(c) for c in cols] if not f.is_scalar else ()
    if f.is_scalar:                             # the gradient: a row in numerator layout
        grad = Expr("vector", tuple(cols), (str(m), "1"))
        jac = grad if layout == "denominator" else Expr("T", (grad,), ("1", str(m)))
    elif all(e is not None for e in entries):   # literals of a concrete size: entry by entry
        k = len(entries[0])
        rows = [[e[i] for e in entries] for i in range(k)]
        jac = Expr("matrix", tuple(e for r in rows for e in r), (str(k), str(m)))
        if layout == "denominator":
            t = [[rows[i][j] for i in range(k)] for j in range(m)]
            jac = Expr("matrix", tuple(e for r in t for e in r), (str(m), str(k)))
    else:
        # any size: J = Σ vec(∂f/∂xᵢ) eᵢᵀ (eᵢ the i-th unit vector of length m)
        units = [Expr("vector", tuple(E.ONE if j == i else E.ZERO for j in range(m)),
                      (str(m), "1")) for i in range(m)]
        jac = simp(R.add(*(R.mm(R.vec(c), R.T(u)) for c, u in zip(cols, units))))
        jac = jac if layout == "numerator" else simp(R.T(jac))
    stacked = "(" + ", ".join(x.name for x in xs) + ")"
    of = names.of.get(binary_products(f)) or root or names.root
    steps.append(make_step("chain", (of, stacked), jac,
                           rule="stack the partial derivatives" +
                           ("; the vec of each is a column" if f.is_matrix else ""),
                           source="P&H §3 (gradient), §4 (Jacobian)",
                           eq=make_eq("total", of, stacked, jac, layout=layout)))
    return jac, steps, f.is_matrix


def _vec_entries(c: Expr) -> list | None:
    """The entries of c, a literal (or zero) column or matrix of a concrete size, in vec
    order (down its columns); None for anything else."""
    r, k = c.shape
    if not (r.isdigit() and k.isdigit()):
        return None
    if c.op == "zeros":
        return [E.ZERO] * (int(r) * int(k))
    if c.op == "vector":
        return list(c.args)
    if c.op == "T" and c.args[0].op == "vector":      # a row: vec order is its own
        return list(c.args[0].args)
    if c.op == "matrix":
        r, k = int(r), int(k)
        return [c.args[i * k + j] for j in range(k) for i in range(r)]
    return None


def _variable(name: str, typing, req, k: int) -> Expr:
    col = req.wrt_columns[k] if k < len(req.wrt_columns) else 0
    if name not in typing.vars:
        raise McalcError(typing.not_a_variable(name), col)
    vt = typing.vars[name]
    return E.var(name, vt.shape, vt.kind == "symmetric")


def where_names(req) -> set[str]:
    """The names the request's `where` definitions give (intermediates never take them)."""
    defs = getattr(req, "defs", ())
    if not defs:                                  # (the usual: no set comprehension to call)
        return set()
    return {getattr(dcl, "name", None) for dcl in defs} - {None}


# A derivative differentiated again (d^k/dx^k) must stay below this size: the orders of
# most functions stay small (sin, exp, polynomials), some swell without end (tanh's
# beyond order 100), and each order costs in proportion to the last one's size.
MAX_AGAIN = 20_000


def derive_groups(req, body: Expr, typing, layout: str, pick, quiet: bool = False
                  ) -> Derivation:
    """The request's derivatives, innermost first (a Hessian differentiates the gradient
    again); `pick(f, xs)` gives the Derive subclass of each (the method); `quiet`: the
    result without steps (Derive.quiet)."""
    steps: list[Step] = []
    simp = Simplifier()
    f = body
    wrt_names: list[str] = []
    groups = list(reversed(req.wrt))                    # innermost derivative first
    vec_form = False
    chosen = None
    names = Names(body, where_names(req))
    for k, group in enumerate(groups):
        at = len(groups) - 1 - k                        # the prefix's place in the request
        xs = [_variable(n, typing, req, at) for n in group]
        wrt_names = list(group) + wrt_names
        last = k == len(groups) - 1
        lay = layout if last else "denominator"        # inner derivatives as gradients
        chosen = pick(f, xs)
        root = ""
        if k and f.size > MAX_AGAIN:
            raise McalcError(f"the derivative of order {k} has {f.size} nodes, too large to "
                             f"differentiate again (at most {MAX_AGAIN})",
                             req.wrt_columns[at] if at < len(req.wrt_columns) else None)
        if k:
            root = names.fresh("g")
            steps.append(make_step("note", text=f"differentiate the result again, by "
                                   f"{', '.join(group)}: call it {root}"))
        if len(xs) > 1:
            _stacked_scalars(xs, req.wrt_columns[at] if at < len(req.wrt_columns) else 0)
            f, st, vec_form = stacked_derivative(f, xs, lay, chosen, simp, names, root,
                                                 quiet)
        else:
            f, st, vec_form = first_derivative(f, xs[0], lay, chosen, simp, names, root,
                                               quiet=quiet)
        steps.extend(st)
    where = shared_names(f, taken=typing.defined) if req.wrt else ()
    return make_derivation(
        request=req.text, wrt=tuple(wrt_names), layout=layout,
        method=chosen.NAME if chosen else "chain", types=typing.as_strings(), expr=body,
        result=f if req.wrt else None, steps=tuple(steps), vec_form=vec_form,
        dims=dim_sources(typing), of=names.root, where=where,
        stacked=bool(req.wrt) and len(set(req.wrt)) == 1 and len(req.wrt[0]) > 1,
        groups=tuple(tuple(g) for g in req.wrt))
