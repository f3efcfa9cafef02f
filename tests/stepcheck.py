"""Check every line of a derivation on its own: each step's `eq` (the contract, section
"JSON"), read back from its text with mcalc's parser and evaluated with mcalc's numpy
interpreter at a random point, against central finite differences of the definitions.

- `define`: the name takes the value of its rhs (later lines may use it);
- a partial ∂of/∂by: differences of of's own definition, every other name held fixed;
- a total derivative d(of)/d(by): differences of of's definition written out down to the
  variables, with `by` kept as an independent input (what does not pass through it stays
  fixed);
- a differential dy = Σ G : D: a random direction of the variable; d(NAME) is the
  directional derivative of NAME's written-out definition.

The `rhs` language adds `:` (Frobenius, loosest) and d(NAME) to the request language;
they are read here by splitting the text at top level (never evaluated as text).
"""
from __future__ import annotations

import re

import numpy as np

from mcalc import expr as E
from mcalc.evaluate import evaluate
from mcalc.parser import parse_expression
from mcalc.syntax import Decl
from mcalc.printing.json_out import as_dict
from mcalc.build import infer
from mcalc.types import parse_dim_size
from numeric import random_sizes, random_values

H = 1e-5                   # rounding in a large f (det(X)^2 + …) dominates below this
_D = re.compile(r"\bd\(([^()]+)\)")


def _decl(name: str, shape, symmetric=False) -> Decl:
    """A declaration record (built directly: an intermediate may be m*n long)."""
    r, c = shape
    if (r, c) == ("1", "1"):
        return Decl((name,), "scalar", ())
    if c == "1":
        return Decl((name,), "vector", (r,))
    return Decl((name,), "symmetric" if symmetric else "matrix",
                (r,) if symmetric else (r, c))


class Checker:
    """The names of one derivation and their values at one point."""

    def __init__(self, d, shapes, sizes, values):
        self.d, self.sizes = d, sizes
        self.shapes = {}                         # name -> shape
        self.defs = {}                           # intermediate -> typed Expr
        self.values = {}                         # name -> 2-D array
        self.order = []
        self.shapes.update(shapes)
        for name, v in values.items():
            r, c = (parse_dim_size(x, sizes) for x in self.shapes[name])
            self.values[name] = np.asarray(v, dtype=float).reshape(r, c, order="F") \
                if np.ndim(v) == 2 else np.asarray(v, dtype=float).reshape(r, c)
        self.symmetric = {n for n, t in d.types.items() if t.startswith("symmetric")}
        for name, e in d.where:
            self.define(name, e)
        self.where = [name for name, _ in d.where]

    # -- reading text ----------------------------------------------------------------
    def parse(self, text: str):
        """The typed Expr of `text`; d(NAME) becomes a fresh variable of NAME's shape."""
        diffs = {}

        def sub(m):
            name = m.group(1).strip()
            diffs[name] = f"dd_{name}"
            return f"dd_{name}"
        text = _D.sub(sub, text)
        names = dict(self.shapes)
        names.update({v: self.shapes[k] for k, v in diffs.items()})
        decls = tuple(_decl(n, s, n in self.symmetric) for n, s in names.items())
        (e,), _ = infer([parse_expression(text)], decls, text)
        return e, diffs

    def parse_rhs(self, text: str):
        """[(G, D)] pairs for a Frobenius sum, or [(None, e)] for a plain expression."""
        parts = _top_level_split(text, " + ") if ":" in text else [text]
        out = []
        for p in parts:
            p = p.strip()
            if p.startswith("(") and _matching(p, 0) == len(p) - 1:
                p = p[1:-1]
            k = _top_level(p, ":")
            if k is not None:
                out.append((self.parse(p[:k]), self.parse(p[k + 1:])))
            else:
                out.append((None, self.parse(p)))
        return out

    # -- values ----------------------------------------------------------------------
    def ev(self, e, values=None):
        return evaluate(e, values or self.values, self.sizes, two_d=True)

    def define(self, name, e):
        self.defs[name] = e
        self.shapes[name] = e.shape
        self.order.append(name)
        self.values[name] = self.ev(e)

    def expand(self, e, keep=()):
        """e written out down to the variables, the names in `keep` left as inputs."""
        for name in reversed(self.order):
            if name in keep:
                continue
            found, done = {}, {}
            for n in E.postorder(e, done):
                done[n] = n
                if n.op == "var" and n.name == name:
                    found[n] = self.defs[name]
            if found:
                e = E.replace(e, found)
        return e

    def jacobian(self, f, by: str, direction=None):
        """∂vec(f)/∂vec(by) by central differences (#f × #by), f an Expr of the names;
        with `direction`, the directional derivative instead (f's shape)."""
        x0 = self.values[by]

        def at(x):
            vals = dict(self.values)
            vals[by] = x
            return self.ev(f, vals)
        if direction is not None:
            return (at(x0 + H * direction) - at(x0 - H * direction)) / (2 * H)
        cols = []
        flat = x0.reshape(-1, order="F")
        for k in range(x0.size):
            h = H * max(1e-3, abs(flat[k]))     # relative: det(X)^2 is large, softmax small
            step = np.zeros(x0.size)
            step[k] = h
            step = step.reshape(x0.shape, order="F")
            cols.append(((at(x0 + step) - at(x0 - step)) / (2 * h)).reshape(-1, order="F"))
        return np.stack(cols, axis=1)

    def arranged(self, jac, of_shape, by_shape, layout, vec):
        """A ∂vec/∂vec Jacobian in the contract's arrangement for ∂of/∂by."""
        if not vec:
            if by_shape == (1, 1):
                jac = jac[:, 0].reshape(of_shape, order="F")
            elif of_shape == (1, 1):
                jac = jac[0].reshape(by_shape, order="F").T
        return jac if layout == "numerator" else jac.T


