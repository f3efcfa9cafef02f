"""The definition method (seed 000's first method; Parr & Howard's "reduce to scalars").

Every vector and matrix is expanded into components at small concrete sizes — each
dimension 2, then 3 — with one SymPy symbol per component (w_1, X_1_2, ...). The SymPy
expressions are built FROM THE TYPED TREE (a table keyed on the op, like the numpy
interpreter mcalc.evaluate); no text is ever parsed or evaluated. Each component of the
expression is differentiated by each component of the variable with `sympy.diff`, and
the derivatives are arranged as the contract arranges ∂F/∂X (mcalc.checker.arrange:
numerator or denominator layout, vec forms beyond two dimensions).

  derive(req, body, typing, layout)   `diff --method definition` (the methods' interface):
      definition_derivation with the automatic method's rules
  definition_derivation(req, body, typing, layout, by_rules): the
      component derivatives as steps, then the chain/differential engine's symbolic
      result, confirmed equal to the component-wise derivative at the concrete sizes
      (an McalcError if they disagree: that is an engine bug)
  exact_equal(req, body, claim, typing, layout)      `check --exact`: is the claim equal,
      entry by entry and exactly, to the component-wise derivative?

Comparison is exact: a − b is shown to be 0 by expand, cancel, or simplify. Where the
derivative is 0 almost everywhere (the indicators > >= < <=, sign, the kinks of relu,
abs, max, min) the DiracDelta terms are dropped; sign(u) is 2·H(u) − 1 and H(−u) is
1 − H(u) (equal except on a set of measure zero). A difference that is non-zero at a
random rational point is non-zero, so wrong claims are rejected without simplify.

Bounds: at most MAX_COMPONENTS symbols and MAX_ENTRIES derivative entries at the first
sizes (beyond them the method gives up with a one-line message, exit status 2), and a
time limit (TIME_LIMIT seconds: a deadline checked between components, and SIGALRM
around the whole computation when running in the main thread). If the sizes 3 exceed
the bounds the check is done at sizes 2 only, and says so.

sympy is imported only inside these functions, never when mcalc is imported.
"""
from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from mcalc import expr as E
from mcalc.derivation import Eq, Derivation, Step, replace
from mcalc.errors import McalcError, NoRule
from mcalc.expr import postorder
from mcalc.expr import Expr
from mcalc.types import SCALAR, parse_dim_size

MAX_COMPONENTS = 150          # symbols: components of every variable
MAX_ENTRIES = 400             # entries of one derivative (#F × #X)
TIME_LIMIT = 60.0             # seconds for one definition-method computation
SHOWN_COMPONENTS = 24         # component steps shown in a derivation
SIZE_SETS = (2, 3)            # every named dimension takes these sizes in turn


class GaveUp(McalcError):
    """The expansion would be too large or too slow."""

    def __init__(self, why: str):
        super().__init__(f"the definition method gave up: {why}")


@dataclass(frozen=True)
class ExactVerdict:
    equal: bool
    detail: str                         # one line: where it was decided
    sizes: tuple = ()                   # the size assignments compared


# =====================================================================================
# Public entry points
# =====================================================================================

def exact_equal(req, body: Expr, claim: Expr, typing, layout: str,
                time_limit: float = TIME_LIMIT) -> ExactVerdict:
    """Compare `claim` with the component-wise derivative, exactly (see module doc)."""
    with _limited(time_limit) as deadline:
        run = _Run(req, body, typing, layout, deadline)
        checked = []
        for sizes in run.size_sets():
            derivative = run.derivative(sizes)
            got = run.values(claim, sizes)
            where = _sizes_text(sizes)
            if got.shape != derivative.shape:
                return ExactVerdict(False, f"the claim is {got.rows}×{got.cols} but the "
                                           f"component-wise derivative is "
                                           f"{derivative.rows}×{derivative.cols}{where}")
            diff = _first_difference(run, derivative, got, deadline)
            if diff is not None:
                i, j, a, b = diff
                return ExactVerdict(
                    False, f"the claim differs from the component-wise derivative"
                           f"{where}: entry ({i + 1}, {j + 1}) is {_short(a)}, the "
                           f"claim has {_short(b)}", tuple(checked + [sizes]))
            checked.append(sizes)
        return ExactVerdict(True, "equal to the component-wise derivative (definition "
                                  f"method, SymPy){run.sizes_summary(checked)}",
                            tuple(checked))


NAME = "definition"


def derive(req, body: Expr, typing, layout: str, quiet: bool = False) -> Derivation:
    """The request component by component, confirmed against the rules' result (whose own
    steps are not shown, so not worked out). `quiet` changes nothing: the components
    are the confirmation."""
    from mcalc.methods import automatic
    return definition_derivation(req, body, typing, layout,
                                 lambda: automatic.derive(req, body, typing, layout, True))


def definition_derivation(req, body: Expr, typing, layout: str, by_rules,
                          time_limit: float = TIME_LIMIT) -> Derivation:
    """`diff --method definition`: component by component, then the engine's symbolic
    result (`by_rules()`, the derivation by the rules) confirmed equal to it at the
    concrete sizes."""
    no_rule = None
    try:
        d = by_rules()
        result = d.result
    except NoRule as e:
        d, result, no_rule = None, None, e
    with _limited(time_limit) as deadline:
        run = _Run(req, body, typing, layout, deadline)
        sets = run.size_sets()
        steps = run.component_steps(sets[0])
        first = run.derivative(sets[0])
        if d is None:
            if run.named_dims:
                raise no_rule
            result = run.to_literal(first)
            if result is None:
                raise NoRule("the component-wise derivative has no form in the request "
                             "language")
            d = _plain_derivation(req, body, typing, layout, result)
        confirmed = []
        for sizes in sets:
            want = run.derivative(sizes)
            got = run.values(result, sizes)
            if got.shape != want.shape:
                raise McalcError(f"the definition method disagrees with the chain rule: "
                                 f"{want.rows}×{want.cols} component-wise, {got.rows}×"
                                 f"{got.cols} by the rules{_sizes_text(sizes)} (please "
                                 f"report this request)")
            diff = _first_difference(run, want, got, deadline)
            if diff is not None:
                i, j, a, b = diff
                raise McalcError(
                    f"the definition method disagrees with the chain rule"
                    f"{_sizes_text(sizes)}: entry ({i + 1}, {j + 1}) is {_short(a)} "
                    f"component-wise but {_short(b)} by the rules (please report "
                    f"this request)")
            confirmed.append(sizes)
        group = req.wrt[0]
        by = group[0] if len(group) == 1 else "(" + ", ".join(group) + ")"
        literal = run.to_literal(first) if first.rows * first.cols <= 36 else None
        if literal is not None:
            # written in the variables alone (no component symbol), the arranged
            # derivative of a first derivative is the request's own equation
            said = len(req.wrt) == 1 and run.in_names(literal)
            steps.append(Step("note", text=f"arranged in {layout} layout"
                                           f"{_sizes_text(sets[0])}:", rhs=literal,
                              eq=Eq("total", d.of, by, literal, layout=layout) if said
                              else None))
        of, defined = _inner_derivatives(req, body, typing, d.of)
        steps.extend(defined)
        steps.append(Step("note", rhs=result, text=(
            f"the rules give this result; it equals the component-wise derivative"
            f"{run.sizes_summary(confirmed)} (checked exactly with SymPy):"),
            eq=Eq("total", of, by, result, layout=layout) if of else None))
        steps.insert(0, Step("define", d.of, body, eq=Eq("define", d.of, rhs=body)))
    return replace(d, method="definition", steps=tuple(steps))


def _inner_derivatives(req, body, typing, of):
    """What the result is the derivative of, and the steps that define it: y itself, or
    for a second (third ...) derivative the inner derivatives by the rules, each named
    (g = the gradient, in denominator layout, as the rules differentiate it again), so
    that the last line is an equation of its own. ("", []) when the rules have none."""
    from mcalc.methods import automatic
    from mcalc.syntax import Request
    steps = []
    for k, of in enumerate(_again_names(req, body), 1):
        inner = Request(req.text, req.wrt[-k:], req.body, req.decls, req.wrt_columns[-k:],
                        req.defs)
        try:
            value = automatic.derive(inner, body, typing, "denominator", True).result
        except NoRule:
            return "", []
        steps.append(Step("define", of, value, eq=Eq("define", of, rhs=value)))
    return of, steps