def _matching(s, i):
    depth = 0
    for k in range(i, len(s)):
        depth += {"(": 1, ")": -1}.get(s[k], 0)
        if depth == 0:
            return k
    return -1


def _top_level(s, token):
    depth = 0
    for k, ch in enumerate(s):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(ch, 0)
        if depth == 0 and s.startswith(token, k):
            return k
    return None


def _top_level_split(s, token):
    out, depth, start = [], 0, 0
    k = 0
    while k < len(s):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(s[k], 0)
        if depth == 0 and s.startswith(token, k):
            out.append(s[start:k])
            k += len(token)
            start = k
            continue
        k += 1
    return out + [s[start:]]


def check_derivation(d, rng, positive=False, rtol=2e-4, atol=2e-5) -> int:
    """Verify every `eq` of the derivation `d` (mcalc.pipeline.derive's) at one random
    point; returns how many equations were checked. Raises AssertionError on a false one."""
    from numeric import assert_close
    if d.result is None:
        return 0                                 # no derivative: nothing is stated
    data = as_dict(d)
    shapes = _var_shapes(d)
    dims = {p for s in shapes.values() for x in s for p in x.split("*") if not p.isdigit()}
    sizes = random_sizes(dims, rng)
    values = random_values(d.types, sizes, rng, positive=positive)
    c = Checker(d, shapes, sizes, values)
    checked, last = 0, None
    for step in data["steps"]:
        eq = step.get("eq")
        if eq is None:
            continue
        what = f"{d.request} [{d.method}, {d.layout}] line {step['text']!r}"
        last = eq
        checked += 1
        if "define" in eq:
            (_, (e, _)), = c.parse_rhs(eq["rhs"])
            c.define(eq["define"], e)
            continue
        if "differential" in eq:
            _check_differential(c, eq, d, rng, what)
            continue
        (_, (rhs, _)), = c.parse_rhs(eq["rhs"])
        got = c.ev(rhs)
        want = _derivative(c, eq, d.layout)
        assert_close(got, want, rtol=rtol, atol=atol, what=what)
    assert last is not None, f"{d.request}: no equation"
    if "differential" not in last and d.result is not None:
        (_, (rhs, _)), = c.parse_rhs(last["rhs"])
        assert_close(c.ev(rhs), c.ev(d.result), what=f"{d.request}: last line is not the result")
    return checked


def _derivative(c, eq, layout):
    of, by = eq["of"], eq["by"]
    lay = eq.get("layout", layout)
    vec = eq.get("vec", False)
    if by.startswith("("):
        xs = [x.strip() for x in by[1:-1].split(",")]
        f = c.expand(c.defs[of]) if of in c.defs else c.parse(of)[0]
        jac = np.concatenate([c.jacobian(f, x) for x in xs], axis=1)
        return jac if lay == "numerator" else jac.T
    if eq["partial"]:
        # a `where` name (U3 = t1, t1 = A + B'@B) abbreviates what it stands for; the
        # intermediates are the operands held fixed
        f = c.expand(c.defs[of], keep=set(c.order) - set(c.where))
    else:
        f = c.expand(c.defs[of], keep={by}) if by in c.defs else c.expand(c.defs[of])
    jac = c.jacobian(f, by)
    return c.arranged(jac, c.values[of].shape, c.values[by].shape, lay, vec)


def _check_differential(c, eq, d, rng, what):
    """dy = Σ G : D must hold for a random variation of one of the variables."""
    from numeric import assert_close
    terms = c.parse_rhs(eq["rhs"])
    errors = []
    for x in dict.fromkeys(d.wrt):
        direction = rng.standard_normal(c.values[x].shape)
        vals = dict(c.values)
        for _, (e, diffs) in [t for t in terms] + [(None, g) for g, _ in terms if g]:
            for name, ident in diffs.items():
                f = c.expand(c.defs[name]) if name in c.defs else E.var(name, c.shapes[name])
                vals[ident] = c.jacobian(f, x, direction)
        total = 0.0
        for G, (D, _) in terms:
            dv = c.ev(D, vals)
            total = total + (dv if G is None else np.sum(c.ev(G[0], vals) * dv))
        lhs = c.jacobian(c.expand(c.defs[eq["differential"]]), x, direction)
        try:
            assert_close(np.asarray(total).reshape(lhs.shape), lhs, what=what)
            return
        except AssertionError as e:
            errors.append(str(e))
    raise AssertionError("\n".join(errors))


def _var_shapes(d):
    from numeric import parse_type
    return {name: parse_type(t)[1] for name, t in d.types.items()}