def _again_names(req, body) -> list[str]:
    """The names of the derivatives a second, third ... pass differentiates again: g, g2,
    ..., none a name of the request (a variable g)."""
    from mcalc.methods.graph import Names, where_names
    names = Names(body, where_names(req))
    return [names.fresh("g") for _ in req.wrt[1:]]


def _plain_derivation(req, body, typing, layout, result) -> Derivation:
    from mcalc.derivation import dim_sources
    from mcalc.methods.graph import labels
    wrt = tuple(n for group in req.wrt for n in group)
    return Derivation(request=req.text, wrt=wrt, layout=layout, method="definition",
                      types=typing.as_strings(), expr=body, result=result,
                      dims=dim_sources(typing), of=labels(body)[0],
                      stacked=len(req.wrt) == 1 and len(req.wrt[0]) > 1)


# =====================================================================================
# Time limits
# =====================================================================================

class _Timeout(Exception):
    pass


class _Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self):
        if time.monotonic() > self.end:
            raise _Timeout


@contextlib.contextmanager
def _limited(seconds: float):
    """A deadline, plus SIGALRM (main thread only) for a single long SymPy call."""
    deadline = _Deadline(seconds)
    use_alarm = (hasattr(signal, "setitimer") and
                 threading.current_thread() is threading.main_thread())
    previous = None
    if use_alarm:
        def on_alarm(signum, frame):
            raise _Timeout
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds + 1.0)
    try:
        yield deadline
    except _Timeout:
        raise GaveUp(f"time limit of {seconds:g} s reached") from None
    except RecursionError:
        raise GaveUp("the component expressions are too deeply nested") from None
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# =====================================================================================
# One computation: symbols, SymPy values, derivatives
# =====================================================================================

def _sizes_text(sizes) -> str:
    if not sizes:
        return ""
    return " at " + ", ".join(f"{k} = {v}" for k, v in sizes.items())


def _first_difference(run, want, got, deadline):
    """The first entry (i, j, want, got) where two component matrices differ exactly."""
    for i in range(want.rows):
        for j in range(want.cols):
            deadline.check()
            a, b = run.normal(want[i, j]), run.normal(got[i, j])
            if not run.is_zero(a - b):
                return i, j, a, b
    return None


def _short(x, limit: int = 120) -> str:
    s = str(x)
    return s if len(s) <= limit else s[:limit - 1] + "…"


class _Run:
    def __init__(self, req, body, typing, layout, deadline):
        import sympy
        self.sp = sympy
        self.req, self.body, self.typing, self.layout = req, body, typing, layout
        self.deadline = deadline
        from mcalc.methods.graph import wrt_groups
        self.groups = wrt_groups(req, typing)
        self.named_dims = self._named_dims()
        self.cache: dict = {}
        self.rng = random.Random(12345)

    # sizes
    def _named_dims(self):
        names = set(d for d in self.typing.dims if not d.isdigit())
        for vt in self.typing.vars.values():
            names.update(p for d in vt.shape for p in d.split("*") if not p.isdigit())
        return sorted(names | E.dimension_names(self.body))

    def size_sets(self) -> list[dict]:
        sets = [{d: s for d in self.named_dims} for s in SIZE_SETS] if self.named_dims else [{}]
        usable = []
        for sizes in sets:
            why = self.too_large(sizes)
            if why:
                if not usable:
                    raise GaveUp(why)
                self.skipped = sizes
                break
            usable.append(sizes)
        return usable

    def too_large(self, sizes) -> str | None:
        count = sum(parse_dim_size(vt.shape[0], sizes) * parse_dim_size(vt.shape[1], sizes)
                    for vt in self.typing.vars.values())
        where = _sizes_text(sizes)
        if count > MAX_COMPONENTS:
            return (f"{count} components{where} (the limit is {MAX_COMPONENTS}); use the "
                    f"numeric check (without --exact)")
        shape = self.body.shape
        numel = parse_dim_size(shape[0], sizes) * parse_dim_size(shape[1], sizes)
        for xs, stacked in self.groups:
            n_x = sum(parse_dim_size(x.shape[0], sizes) * parse_dim_size(x.shape[1], sizes)
                      for x in xs)
            if numel * n_x > MAX_ENTRIES:
                return (f"{numel * n_x} derivative entries{where} (the limit is "
                        f"{MAX_ENTRIES}); use the numeric check (without --exact)")
            numel *= n_x
        return None

    def sizes_summary(self, checked) -> str:
        if not checked or not checked[0]:
            return ""
        dims = list(checked[0])
        if len(dims) == 1:
            text = " at " + " and ".join(f"{dims[0]} = {s[dims[0]]}" for s in checked)
        else:
            text = " at " + " and ".join(
                "(" + ", ".join(f"{k} = {v}" for k, v in s.items()) + ")" for s in checked)
        if getattr(self, "skipped", None):
            text += " (larger sizes skipped: too many components)"
        return text

    # symbols
    def env(self, sizes):
        key = ("env", tuple(sorted(sizes.items())))
        if key in self.cache:
            return self.cache[key]
        sp = self.sp
        taken = set(self.typing.vars)
        env, sym_pairs, names = {}, {}, {}
        for name, vt in self.typing.vars.items():
            r, c = (parse_dim_size(d, sizes) for d in vt.shape)
            sep = "_"
            while any(_label(name, sep, i, j, r, c) in taken - {name}
                      for i in range(r) for j in range(c)):
                sep += "_"                     # a scalar named w_1 next to a vector w
            label = (lambda i, j, name=name, sep=sep, r=r, c=c: _label(name, sep, i, j, r, c))
            m = sp.Matrix(r, c, lambda i, j: sp.Symbol(label(i, j), real=True))
            env[name] = m
            names[name] = [label(i, j) for j in range(c) for i in range(r)]
            if vt.kind == "symmetric":
                for i in range(r):
                    for j in range(i + 1, c):
                        sym_pairs[m[j, i]] = m[i, j]
        self.cache[key] = (env, sym_pairs, names)
        return env, sym_pairs, names

    # values
    def values(self, e: Expr, sizes):
        env, sym_pairs, _ = self.env(sizes)
        out = _SymEval(self.sp, env, sizes, self.deadline).run(e)
        return out.xreplace(sym_pairs) if sym_pairs else out

    def derivative(self, sizes):
        """The component-wise derivative, arranged in the layout (a SymPy Matrix)."""
        key = ("d", tuple(sorted(sizes.items())))
        if key in self.cache:
            return self.cache[key]
        jacobians = self._jacobians(sizes)
        out = jacobians[-1][1]
        self.cache[key] = out
        return out

    def _jacobians(self, sizes):
        """[(vec-form J, arranged D)] for each derivative, innermost first."""
        key = ("j", tuple(sorted(sizes.items())))
        if key in self.cache:
            return self.cache[key]
        sp = self.sp
        env, sym_pairs, _ = self.env(sizes)
        f = _SymEval(sp, env, sizes, self.deadline).run(self.body)
        out = []
        for k, (xs, stacked) in enumerate(self.groups):
            lay = self.layout if k == len(self.groups) - 1 else "denominator"
            xsyms = [s for x in xs for s in _vec(env[x.name])]
            vf = _vec(f)
            j = sp.zeros(len(vf), len(xsyms))
            for a, fa in enumerate(vf):
                for b, xb in enumerate(xsyms):
                    self.deadline.check()
                    j[a, b] = self.drop_deltas(sp.diff(fa, xb))
            x_shape = (len(xs), 1) if stacked else env[xs[0].name].shape
            f = _arrange_sym(sp, j, f.shape, x_shape, lay)
            out.append((j, f))
        if sym_pairs:
            out = [(j.xreplace(sym_pairs), d.xreplace(sym_pairs)) for j, d in out]
        self.cache[key] = out
        return out

    # cleaning and comparing
    def drop_deltas(self, x):
        sp = self.sp
        if x.has(sp.DiracDelta):
            x = x.replace(sp.DiracDelta, lambda *a: sp.Integer(0))
        return x

    def normal(self, x):
        """One form for functions equal almost everywhere (see the module doc)."""
        sp = self.sp
        x = self.drop_deltas(x)
        if x.has(sp.sign):
            x = x.replace(sp.sign, lambda a: 2 * sp.Heaviside(a) - 1)
        if x.has(sp.Heaviside):
            def h(a, *_):
                return 1 - sp.Heaviside(-a) if a.could_extract_minus_sign() else sp.Heaviside(a)
            x = x.replace(sp.Heaviside, h)
        return x

    def is_zero(self, d) -> bool:
        sp = self.sp
        if d == 0:
            return True
        free = sorted(d.free_symbols, key=lambda s: s.name)
        for trial in range(6):                        # a non-zero value proves non-zero
            self.deadline.check()
            sub = {s: sp.Rational(self.rng.randint(-40, 40) if trial % 2 == 0
                                  else self.rng.randint(5, 40), 17) for s in free}
            if any(v == 0 for v in sub.values()):
                continue
            try:
                v = d.xreplace(sub).evalf(30)
            except (ValueError, TypeError, ZeroDivisionError, ArithmeticError):
                continue
            if v.is_Number and v.is_real and v.is_finite and abs(v) > 1e-15:
                return False
        for attempt in (sp.cancel, sp.expand, sp.simplify):
            self.deadline.check()
            if attempt(d) == 0:
                return True
        raise GaveUp("SymPy could neither show that the two sides are equal nor find a "
                     "point where they differ")

    # the derivation's steps
    def component_steps(self, sizes) -> list[Step]:
        env, _, names = self.env(sizes)
        of = _of_label(self.body)
        xs = list(dict.fromkeys(x.name for group, _ in self.groups for x in group))
        example = list(dict.fromkeys(n for x in xs for n in names[x][:2]))
        if all(self.typing.vars[x].kind == "scalar" for x in xs) and self.body.is_scalar:
            intro = (f"definition method: differentiate {of} by {', '.join(xs)} with "
                     f"sympy.diff")
        else:
            intro = (f"definition method: expand every vector and matrix into components"
                     f"{_sizes_text(sizes)} (one symbol each: {', '.join(example)}, ...), and "
                     f"differentiate every component of {of} by every component of "
                     f"{', '.join(xs)} (sympy.diff)")
        steps = [Step("note", text=intro)]
        shown = hidden = zeros = 0
        jacobians = self._jacobians(sizes)
        f_labels = _component_labels(of, self.body.shape, sizes)
        again = _again_names(self.req, self.body)
        for k, ((xs, stacked), (j, arranged)) in enumerate(zip(self.groups, jacobians)):
            if k:
                prev = jacobians[k - 1][1]
                of = again[k - 1]
                f_labels = _component_labels(of, (str(prev.rows), str(prev.cols)), {})
                steps.append(Step("note", text=(
                    f"differentiate again, by {', '.join(x.name for x in xs)}: {of} = the "
                    f"previous derivative ({prev.rows}×{prev.cols}, denominator layout)")))
            x_labels = [n for x in xs for n in names[x.name]]
            for a in range(j.rows):
                for b in range(j.cols):
                    if j[a, b] == 0 and j.rows * j.cols > 1:
                        zeros += 1
                        continue
                    if shown >= SHOWN_COMPONENTS:
                        hidden += 1
                        continue
                    self.deadline.check()
                    entry = self.tidy(j[a, b])
                    rhs = self.to_expr(entry)
                    if rhs is None:
                        steps.append(Step("note", text=f"∂{f_labels[a]}/∂{x_labels[b]} = "
                                                       f"{_short(entry, 400)}"))
                    else:
                        # the whole scalar y by a whole scalar variable, written in the
                        # variables alone: an equation of the request language (g, of a
                        # second pass, is defined only after these lines)
                        said = not k and f_labels[a] == of and self.in_names(rhs) and \
                            x_labels[b] in self.typing.vars
                        steps.append(Step("component", (f_labels[a], x_labels[b]), rhs,
                                          eq=Eq("partial", of, x_labels[b], rhs,
                                                layout=self.layout) if said else None))
                    shown += 1
        if hidden:
            steps.append(Step("note", text=f"... and {hidden} more non-zero components"))
        if zeros:
            steps.append(Step("note", text=f"the other {zeros} component derivatives are 0"))
        return steps

    def in_names(self, e: Expr) -> bool:
        """Whether e, a component derivative, is written in the request's variables alone
        at the one size there is: its symbols are scalar variables (w_1, X_1_2 are
        components, no names of the request language) and no dimension is named (at
        named sizes an equation would hold at n = 2 only)."""
        return not self.named_dims and all(
            self.typing.vars[n].shape == SCALAR if n in self.typing.vars else False
            for n in E.free_vars(e))

    def tidy(self, x):
        """A display form: rational functions cancelled; anything else as sympy.diff
        gave it (sympy.simplify can take seconds on a single tanh or Heaviside)."""
        sp = self.sp
        try:
            if sp.count_ops(x) <= 60 and x.is_rational_function():
                return sp.factor_terms(sp.cancel(x))
        except (sp.PolynomialError, TypeError, ValueError):
            pass
        return x

    def to_expr(self, x) -> Expr | None:
        try:
            return _SymToExpr(self.sp).run(x)
        except _NoExpr:
            return None

    def to_literal(self, m) -> Expr | None:
        entries = [self.to_expr(self.tidy(m[i, j])) for i in range(m.rows) for j in range(m.cols)]
        if any(e is None for e in entries):
            return None
        if (m.rows, m.cols) == (1, 1):
            return entries[0]
        shape = (str(m.rows), str(m.cols))
        return Expr("vector" if m.cols == 1 else "matrix", tuple(entries), shape)


def _label(name, sep, i, j, r, c) -> str:
    """The symbol of component (i, j): w_1 for vectors, X_1_2 for matrices (1-based)."""
    if (r, c) == (1, 1):
        return name
    if c == 1:
        return f"{name}{sep}{i + 1}"
    return f"{name}{sep}{i + 1}{sep}{j + 1}"


def _of_label(body: Expr) -> str:
    from mcalc.methods.graph import labels
    return labels(body)[0]


def _component_labels(of: str, shape, sizes) -> list[str]:
    r, c = (parse_dim_size(d, sizes) for d in shape)
    if (r, c) == (1, 1):
        return [of]
    if c == 1 or r == 1:
        return [f"{of}_{i + 1}" for i in range(r * c)]
    return [f"{of}_{i + 1}_{j + 1}" for j in range(c) for i in range(r)]


def _vec(m) -> list:
    return [m[i, j] for j in range(m.cols) for i in range(m.rows)]


def _arrange_sym(sp, j, f_shape, x_shape, layout):
    """check.arrange for SymPy matrices: the vec-form Jacobian j (#F × #X, numerator,
    column-major vec) arranged as the contract arranges ∂F/∂X."""
    num = layout == "numerator"
    if tuple(x_shape) == (1, 1):
        r, c = f_shape
        g = sp.Matrix(r, c, lambda i, k: j[i + k * r, 0])
        return g if num else g.T
    if tuple(f_shape) == (1, 1):
        r, c = x_shape
        g = sp.Matrix(r, c, lambda i, k: j[0, i + k * r])
        return g.T if num else g
    return j if num else j.T


# =====================================================================================
# Expr -> SymPy (a table keyed on op; never through text)
# =====================================================================================

class _SymEval:
    def __init__(self, sp, env, sizes, deadline):
        self.sp, self.env, self.sizes, self.deadline = sp, env, sizes, deadline

    def run(self, root):
        memo = {}
        for node in postorder(root, memo):
            self.deadline.check()
            rule = _SYM_TABLE.get(node.op)
            if rule is None:
                raise McalcError(f"the definition method cannot expand {node.op}()")
            memo[node] = rule(self, node, [memo[a] for a in node.args])
        return memo[root]

    def size(self, d):
        return parse_dim_size(d, self.sizes)

    def scalar(self, x):
        return self.sp.Matrix([[x]])

    def ew(self, a, b, f):
        """Element-wise with scalar expansion."""
        sp = self.sp
        if a.shape == (1, 1) and b.shape != (1, 1):
            return sp.Matrix(b.rows, b.cols, lambda i, j: f(a[0, 0], b[i, j]))
        if b.shape == (1, 1) and a.shape != (1, 1):
            return sp.Matrix(a.rows, a.cols, lambda i, j: f(a[i, j], b[0, 0]))
        return sp.Matrix(a.rows, a.cols, lambda i, j: f(a[i, j], b[i, j]))

    def map(self, a, f):
        return a.applyfunc(f)

    # leaves
    def num(self, e, _):
        v = Fraction(e.value)
        return self.scalar(self.sp.Rational(v.numerator, v.denominator))

    def var(self, e, _):
        return self.env[e.name]

    def dim(self, e, _):
        return self.scalar(self.sp.Integer(self.size(e.name)))

    def const(self, e, _):
        return self.scalar({"pi": self.sp.pi, "e": self.sp.E}[e.name])

    def ones(self, e, _):
        return self.sp.ones(self.size(e.shape[0]), self.size(e.shape[1]))

    def eye(self, e, _):
        return self.sp.eye(self.size(e.shape[0]))

    def zeros(self, e, _):
        return self.sp.zeros(self.size(e.shape[0]), self.size(e.shape[1]))

    def commutation(self, e, _):
        """K_{m,n}: entry (j + i n, i + j m) is 1 (K vec(A) = vec(A'), see mcalc.evaluate)."""
        m, n = (self.size(d) for d in e.value)
        return self.sp.Matrix(m * n, m * n,
                              lambda r, c: int(c == r // n + (r % n) * m))

    # operators
    def add(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = self.ew(out, x, lambda p, q: p + q)
        return out

    def mul(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = self.ew(out, x, lambda p, q: p * q)
        return out

    def pow(self, e, a):
        p = a[1][0, 0]
        return self.map(a[0], lambda t: t ** p)

    def matmul(self, e, a):
        out = a[0]
        for x in a[1:]:
            out = out * x
        return out

    def T(self, e, a):
        return a[0].T

    def vector(self, e, a):
        return self.sp.Matrix([[x[0, 0]] for x in a])

    def matrix(self, e, a):
        r, c = int(e.shape[0]), int(e.shape[1])
        return self.sp.Matrix(r, c, [x[0, 0] for x in a])

    # element-wise
    def unary(self, e, a):
        sp = self.sp
        f = {"sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "exp": sp.exp, "log": sp.log,
             "sqrt": sp.sqrt, "tanh": sp.tanh, "abs": sp.Abs, "sign": sp.sign,
             "sigmoid": lambda t: 1 / (1 + sp.exp(-t)),
             "relu": lambda t: sp.Max(0, t)}[e.op]
        return self.map(a[0], f)

    def binary(self, e, a):
        sp = self.sp
        f = {"max": sp.Max, "min": sp.Min,
             "gt": lambda p, q: sp.Heaviside(p - q, 0), "ge": lambda p, q: sp.Heaviside(p - q, 1),
             "lt": lambda p, q: sp.Heaviside(q - p, 0), "le": lambda p, q: sp.Heaviside(q - p, 1),
             }[e.op]
        return self.ew(a[0], a[1], f)

    # reductions and matrix functions
    def sum(self, e, a):
        return self.scalar(sum(_vec(a[0]), self.sp.Integer(0)))

    def mean(self, e, a):
        x = a[0]
        return self.scalar(sum(_vec(x), self.sp.Integer(0)) / (x.rows * x.cols))

    def norm(self, e, a):
        x = a[0]
        if x.shape == (1, 1):
            return self.scalar(self.sp.Abs(x[0, 0]))
        return self.scalar(self.sp.sqrt(sum((t ** 2 for t in _vec(x)), self.sp.Integer(0))))

    def logsumexp(self, e, a):
        sp = self.sp
        return self.scalar(sp.log(sum((sp.exp(t) for t in _vec(a[0])), sp.Integer(0))))

    def softmax(self, e, a):
        sp = self.sp
        total = sum((sp.exp(t) for t in _vec(a[0])), sp.Integer(0))
        return self.map(a[0], lambda t: sp.exp(t) / total)

    def dot(self, e, a):
        return self.scalar(sum((p * q for p, q in zip(_vec(a[0]), _vec(a[1]))),
                               self.sp.Integer(0)))

    def tr(self, e, a):
        return self.scalar(a[0].trace())

    def det(self, e, a):
        return self.scalar(a[0].det(method="berkowitz"))

    def logdet(self, e, a):
        return self.scalar(self.sp.log(a[0].det(method="berkowitz")))

    def inv(self, e, a):
        x = a[0]
        if x.shape == (1, 1):
            return self.scalar(1 / x[0, 0])
        det = x.det(method="berkowitz")
        if det == 0:
            raise McalcError("the definition method: inv() of a singular matrix")
        return x.adjugate(method="berkowitz") / det

    def diag(self, e, a):
        x = a[0]
        if x.cols == 1 and e.shape[1] != "1":
            return self.sp.diag(*_vec(x))
        return self.sp.Matrix([[x[i, i]] for i in range(x.rows)])

    def kron(self, e, a):
        x, y = a
        return self.sp.Matrix(x.rows * y.rows, x.cols * y.cols,
                              lambda i, j: x[i // y.rows, j // y.cols] * y[i % y.rows, j % y.cols])

    def vec(self, e, a):
        return self.sp.Matrix([[t] for t in _vec(a[0])])


_SYM_TABLE = {
    "num": _SymEval.num, "var": _SymEval.var, "dim": _SymEval.dim, "const": _SymEval.const,
    "commutation": _SymEval.commutation,
    "ones": _SymEval.ones, "eye": _SymEval.eye, "zeros": _SymEval.zeros,
    "add": _SymEval.add, "mul": _SymEval.mul, "pow": _SymEval.pow,
    "matmul": _SymEval.matmul, "T": _SymEval.T,
    "vector": _SymEval.vector, "matrix": _SymEval.matrix,
    **{op: _SymEval.unary for op in ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh",
                                     "abs", "sign", "sigmoid", "relu")},
    **{op: _SymEval.binary for op in ("max", "min", "gt", "ge", "lt", "le")},
    "sum": _SymEval.sum, "mean": _SymEval.mean, "norm": _SymEval.norm,
    "logsumexp": _SymEval.logsumexp, "softmax": _SymEval.softmax, "dot": _SymEval.dot,
    "tr": _SymEval.tr, "det": _SymEval.det, "logdet": _SymEval.logdet, "inv": _SymEval.inv,
    "diag": _SymEval.diag, "kron": _SymEval.kron, "vec": _SymEval.vec,
}


# =====================================================================================
# SymPy -> Expr (component steps are printed in the request language)
# =====================================================================================

class _NoExpr(Exception):
    pass


class _SymToExpr:
    def __init__(self, sp):
        self.sp = sp

    def run(self, x) -> Expr:
        sp = self.sp
        if x.is_Integer or x.is_Rational:
            return E.num(Fraction(int(x.p), int(x.q)))
        if x.is_Symbol:
            return E.var(x.name, SCALAR)
        if x is sp.pi:
            return Expr("const", (), SCALAR, "pi")
        if x is sp.E:
            return Expr("exp", (E.ONE,), SCALAR)
        if x.is_Add:
            return self.nary("add", x.as_ordered_terms())
        if x.is_Mul:
            return self.nary("mul", x.as_ordered_factors())
        if x.is_Pow:
            base, p = x.args
            return Expr("pow", (self.run(base), self.run(p)), SCALAR)
        f = type(x)
        if f is sp.exp:
            return Expr("exp", (self.run(x.args[0]),), SCALAR)
        name = _SYM_FUNCS.get(f.__name__)
        if name is not None and len(x.args) == 1:
            return Expr(name, (self.run(x.args[0]),), SCALAR)
        if f is sp.Heaviside:
            return Expr("gt", (self.run(x.args[0]), E.ZERO), SCALAR)
        if f in (sp.Max, sp.Min):
            args = list(x.args)
            if f is sp.Max and len(args) == 2 and 0 in args:
                other = args[1] if args[0] == 0 else args[0]
                return Expr("relu", (self.run(other),), SCALAR)
            out = self.run(args[0])
            for a in args[1:]:
                out = Expr("max" if f is sp.Max else "min", (out, self.run(a)), SCALAR)
            return out
        raise _NoExpr(f.__name__)

    def nary(self, op, args) -> Expr:
        parts = tuple(self.run(a) for a in args)
        return parts[0] if len(parts) == 1 else Expr(op, parts, SCALAR)


_SYM_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "log": "log", "tanh": "tanh",
              "Abs": "abs", "sign": "sign"}
