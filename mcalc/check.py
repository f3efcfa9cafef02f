"""`mcalc check`: is a hand-derived CLAIM the derivative REQUEST asks for?

The claim is parsed by the request language's grammar and typed together with the request
(mcalc.api.typed), so both share declarations, inferred types and dimension names. Then,
in order (CONTRACT.md §3 'check'):

1. shape — the claim must have the derivative's shape in the chosen layout. The shape is
   worked out from the contract's layout rules alone (not from the engine); a claim with
   the transposed shape is reported as the other layout's form.
2. symbolic — mcalc's own derivative and the claim are brought to one canonical form
   (below); equal forms hold. The engine's result is trusted for this only after it has
   agreed with central finite differences of the expression at random points, so an
   engine bug cannot make a wrong claim hold.
3. numeric — several random points at several random sizes of the dimensions (2..5),
   float64: kinks of relu/abs/sign/max/min/comparisons avoided, square matrices well
   conditioned, symmetric values for symmetric(n) variables, positive values when a
   value is NaN (log, sqrt). Any disagreement is a counterexample; the diagnosis then
   looks for a likely cause: transposed, a constant factor, a wrong sign, a missing or
   extra term (found symbolically: derivative − claim in canonical form is one term),
   a missing A' term (the claim holds only for a symmetric A), a reversed indicator, a
   misplaced transpose.

`check --exact` (or --method definition) decides by the definition method instead
(mcalc.definition: every component at concrete sizes, differentiated by SymPy, compared
exactly); the numeric stage then only explains a failure.

The canonical form ("sums of products with sorted terms, transposes pushed to the
leaves, constants folded") is a sum of terms; a term is a rational coefficient times an
element-wise product of factors with exponents; a factor is a leaf (x, x', ones(n), eye,
a dimension N, pi, a literal), a matrix-product chain of such products (scalars pulled
out, eye dropped, inv(M)@M cancelled, diag(v)@u = v*u, ones(n)'@ones(n) = n, a 1×1 chain
in its smaller orientation, u'@v as ones'@(u*v)), a trace in its smallest cyclic
rotation, or a function of canonical arguments. Products distribute over sums (up to
MAX_TERMS terms), sum/mean/dot/norm become products with ones, sqrt a power 1/2,
x < y becomes y - x > 0. Every rewrite is an identity, so equal forms prove equality;
unequal forms prove nothing (the numeric stage decides).

Public API: check(request, claim, types=(), layout, method, exact, seed) -> CheckResult,
check_batch(lines, ...) -> [CheckResult], worst_status(results), derivative_shape,
canonical / canonical_poly (the canonical form). numpy is imported when a check runs
(sympy only for --exact), never when mcalc or this module is imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product as _cartesian

from mcalc import expr as E
from mcalc.errors import McalcError, NoRule
from mcalc.expr import Expr
from mcalc.types import SCALAR, dim_mul, parse_dim_size

LAYOUTS = ("numerator", "denominator")
MAX_TERMS = 600               # canonical forms larger than this are left to the numbers
SIZE_DRAWS = 3                # random assignments of the dimension sizes
POINTS_PER_SIZE = 4           # random points at each assignment
KINKED_POINTS_PER_SIZE = 16   # ... when an indicator, relu, abs, sign, max or min is
                              # involved: piecewise functions need many points to meet
                              # every piece ((b > 0) vs (b + w'x > 0) agree at most)
SIZES = (2, 3, 4, 5)
KINK_GAP = 1e-3               # redraw when a kink's argument is closer than this


# =====================================================================================
# The result
# =====================================================================================

@dataclass(frozen=True)
class Counterexample:
    sizes: dict                       # dimension -> size
    values: dict                      # variable -> value (float, 1-D or 2-D numpy array)
    expected: object                  # the derivative's value (float or array)
    claimed: object                   # the claim's value

    def as_dict(self) -> dict:
        tolist = lambda v: v.tolist() if hasattr(v, "tolist") else v  # noqa: E731
        return {"sizes": dict(self.sizes),
                "values": {k: tolist(v) for k, v in self.values.items()},
                "derivative": tolist(self.expected), "claim": tolist(self.claimed)}


@dataclass(frozen=True)
class CheckResult:
    request: str
    claim: str
    holds: bool | None                # None: the line was bad input (see `error`)
    method: str = ""                  # shape | symbolic | numeric | exact
    reason: str = ""                  # one line: why it was decided so
    cause: str | None = None          # the likely cause when it does not hold
    layout: str = "numerator"
    derivative: str | None = None     # mcalc's own result, in the request language
    types: dict = field(default_factory=dict)
    counterexample: Counterexample | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None          # the one-line message of bad input

    @property
    def status(self) -> int:
        """Exit status: 0 holds, 1 does not hold, 2 bad input."""
        return 2 if self.holds is None else (0 if self.holds else 1)

    def as_dict(self) -> dict:
        out = {"request": self.request, "claim": self.claim, "holds": self.holds,
               "reason": self.reason if self.error is None else self.error}
        if self.error is not None:
            out["error"] = self.error
            return out
        out.update({"method": self.method, "layout": self.layout, "types": dict(self.types),
                    "derivative": self.derivative})
        if self.cause:
            out["cause"] = self.cause
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.as_dict()
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def line(self) -> str:
        """The one-line form (batch output)."""
        both = f"{self.request} ;; {self.claim}"
        if self.error is not None:
            return f"error: {both}  — {self.error}"
        if self.holds:
            return f"holds: {both}  ({self.method})"
        return f"does not hold: {both}  — {self.cause or self.reason}"

    def text(self) -> str:
        """The full plain-text report of one check."""
        from mcalc.printing.plain import typing_text
        lines = [self.line()]
        if self.error is not None:
            return lines[0]
        lines.append(f"  typing:     {typing_text(self.types)}")
        lines.append(f"  layout:     {self.layout}")
        if self.derivative is not None:
            lines.append(f"  derivative: {self.derivative}")
        lines.append(f"  why:        {self.reason}")
        for n in self.notes:
            lines.append(f"  note:       {n}")
        ce = self.counterexample
        if ce is not None:
            at = ", ".join(f"{k} = {v}" for k, v in ce.sizes.items())
            lines.append(f"  counterexample{f' ({at})' if at else ''}:")
            for name, v in ce.values.items():
                lines.append(f"    {name} = {_show(v)}")
            lines.append(f"    derivative = {_show(ce.expected)}")
            lines.append(f"    claim      = {_show(ce.claimed)}")
        return "\n".join(lines)


def _show(v) -> str:
    import numpy as np
    if isinstance(v, float):
        return f"{v:.6g}"
    return np.array2string(np.asarray(v), precision=4, separator=", ", suppress_small=True,
                           max_line_width=10_000).replace("\n", "")


# =====================================================================================
# Entry points
# =====================================================================================

def check(request: str, claim: str, types=(), layout: str = "numerator",
          method: str | None = None, exact: bool = False, seed: int = 0) -> CheckResult:
    """Decide whether `claim` is the derivative `request` asks for. Bad input raises
    McalcError (exit status 2); otherwise the result says holds or not, and why."""
    from mcalc.api import METHODS, typed
    if layout not in LAYOUTS:
        raise McalcError(f"unknown layout '{layout}' (numerator or denominator)")
    if method is not None and method not in METHODS:
        raise McalcError(f"unknown method '{method}' (chain, differential or definition)")
    if not claim.strip():
        raise McalcError("the claim is empty")
    exact = exact or method == "definition"
    # The request's own typing is pinned first, so the claim cannot change it (in
    # `(w'@x + b < 0)*x` the claim alone would make b a vector).
    _, _, _, alone = typed(request, types)
    pinned = "; ".join(f"{n}: {t}" for n, t in alone.as_strings().items())
    try:
        req, body, cl, typing = typed(request, tuple(types) + ((pinned,) if pinned else ()),
                                      claim)
    except McalcError as e:                   # the request alone was fine: it is the claim
        raise McalcError(f"in the claim: {e.message}", e.column) from None
    if not req.wrt:
        raise McalcError("check needs a derivative request such as d/dx f", 1)
    extra = sorted(E.free_vars(cl) - E.free_vars(body))
    if extra:
        raise McalcError(f"the claim uses {', '.join(extra)}, which the request does not "
                         f"have")
    return _Checker(request, claim, req, body, cl, typing, layout, method, exact, seed).run()


def check_batch(lines, types=(), layout: str = "numerator", method: str | None = None,
                exact: bool = False, seed: int = 0) -> list[CheckResult]:
    """One result per line `REQUEST ;; CLAIM`; blank lines and # comments are skipped. A
    bad line gives a result with `error` set (status 2) and the batch goes on."""
    out = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        request, sep, claim = line.partition(";;")
        request, claim = request.strip(), claim.strip()
        try:
            if not sep:
                raise McalcError("expected REQUEST ;; CLAIM")
            out.append(check(request, claim, types, layout, method, exact, seed))
        except McalcError as e:
            out.append(CheckResult(request if sep else line.strip(), claim, None,
                                   error=e.one_line()))
        except RecursionError:
            out.append(CheckResult(request, claim, None,
                                   error="error: expression too deeply nested for mcalc"))
    return out


def worst_status(results) -> int:
    return max((r.status for r in results), default=0)


# =====================================================================================
# Shapes: the contract's layout rules, independent of the engine
# =====================================================================================

def derivative_shape(f_shape, x_shape, layout: str):
    """The shape of ∂F/∂X (CONTRACT §2): F's shape for a scalar X (transposed in
    denominator), X's shape transposed for a scalar F (X's own in denominator), else the
    vec form (#F × #X), transposed in denominator."""
    num = layout == "numerator"
    if x_shape == SCALAR:
        return tuple(f_shape) if num else (f_shape[1], f_shape[0])
    if f_shape == SCALAR:
        return (x_shape[1], x_shape[0]) if num else tuple(x_shape)
    j = (dim_mul(*f_shape), dim_mul(*x_shape))
    return j if num else (j[1], j[0])


def _wrt_groups(req, typing):
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


def expected_shape(req, body, typing, layout):
    groups = _wrt_groups(req, typing)
    shape = body.shape
    for k, (xs, stacked) in enumerate(groups):
        lay = layout if k == len(groups) - 1 else "denominator"
        x_shape = (str(len(xs)), "1") if stacked else xs[0].shape
        shape = derivative_shape(shape, x_shape, lay)
    return shape


def _other(layout):
    return "denominator" if layout == "numerator" else "numerator"


def _by(shape):
    r, c = (f"({d})" if "*" in d else d for d in shape)
    return f"{r}×{c}"


# =====================================================================================
# The checker
# =====================================================================================

class _Checker:
    def __init__(self, request, claim, req, body, cl, typing, layout, method, exact, seed):
        import numpy as np
        self.np = np
        self.request, self.claim = request, claim
        self.req, self.body, self.cl, self.typing = req, body, cl, typing
        self.layout, self.method, self.exact = layout, method, exact
        self.rng = np.random.default_rng(seed)
        self.notes: list[str] = []
        self.truth: Expr | None = None          # mcalc's derivative
        self.engine_ok = True                   # the engine agreed with finite differences
        self.fd_truth = False                   # the truth is finite differences

    # -- the decision, in order ------------------------------------------------------
    def run(self) -> CheckResult:
        from mcalc.printing.text import to_text
        self.shape = expected_shape(self.req, self.body, self.typing, self.layout)
        self._derive()
        claim_shape = self.cl.shape
        if _is_zero_literal(self.cl) and claim_shape != self.shape:
            self.cl = E.zeros(self.shape)                  # "0" stands for a zero array
            claim_shape = self.shape
        if claim_shape != self.shape:
            return self._result(False, "shape", *self._shape_reason(claim_shape))
        if self.exact:
            return self._exact()
        self._points()
        if self.truth is not None and self.engine_ok:
            try:
                if canonical_poly(self.truth) == canonical_poly(self.cl):
                    return self._result(True, "symbolic",
                                        "symbolic: the claim and the derivative "
                                        f"{to_text(self.truth)} reduce to one canonical form")
            except GiveUp:
                self.notes.append("the canonical forms were too large to compare")
        return self._numeric()

    def _result(self, holds, method, reason, cause=None, counterexample=None):
        from mcalc.printing.text import to_text
        return CheckResult(
            request=self.request, claim=self.claim, holds=holds, method=method,
            reason=reason, cause=cause, layout=self.layout,
            derivative=to_text(self.truth) if self.truth is not None else None,
            types=self.typing.as_strings(), counterexample=counterexample,
            notes=tuple(dict.fromkeys(self.notes)))

    def _derive(self):
        from mcalc.api import derive_typed
        method = self.method if self.method in ("chain", "differential") else None
        try:
            d = derive_typed(self.req, self.body, self.typing, self.layout, method)
        except NoRule as e:
            self.notes.append(f"mcalc has no symbolic derivative here ({e.message}); the "
                              f"claim is compared with finite differences")
            return
        except McalcError as e:                   # the request itself was checked first
            self.notes.append(f"mcalc's own derivation failed ({e.message}; please report "
                              f"this request); the claim is compared with finite differences")
            return
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as e:
            self.notes.append(f"mcalc's own derivation failed (internal error: "
                              f"{type(e).__name__}: {e}; please report this request); the "
                              f"claim is compared with finite differences")
            return
        if d.result.shape != self.shape:
            from mcalc.printing.text import to_text
            self.notes.append(f"mcalc's own derivative {to_text(d.result)} has the shape "
                              f"{_by(d.result.shape)}, not {_by(self.shape)} (please report "
                              f"this request); the claim is compared with finite differences")
            return
        self.truth = d.result

    def _shape_reason(self, claim_shape):
        want, lay = self.shape, self.layout
        head = (f"shape: the claim is {_by(claim_shape)}, the derivative is {_by(want)} "
                f"in {lay} layout")
        if claim_shape == (want[1], want[0]):
            cause = f"transposed (the {_other(lay)}-layout form)"
        else:
            cause = f"wrong shape: {_by(claim_shape)} instead of {_by(want)}"
        return f"{head} — {cause}", cause

    # -- exact: the definition method --------------------------------------------------
    def _exact(self) -> CheckResult:
        from mcalc.definition import exact_equal
        verdict = exact_equal(self.req, self.body, self.cl, self.typing, self.layout)
        if verdict.equal:
            return self._result(True, "exact", f"exact: {verdict.detail}")
        try:
            self._points()
            if all(self._agree(p["truth"], p["claim"]) for p in self.points):
                self.notes.append("the random points of the numeric comparison did not "
                                  "show the difference")
                return self._result(False, "exact", f"exact: {verdict.detail}")
            cause, ce = self._diagnose_failure()
        except McalcError:                        # no numeric explanation: the verdict stands
            return self._result(False, "exact", f"exact: {verdict.detail}")
        return self._result(False, "exact", f"exact: {verdict.detail} — {cause}", cause, ce)

    # -- random points -----------------------------------------------------------------
    def _dims(self):
        names = set(d for d in self.typing.dims if not d.isdigit())
        for root in (self.body, self.cl) + ((self.truth,) if self.truth is not None else ()):
            seen, stack = set(), [root]
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen.add(n)
                stack.extend(n.args)
                for d in n.shape + ((n.name,) if n.op == "dim" else ()):
                    names.update(p for p in d.split("*") if p and not p.isdigit())
        return sorted(names)

    def _draw_sizes(self, names, k):
        """Sizes in 2..5, distinct across names (up to four names: a transposed result
        then has another shape); the first name takes a new size at every draw."""
        rng = self.rng
        if not hasattr(self, "_first_sizes"):
            self._first_sizes = [int(s) for s in rng.permutation(SIZES)]
        if not names:
            return {}
        first = self._first_sizes[k % len(SIZES)]
        rest = [s for s in SIZES if s != first]
        if len(names) <= len(SIZES):
            drawn = [first] + [int(s) for s in rng.choice(rest, size=len(names) - 1,
                                                            replace=False)]
        else:
            drawn = [first] + [int(s) for s in rng.integers(SIZES[0], SIZES[-1] + 1,
                                                            size=len(names) - 1)]
        return dict(zip(names, drawn))

    def _draw_values(self, sizes, positive):
        np, rng = self.np, self.rng
        values = {}
        for name, vt in self.typing.vars.items():
            r, c = (parse_dim_size(d, sizes) for d in vt.shape)
            m = rng.uniform(0.5, 2.0, size=(r, c)) if positive else rng.standard_normal((r, c))
            if vt.kind == "symmetric":
                m = (m + m.T) / 2
            if r == c and r > 1:
                m = m + r * np.eye(r)                      # well conditioned
            values[name] = m
        return values

    def _points(self):
        """Random points (sizes, values 2-D) with the derivative's value at each."""
        if hasattr(self, "points"):
            return
        from mcalc.evaluate import KINK_BINARY, KINK_UNARY
        names = self._dims()
        self.points = []
        roots = [self.body, self.cl] + ([self.truth] if self.truth is not None else [])
        kinked = any(n.op in KINK_UNARY or n.op in KINK_BINARY
                     for r in roots for _, n in _nodes_with_paths(r))
        per = KINKED_POINTS_PER_SIZE if kinked else POINTS_PER_SIZE
        draws = SIZE_DRAWS if names else 1
        per = per if names else SIZE_DRAWS * per
        for k in range(draws):
            sizes = self._draw_sizes(names, k)
            for _ in range(per):
                p = self._one_point(sizes)
                if p is not None:
                    self.points.append(p)
        if not self.points:
            raise McalcError("could not find a random point where the expression, the "
                             "derivative and the claim are all defined")
        self._validate_engine()

    def _one_point(self, sizes, tries: int = 24):
        from mcalc.evaluate import kink_distance
        np = self.np
        for t in range(tries):
            positive = t % 2 == 1 or t >= tries // 2
            values = self._draw_values(sizes, positive)
            roots = [self.body, self.cl] + ([self.truth] if self.truth is not None else [])
            if min(kink_distance(r, values, sizes) for r in roots) < KINK_GAP:
                continue
            f = self._eval(self.body, values, sizes)
            if not np.all(np.isfinite(f)):
                continue
            truth = self._eval(self.truth, values, sizes) if self.truth is not None else None
            if truth is not None and not np.all(np.isfinite(truth)):
                continue
            claim = self._eval(self.cl, values, sizes)
            if not np.all(np.isfinite(claim)) and t < tries - 2:
                continue                                   # try positive values first
            return {"sizes": sizes, "values": values, "truth": truth, "claim": claim}
        return None

    def _eval(self, e, values, sizes):
        from mcalc.evaluate import evaluate
        return evaluate(e, values, sizes, two_d=True)

    # -- finite differences ------------------------------------------------------------
    def _fd(self, values, sizes, step: float = 1e-6):
        """∂body/∂x by central differences, arranged in the requested layout (first
        derivatives only; None for second derivatives)."""
        np = self.np
        groups = _wrt_groups(self.req, self.typing)
        if len(groups) != 1:
            return None
        xs, stacked = groups[0]
        columns = []
        for x in xs:
            x0 = values[x.name]
            flat = x0.reshape(-1, order="F")
            for k in range(flat.size):
                h = step * max(1.0, abs(flat[k]))
                vals = []
                for sgn in (1, -1):
                    moved = flat.copy()
                    moved[k] += sgn * h
                    v = dict(values)
                    v[x.name] = moved.reshape(x0.shape, order="F")
                    vals.append(self._eval(self.body, v, sizes))
                columns.append(((vals[0] - vals[1]) / (2 * h)).reshape(-1, order="F"))
        j = np.stack(columns, axis=1)
        f_shape = self.body.shape
        x_shape = (str(len(xs)), "1") if stacked else xs[0].shape
        fr, fc = (parse_dim_size(d, sizes) for d in f_shape)
        xr, xc = (1, 1) if x_shape == SCALAR else (
            (len(xs), 1) if stacked else (parse_dim_size(x_shape[0], sizes),
                                          parse_dim_size(x_shape[1], sizes)))
        return arrange(np, j, (fr, fc), (xr, xc), self.layout)

    def _validate_engine(self):
        """Trust mcalc's symbolic derivative only after it agrees with finite differences
        (first derivatives); otherwise finite differences are the truth."""
        np = self.np
        if self.truth is not None:
            for p in self.points[:2]:
                fd = self._fd(p["values"], p["sizes"])
                if fd is None:
                    return
                if not _close(np, p["truth"], fd, loose=True) and not any(
                        _close(np, p["truth"], self._fd(p["values"], p["sizes"], h), loose=True)
                        for h in (1e-5, 1e-7)):       # second opinions before blaming it
                    self.engine_ok = False
                    from mcalc.printing.text import to_text
                    self.notes.append(
                        f"mcalc's own derivative {to_text(self.truth)} disagrees with finite "
                        f"differences (please report this request); the claim is compared "
                        f"with finite differences")
                    break
            if self.engine_ok:
                return
        for p in self.points:
            fd = self._fd(p["values"], p["sizes"])
            if fd is None:
                raise McalcError("mcalc has no derivative for this request, and finite "
                                 "differences cover first derivatives only")
            p["truth"] = fd
        self.fd_truth = True

    # -- numeric decision --------------------------------------------------------------
    def _agree(self, a, b) -> bool:
        return _close(self.np, b, a, loose=self.fd_truth)

    def _numeric(self) -> CheckResult:
        bad = next((p for p in self.points if not self._agree(p["truth"], p["claim"])), None)
        if bad is None:
            n = len(self.points)
            return self._result(True, "numeric", f"numeric: equal to the derivative at {n} "
                                                 f"random points{self._sizes_text()}")
        cause, ce = self._diagnose_failure()
        at = ", ".join(f"{k} = {v}" for k, v in ce.sizes.items())
        return self._result(False, "numeric", f"numeric: the claim differs from the "
                                              f"derivative{f' at {at}' if at else ''} — {cause}",
                            cause, ce)

    def _sizes_text(self):
        seen = []
        for p in self.points:
            s = ", ".join(f"{k} = {v}" for k, v in p["sizes"].items())
            if s and s not in seen:
                seen.append(s)
        return f" (sizes {'; '.join(seen)})" if seen else ""

    # -- diagnosis ---------------------------------------------------------------------
    def _diagnose_failure(self):
        from mcalc.evaluate import to_contract
        np = self.np
        bad = next((p for p in self.points if not self._agree(p["truth"], p["claim"])),
                   self.points[0])
        ce = Counterexample(
            sizes=dict(bad["sizes"]),
            values={k: to_contract(v) for k, v in bad["values"].items()},
            expected=to_contract(bad["truth"]), claimed=to_contract(bad["claim"]))
        usable = [p for p in self.points if np.all(np.isfinite(p["claim"]))]
        if not usable:
            return "the claim is not defined (NaN) where the derivative is", ce
        for find in (self._transposed, self._factor, self._dimension_factor, self._one_term,
                     self._indicator, self._misplaced_transpose, self._symmetric_only):
            cause = find(usable)
            if cause:
                return cause, ce
        return "the values differ (no simple cause found)", ce

    def _transposed(self, pts):
        np = self.np
        if any(p["truth"].shape[0] != p["truth"].shape[1] or
               _close(np, p["truth"], p["truth"].T) for p in pts):
            return None
        if all(self._agree(p["truth"].T, p["claim"]) for p in pts):
            return f"transposed (the {_other(self.layout)}-layout form)"
        return None

    def _factor(self, pts):
        np = self.np
        t = np.concatenate([p["truth"].ravel() for p in pts])
        c = np.concatenate([p["claim"].ravel() for p in pts])
        if np.allclose(t, 0, atol=1e-9):
            return "the derivative is 0" if not np.allclose(c, 0, atol=1e-9) else None
        k = float(np.dot(c, t) / np.dot(t, t))
        if not all(self._agree(k * p["truth"], p["claim"]) for p in pts):
            return None
        if abs(k) < 1e-9:
            return "the claim is 0 but the derivative is not"
        if abs(k + 1) < 1e-6:
            return "wrong sign"
        nice = Fraction(k).limit_denominator(1000)
        text = str(nice) if abs(float(nice) - k) < 1e-6 * abs(k) else f"{k:.6g}"
        sign = " and the wrong sign" if k < 0 else ""
        text = text.lstrip("-")
        return f"off by a factor of {text}{sign}"

    def _symmetric_only(self, pts):
        """Does the claim hold once some square matrix is symmetric? Then the claim misses
        the transposed term (x'Ax: A@x for (A + A')@x)."""
        np = self.np
        names = [n for n, vt in self.typing.vars.items() if vt.kind == "matrix"
                 and vt.shape[0] == vt.shape[1] and n in E.free_vars(self.body)]
        for name in names:
            ok = True
            for p in pts:
                values = dict(p["values"])
                a = values[name]
                values[name] = (a + a.T) / 2
                truth = self._truth_at(values, p["sizes"])
                claim = self._eval(self.cl, values, p["sizes"])
                if truth is None or not self._agree(truth, claim):
                    ok = False
                    break
            if ok:
                tail = (f"(the claim holds only when {name} is; if it is, declare "
                        f"{name}: symmetric({self.typing.vars[name].shape[0]}))")
                if self._truth_has_transposed_term(name):
                    return f"missing the {name}' term: is {name} symmetric? {tail}"
                return f"right only for a symmetric {name}: is {name} symmetric? {tail}"
        return None

    def _truth_has_transposed_term(self, name) -> bool:
        if self.truth is None:
            return False
        try:
            p = canonical_poly(self.truth)
        except GiveUp:
            return False
        return len(p.terms) > 1 and any(
            name in _transposed_matrices(render_mono(m)) for m in p.terms)

    def _dimension_factor(self, pts):
        """Off by a dimension: the claim is N (or 1/N) times the derivative."""
        np = self.np
        names = sorted({k for p in pts for k in p["sizes"]})
        for name in names:
            for power, text in ((1, f"{name}"), (-1, f"1/{name}")):
                if all(self._agree(p["sizes"][name] ** power * p["truth"], p["claim"])
                       for p in pts) and any(np.any(p["truth"]) for p in pts):
                    return f"off by a factor of {text}"
        return None

    def _truth_at(self, values, sizes):
        if self.fd_truth:
            return self._fd(values, sizes)
        return self._eval(self.truth, values, sizes)

    def _one_term(self, pts):
        """derivative − claim in canonical form: one term is a missing (or extra) term."""
        from mcalc.printing.text import to_text
        from mcalc.simplify import simplify
        if self.truth is None or not self.engine_ok:
            return None
        try:
            diff = poly_sub(canonical_poly(self.truth), canonical_poly(self.cl))
        except GiveUp:
            return None
        if len(diff.terms) != 1:
            return None
        (mono, c), = diff.terms.items()
        missing = c > 0
        term = simplify(render_poly(Poly({mono: abs(c)}, diff.shape)))
        text = to_text(term)
        for v in _transposed_matrices(term):
            vt = self.typing.vars.get(v)
            if vt is not None and vt.kind == "matrix":
                return (f"missing the {v}' term {text}: is {v} symmetric?" if missing else
                        f"an extra term {text}")
        if missing:
            return f"missing the term {text}"
        return f"an extra term {text}"

    def _holds_with(self, claim: Expr, pts) -> bool:
        np = self.np
        for p in pts:
            c = self._eval(claim, p["values"], p["sizes"])
            if not np.all(np.isfinite(c)) or not self._agree(p["truth"], c):
                return False
        return True

    def _indicator(self, pts):
        from mcalc.printing.text import to_text
        flips = {"gt": ("lt", "le"), "ge": ("le", "lt"), "lt": ("gt", "ge"), "le": ("ge", "gt")}
        for path, node in _nodes_with_paths(self.cl):
            if node.op not in flips:
                continue
            for new_op in flips[node.op]:
                new = Expr(new_op, node.args, node.shape)
                if self._holds_with(_replace_at(self.cl, path, new), pts):
                    return f"wrong indicator: {to_text(node)} should be {to_text(new)}"
        return None

    def _misplaced_transpose(self, pts):
        from mcalc.printing.text import to_text
        tried = 0
        candidates = sorted(_nodes_with_paths(self.cl), key=lambda pn: -pn[1].size)
        for path, node in candidates:
            if not path or node.is_scalar or node.shape[0] != node.shape[1] or \
                    node.is_symmetric or node.op in ("eye", "diag"):
                continue
            new = node.args[0] if node.op == "T" else Expr("T", (node,), node.shape)
            tried += 1
            if tried > 60:
                break
            if self._holds_with(_replace_at(self.cl, path, new), pts):
                return f"a transpose is wrong: {to_text(node)} should be {to_text(new)}"
        return None


def _close(np, a, b, loose: bool = False) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    rtol, atol = (1e-4, 1e-6) if loose else (1e-7, 1e-9)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol * scale))


def arrange(xp, j, f_shape, x_shape, layout):
    """The vec-form Jacobian j (#F × #X, numerator, column-major vec) arranged as the
    contract arranges ∂F/∂X (numpy arrays; f_shape and x_shape are integer pairs)."""
    num = layout == "numerator"
    if x_shape == (1, 1):
        g = j[:, 0].reshape(f_shape, order="F")
        return g if num else g.T
    if f_shape == (1, 1):
        g = j[0, :].reshape(x_shape, order="F")
        return g.T if num else g
    return j if num else j.T


def _is_zero_literal(e: Expr) -> bool:
    return (e.op == "num" and e.value == 0) or e.op == "zeros"


def _nodes_with_paths(e: Expr):
    """Every node of the tree with its path (the argument indices from the root)."""
    out, stack = [], [((), e)]
    while stack:
        path, node = stack.pop()
        out.append((path, node))
        stack.extend((path + (i,), a) for i, a in enumerate(node.args))
    return out


def _replace_at(e: Expr, path, new: Expr) -> Expr:
    if not path:
        return new
    i = path[0]
    args = list(e.args)
    args[i] = _replace_at(args[i], path[1:], new)
    return Expr(e.op, tuple(args), e.shape, e.name, e.value)


def _transposed_matrices(e: Expr):
    seen = []
    for _, n in _nodes_with_paths(e):
        if n.op == "T" and n.args[0].op == "var" and n.args[0].is_matrix \
                and n.args[0].name not in seen:
            seen.append(n.args[0].name)
    return seen


# =====================================================================================
# The canonical form
# =====================================================================================

class GiveUp(Exception):
    """The canonical form would be too large."""


class Poly:
    """A sum of terms: {mono: coefficient}; a mono is a sorted tuple of (base, exponent)
    whose factors multiply element-wise. `shape` is the sum's shape; every term of a
    non-scalar sum has that shape (scalars are multiplied by ones first)."""
    __slots__ = ("terms", "shape")

    def __init__(self, terms: dict, shape):
        self.terms = terms
        self.shape = shape

    def __eq__(self, other):
        return isinstance(other, Poly) and self.shape == other.shape and \
            self.terms == other.terms

    def __hash__(self):
        return hash((self.shape, frozenset(self.terms.items())))

    def __repr__(self):
        from mcalc.printing.text import to_text
        return f"Poly({to_text(render_poly(self))!r}, {self.shape})"


def canonical(e: Expr) -> Expr:
    """The canonical form of e as an Expr (equal forms: equal values)."""
    return render_poly(canonical_poly(e))


def canonical_poly(e: Expr) -> Poly:
    return _Canon().poly(e)


def poly_sub(a: Poly, b: Poly) -> Poly:
    terms = dict(a.terms)
    for m, c in b.terms.items():
        v = terms.get(m, Fraction(0)) - c
        if v:
            terms[m] = v
        else:
            terms.pop(m, None)
    return Poly(terms, a.shape)


_KEYS: dict = {}


def _key(e: Expr) -> str:
    k = _KEYS.get(e)
    if k is None:
        from mcalc.printing.text import to_text
        k = f"{to_text(e)}:{e.shape[0]}x{e.shape[1]}:{e.op}"
        if len(_KEYS) > 100_000:
            _KEYS.clear()
        _KEYS[e] = k
    return k


def _mono(factors) -> tuple:
    return tuple(sorted(factors, key=lambda f: (_key(f[0]), f[1])))


def _mono_shape(mono):
    for b, _ in mono:
        if b.shape != SCALAR:
            return b.shape
    return SCALAR


def _ones_like(shape) -> Expr:
    r, c = shape
    if c == "1":
        return E.ones(r)
    if r == "1":
        return Expr("T", (E.ones(c),), ("1", c))
    return Expr("matmul", (E.ones(r), Expr("T", (E.ones(c),), ("1", c))), (r, c))


def _is_ones_like(b: Expr) -> bool:
    return b == _ones_like(b.shape) if b.shape != SCALAR else False


def _dim_expr(d: str) -> Expr:
    """A dimension (or a product m*n) as a scalar expression."""
    out = None
    for part in d.split("*"):
        leaf = E.num(int(part)) if part.isdigit() else E.dim(part)
        out = leaf if out is None else Expr("mul", (out, leaf), SCALAR)
    return out


def render_mono(mono, coeff: Fraction = Fraction(1)) -> Expr:
    factors = [b if p == 1 else Expr("pow", (b, E.num(p)), b.shape) for b, p in mono]
    shape = _mono_shape(mono)
    if coeff != 1 or not factors:
        factors.insert(0, E.num(coeff))
    if len(factors) == 1:
        return factors[0]
    return Expr("mul", tuple(factors), shape)


def render_poly(p: Poly) -> Expr:
    if not p.terms:
        return E.zeros(p.shape)
    terms = sorted((render_mono(m, c) for m, c in p.terms.items()), key=_key)
    if len(terms) == 1:
        return terms[0]
    return Expr("add", tuple(terms), p.shape)


class _Canon:
    def __init__(self):
        self.memo: dict[Expr, Poly] = {}

    # -- polynomial arithmetic -----------------------------------------------------------
    def const(self, c, shape=SCALAR) -> Poly:
        c = Fraction(c)
        if not c:
            return Poly({}, shape)
        return self.fit(Poly({(): c}, SCALAR), shape)

    def atom(self, b: Expr, p: Fraction = Fraction(1)) -> Poly:
        return Poly({((b, Fraction(p)),): Fraction(1)}, b.shape)

    def fit(self, p: Poly, shape) -> Poly:
        """Scalar terms of a non-scalar sum get a ones factor of the sum's shape."""
        if shape == SCALAR or all(_mono_shape(m) == shape for m in p.terms):
            return Poly(p.terms, shape)
        ones = ((_ones_like(shape), Fraction(1)),)
        out: dict = {}
        for m, c in p.terms.items():
            m2 = m if _mono_shape(m) == shape else self.mono_mul(m, ones)[1]
            out[m2] = out.get(m2, Fraction(0)) + c
        return Poly({m: c for m, c in out.items() if c}, shape)

    def add(self, polys, shape) -> Poly:
        out: dict = {}
        for p in polys:
            for m, c in self.fit(p, shape).terms.items():
                out[m] = out.get(m, Fraction(0)) + c
        return Poly({m: c for m, c in out.items() if c}, shape)

    def mono_mul(self, a, b):
        """(extra coefficient, mono) of the element-wise product of two monos."""
        exps: dict = {}
        for base, p in a + b:
            exps[base] = exps.get(base, Fraction(0)) + p
        coeff = Fraction(1)
        factors = []
        for base, p in exps.items():
            if not p:
                continue
            if base.op == "num" and p.denominator == 1:
                coeff *= base.value ** int(p)
                continue
            if _is_ones_like(base):
                p = Fraction(1)
            factors.append((base, p))
        arrays = [f for f in factors if f[0].shape != SCALAR and not _is_ones_like(f[0])]
        if arrays:
            factors = [f for f in factors if not _is_ones_like(f[0])]
        return coeff, _mono(factors)

    def mul(self, polys, shape) -> Poly:
        out = {(): Fraction(1)}
        for p in polys:
            nxt: dict = {}
            for (m1, c1), (m2, c2) in _cartesian(out.items(), p.terms.items()):
                k, m = self.mono_mul(m1, m2)
                nxt[m] = nxt.get(m, Fraction(0)) + c1 * c2 * k
                if len(nxt) > MAX_TERMS:
                    raise GiveUp
            out = {m: c for m, c in nxt.items() if c}
        return self.fit(Poly(out, shape), shape)

    # -- the walk ----------------------------------------------------------------------
    def poly(self, e: Expr) -> Poly:
        got = self.memo.get(e)
        if got is None:
            # children first, iteratively (deep trees never reach the recursion limit)
            stack = [e]
            while stack:
                n = stack[-1]
                pending = [a for a in n.args if a not in self.memo]
                if pending and n not in self.memo:
                    stack.extend(pending)
                    continue
                stack.pop()
                if n not in self.memo:
                    self.memo[n] = _CANON.get(n.op, _Canon.opaque)(self, n)
            got = self.memo[e]
        return got

    def expr(self, e: Expr) -> Expr:
        """The canonical Expr of e (for arguments of functions)."""
        return render_poly(self.poly(e))

    # leaves
    def leaf(self, e):
        if e.op == "num":
            return self.const(e.value)
        if e.op == "zeros":
            return Poly({}, e.shape)
        return self.atom(e)

    def literal(self, e):
        return self.atom(Expr(e.op, tuple(self.expr(a) for a in e.args), e.shape))

    # arithmetic
    def add_(self, e):
        return self.add([self.poly(a) for a in e.args], e.shape)

    def mul_(self, e):
        return self.mul([self.poly(a) for a in e.args], e.shape)

    def pow_(self, e):
        base, p = self.poly(e.args[0]), self.poly(e.args[1])
        if p.terms and (len(p.terms) > 1 or next(iter(p.terms)) != ()):
            return self.atom(Expr("pow", (render_poly(base), render_poly(p)), e.shape))
        return self.power(base, next(iter(p.terms.values()), Fraction(0)), e.shape)

    def power(self, base: Poly, p: Fraction, shape) -> Poly:
        if p == 0:
            return self.const(1, shape)
        if p == 1:
            return base
        if not base.terms:
            if p > 0:
                return base
            return self.atom(Expr("pow", (render_poly(base), E.num(p)), shape))
        if len(base.terms) == 1:
            (mono, c), = base.terms.items()
            if p.denominator == 1:
                k = int(p)
                factors = [(b, q * k) for b, q in mono]
                coeff, m = self.mono_mul(tuple(factors), ())
                return self.fit(Poly({m: c ** k * coeff}, shape), shape)
            if c > 0 and len(mono) == 1 and mono[0][1] == 1:
                factors = [(mono[0][0], p)]
                if c != 1:
                    factors.append((E.num(c), p))
                return self.fit(Poly({_mono(factors): Fraction(1)}, shape), shape)
            return self._pow_atom(base, p, shape)
        if p.denominator == 1 and 1 < p <= 4:
            return self.mul([base] * int(p), shape)
        return self._pow_atom(base, p, shape)

    def _pow_atom(self, base, p, shape):
        """(sum)^p as one factor with an exponent, so (a+b)^-1 * (a+b) cancels."""
        return self.fit(Poly({((render_poly(base), Fraction(p)),): Fraction(1)}, shape), shape)

    def T_(self, e):
        return self.transpose(self.poly(e.args[0]))

    # transposes, pushed to the leaves
    def transpose(self, p: Poly) -> Poly:
        if p.shape == SCALAR:
            return p
        shape = (p.shape[1], p.shape[0])
        out = []
        for mono, c in p.terms.items():
            parts = [self.power(self.t_base(b), q, (b.shape[1], b.shape[0])) for b, q in mono]
            out.append(self.mul([self.const(c)] + parts, shape))
        return self.add(out, shape)

    def t_base(self, b: Expr) -> Poly:
        """The transpose of one factor, as a canonical sum."""
        op, shape = b.op, (b.shape[1], b.shape[0])
        if b.shape == SCALAR or b.is_symmetric or op == "eye" or \
                (op == "diag" and b.is_matrix):
            return self.atom(b)
        if op == "T":
            return self.atom(b.args[0])
        if op in ("var", "ones"):
            return self.atom(Expr("T", (b,), shape))
        if op in ("vector", "matrix"):
            r, c = int(b.shape[0]), int(b.shape[1])
            entries = tuple(b.args[i * c + j] for j in range(c) for i in range(r))
            return self.atom(Expr("vector" if shape[1] == "1" and shape[0] != "1" else "matrix",
                                  entries, shape))
        if op == "matmul":
            return self.chain([self.transpose(self.poly(a)) for a in reversed(b.args)], shape)
        if op in ELEMENTWISE or op == "pow":
            args = tuple(self.expr(Expr("T", (a,), (a.shape[1], a.shape[0])))
                         if a.shape != SCALAR else a for a in b.args)
            return self.atom(Expr(op, args, shape))
        if op == "inv":
            return self.atom(Expr("inv", (self.expr(Expr("T", (b.args[0],),
                                                        b.args[0].shape)),), shape))
        if op == "kron":
            a1, a2 = (self.expr(Expr("T", (a,), (a.shape[1], a.shape[0]))) for a in b.args)
            return self.atom(Expr("kron", (a1, a2), shape))
        if op == "add":
            return self.transpose(self.poly(b))
        return self.atom(Expr("T", (b,), shape))

    # matrix products
    def matmul_(self, e):
        return self.chain([self.poly(a) for a in e.args], e.shape)

    def chain(self, polys, shape) -> Poly:
        """The product A@B@... of canonical sums, multiplied out."""
        out: dict = {}
        count = 1
        for p in polys:
            count *= max(1, len(p.terms))
            if count > MAX_TERMS:
                raise GiveUp
        for combo in _cartesian(*[list(p.terms.items()) for p in polys]):
            coeff = Fraction(1)
            scalars: list = []
            elements: list = []
            for p, (mono, c) in zip(polys, combo):
                coeff *= c
                if p.shape == SCALAR:
                    scalars.extend(mono)
                    continue
                sc = [f for f in mono if f[0].shape == SCALAR]
                arr = tuple(f for f in mono if f[0].shape != SCALAR)
                scalars.extend(sc)
                if len(arr) == 1 and arr[0][1] == 1 and arr[0][0].op == "matmul":
                    elements.extend(self.element(a) for a in arr[0][0].args)
                else:
                    elements.append(arr)
            k, term = self.chain_term(elements, shape)
            k2, m = self.mono_mul(tuple(scalars), term)
            total = coeff * k * k2
            out[m] = out.get(m, Fraction(0)) + total
        return self.fit(Poly({m: c for m, c in out.items() if c}, shape), shape)

    def element(self, a: Expr) -> tuple:
        """A chain element (a rendered mono) back as a mono."""
        p = self.poly(a)
        (mono, c), = p.terms.items()
        return mono

    def chain_term(self, elements, shape):
        """(coefficient, mono) of one product chain of monos, simplified."""
        coeff = Fraction(1)
        scalars: list = []
        els = [m for m in elements]
        changed = True
        while changed:
            changed = False
            if len(els) > 1:
                kept = [m for m in els if not (len(m) == 1 and m[0][0].op == "eye"
                                               and m[0][1] == 1)]
                if len(kept) != len(els):
                    els, changed = kept, True
                    continue
            for i in range(len(els) - 1):
                new = self.pair(els[i], els[i + 1])
                if new is not None:
                    k, sc, repl = new
                    coeff *= k
                    scalars.extend(sc)
                    els = els[:i] + repl + els[i + 2:]
                    changed = True
                    break
        if not els:
            mono = ((E.eye(shape[0]), Fraction(1)),) if shape != SCALAR else ()
            return coeff * self.mono_mul(tuple(scalars), mono)[0], \
                self.mono_mul(tuple(scalars), mono)[1]
        if len(els) == 1:
            k, m = self.mono_mul(tuple(scalars), els[0])
            return coeff * k, m
        if shape == SCALAR:
            els = self.orient(els)
        base = Expr("matmul", tuple(render_mono(m) for m in els), shape)
        k, m = self.mono_mul(tuple(scalars), ((base, Fraction(1)),))
        return coeff * k, m

    def orient(self, els):
        """A 1×1 product equals its transpose: u'@v as ones'@(u*v), else the smaller of
        the two orientations."""
        if len(els) == 2:
            r, c = els
            ones_r = len(r) == 1 and r[0][0].op == "T" and r[0][0].args[0].op == "ones"
            ones_c = len(c) == 1 and c[0][0].op == "ones"
            if ones_c and not ones_r:
                return [self.t_mono(c), self.t_mono(r)]
            if not ones_r and not ones_c:
                n = _mono_shape(c)[0]
                k, m = self.mono_mul(self.t_mono(r), c)
                if k == 1:
                    return [((Expr("T", (E.ones(n),), ("1", n)), Fraction(1)),), m]
            return els
        flipped = [self.t_mono(m) for m in reversed(els)]
        a = _key(Expr("matmul", tuple(render_mono(m) for m in els), SCALAR))
        b = _key(Expr("matmul", tuple(render_mono(m) for m in flipped), SCALAR))
        return els if a <= b else flipped

    def t_mono(self, mono) -> tuple:
        shape = _mono_shape(mono)
        p = self.transpose(Poly({mono: Fraction(1)}, shape))
        if len(p.terms) != 1 or next(iter(p.terms.values())) != 1:
            raise GiveUp
        return next(iter(p.terms))

    def pair(self, a, b):
        """A rewrite of two adjacent chain elements: (coefficient, scalars, replacement)."""
        one = lambda m: m[0][0] if len(m) == 1 and m[0][1] == 1 else None  # noqa: E731
        fa, fb = one(a), one(b)
        # ones(n)'@ones(n) = n
        if fa is not None and fb is not None and fa.op == "T" and fa.args[0].op == "ones" \
                and fb.op == "ones":
            n = fb.shape[0]
            if n.isdigit():
                return Fraction(int(n)), [], []
            return Fraction(1), [(E.dim(n), Fraction(1))], []
        # inv(M)@M = M@inv(M) = I
        if fa is not None and fa.op == "inv" and render_mono(b) == fa.args[0] or \
                fb is not None and fb.op == "inv" and render_mono(a) == fb.args[0]:
            return Fraction(1), [], []
        # diag(u)@diag(v) = diag(u*v); diag(u)@v = u*v; v'@diag(u) = v'*u'
        da = fa is not None and fa.op == "diag" and fa.is_matrix
        db = fb is not None and fb.op == "diag" and fb.is_matrix
        if da and db:
            k, m = self.mono_mul(self.element(fa.args[0]), self.element(fb.args[0]))
            return k, [], [((Expr("diag", (render_mono(m),), fa.shape), Fraction(1)),)]
        if da and _mono_shape(b)[1] == "1":
            k, m = self.mono_mul(self.element(fa.args[0]), b)
            return k, [], [m]
        if db and _mono_shape(a)[0] == "1":
            k, m = self.mono_mul(a, self.t_mono(self.element(fb.args[0])))
            return k, [], [m]
        return None

    # functions
    def func(self, e):
        """An element-wise or opaque function of canonical arguments."""
        return self.atom(Expr(e.op, tuple(self.expr(a) for a in e.args), e.shape))

    def opaque(self, e):
        return self.func(e)

    def sqrt(self, e):
        return self.power(self.poly(e.args[0]), Fraction(1, 2), e.shape)

    def minmax(self, e):
        args = sorted((self.expr(a) for a in e.args), key=_key)
        return self.atom(Expr(e.op, tuple(args), e.shape))

    def compare(self, e):
        a, b = e.args
        if e.op in ("lt", "le"):
            a, b = b, a
        op = {"lt": "gt", "le": "ge"}.get(e.op, e.op)
        diff = self.add([self.poly(a), self.mul([self.const(-1), self.poly(b)], b.shape)],
                        e.shape)
        return self.atom(Expr(op, (render_poly(diff), E.ZERO), e.shape))

    def sum_(self, e):
        a = e.args[0]
        return self.poly(_sum_expr(a))

    def mean(self, e):
        a = e.args[0]
        n = _dim_expr(dim_mul(*a.shape))
        return self.poly(Expr("mul", (_sum_expr(a), Expr("pow", (n, E.num(-1)), SCALAR)),
                              SCALAR))

    def dot(self, e):
        a, b = e.args
        return self.poly(Expr("matmul", (Expr("T", (a,), (a.shape[1], a.shape[0])), b),
                              SCALAR))

    def norm(self, e):
        a = e.args[0]
        if a.shape == SCALAR:
            return self.poly(Expr("abs", (a,), SCALAR))
        at = Expr("T", (a,), (a.shape[1], a.shape[0]))
        if a.shape[1] == "1":
            sq = Expr("matmul", (at, a), SCALAR)
        elif a.shape[0] == "1":
            sq = Expr("matmul", (a, at), SCALAR)
        else:
            sq = Expr("tr", (Expr("matmul", (at, a), (a.shape[1], a.shape[1])),), SCALAR)
        return self.power(self.poly(sq), Fraction(1, 2), SCALAR)

    def tr(self, e):
        p = self.poly(e.args[0])
        out = []
        for mono, c in p.terms.items():
            sc = tuple(f for f in mono if f[0].shape == SCALAR)
            arr = tuple(f for f in mono if f[0].shape != SCALAR)
            out.append(self.mul([self.const(c), Poly({sc: Fraction(1)}, SCALAR),
                                 self.trace_of(arr)], SCALAR))
        return self.add(out, SCALAR)

    def trace_of(self, arr) -> Poly:
        if not arr:                                        # tr of a 1×1
            return self.const(1)
        if len(arr) == 1 and arr[0][1] == 1:
            b = arr[0][0]
            if b.op == "eye":
                return self.poly(_dim_expr(b.shape[0]))
            if b.op == "matmul":
                els = [self.element(a) for a in b.args]
                return self.trace_chain(els)
        t = self.t_mono(arr)
        a, bt = render_mono(arr), render_mono(t)
        best = a if _key(a) <= _key(bt) else bt
        return self.atom(Expr("tr", (best,), SCALAR))

    def trace_chain(self, els) -> Poly:
        """tr(ABC) = tr(BCA) = tr((ABC)'): the smallest rotation; a 1×1 rotation is the
        trace itself."""
        flipped = [self.t_mono(m) for m in reversed(els)]
        candidates = []
        for seq in (els, flipped):
            for i in range(len(seq)):
                rot = seq[i:] + seq[:i]
                rows, cols = _mono_shape(rot[0])[0], _mono_shape(rot[-1])[1]
                k, m = self.chain_term(list(rot), (rows, cols))
                if (rows, cols) == SCALAR:
                    candidates.append((0, Poly({m: k}, SCALAR) if k else Poly({}, SCALAR)))
                    continue
                sc = tuple(f for f in m if f[0].shape == SCALAR)
                arr = tuple(f for f in m if f[0].shape != SCALAR)
                if len(arr) == 1 and arr[0] == (E.eye(rows), 1):
                    core = self.poly(_dim_expr(rows))
                else:
                    core = self.atom(Expr("tr", (render_mono(arr),), SCALAR))
                candidates.append((1, self.mul([self.const(k), Poly({sc: Fraction(1)}, SCALAR),
                                                core], SCALAR)))
        candidates.sort(key=lambda kp: (kp[0], _key(render_poly(kp[1]))))
        return candidates[0][1]

    def det(self, e):
        p = self.poly(e.args[0])
        a, b = render_poly(p), render_poly(self.transpose(p))
        return self.atom(Expr(e.op, (a if _key(a) <= _key(b) else b,), SCALAR))

    def inv(self, e):
        a = e.args[0]
        if a.shape == SCALAR:
            return self.power(self.poly(a), Fraction(-1), SCALAR)
        p = self.poly(a)
        if len(p.terms) == 1:
            (mono, c), = p.terms.items()
            if c == 1 and len(mono) == 1 and mono[0][1] == 1 and mono[0][0].op == "inv":
                return self.poly(mono[0][0].args[0])
        return self.atom(Expr("inv", (render_poly(p),), e.shape))

    def diag(self, e):
        a = e.args[0]
        p = self.poly(a)
        if not e.is_matrix:                                # the diagonal of a matrix
            a1, b1 = render_poly(p), render_poly(self.transpose(p))
            return self.atom(Expr("diag", (a1 if _key(a1) <= _key(b1) else b1,), e.shape))
        out = []
        for mono, c in p.terms.items():                    # diag is linear
            sc = tuple(f for f in mono if f[0].shape == SCALAR)
            arr = tuple(f for f in mono if f[0].shape != SCALAR)
            if len(arr) == 1 and arr[0][0].op == "ones":
                d = self.atom(E.eye(e.shape[0]))
            else:
                d = self.atom(Expr("diag", (render_mono(arr),), e.shape))
            out.append(self.mul([self.const(c), Poly({sc: Fraction(1)}, SCALAR), d], e.shape))
        return self.add(out, e.shape)

    def vec(self, e):
        a = e.args[0]
        if a.shape[1] == "1":
            return self.poly(a)
        if a.shape[0] == "1":
            return self.transpose(self.poly(a))
        return self.func(e)

    def kron(self, e):
        a, b = (self.poly(x) for x in e.args)
        out = []
        for (m1, c1), (m2, c2) in _cartesian(a.terms.items(), b.terms.items()):
            s1 = tuple(f for f in m1 if f[0].shape == SCALAR)
            s2 = tuple(f for f in m2 if f[0].shape == SCALAR)
            r1 = tuple(f for f in m1 if f[0].shape != SCALAR)
            r2 = tuple(f for f in m2 if f[0].shape != SCALAR)
            if not r1 or not r2:
                core = Poly({r1 or r2: Fraction(1)}, e.shape)
            else:
                core = self.atom(Expr("kron", (render_mono(r1), render_mono(r2)), e.shape))
            out.append(self.mul([self.const(c1 * c2), Poly({s1 + s2: Fraction(1)}, SCALAR),
                                 core], e.shape))
        return self.add(out, e.shape)


def _sum_expr(a: Expr) -> Expr:
    if a.shape == SCALAR:
        return a
    r, c = a.shape
    out = a
    if r != "1":
        out = Expr("matmul", (Expr("T", (E.ones(r),), ("1", r)), out), ("1", c))
    if c != "1":
        out = Expr("matmul", (out, E.ones(c)), SCALAR)
    return out


ELEMENTWISE = ("sin", "cos", "tan", "exp", "log", "tanh", "sigmoid", "relu", "abs", "sign",
               "max", "min", "gt", "ge", "lt", "le", "sqrt")

_CANON = {
    **{op: _Canon.leaf for op in ("num", "var", "dim", "const", "ones", "eye", "zeros")},
    "vector": _Canon.literal, "matrix": _Canon.literal,
    "add": _Canon.add_, "mul": _Canon.mul_, "pow": _Canon.pow_, "T": _Canon.T_,
    "matmul": _Canon.matmul_,
    **{op: _Canon.func for op in ("sin", "cos", "tan", "exp", "log", "tanh", "sigmoid",
                                  "relu", "abs", "sign", "logsumexp", "softmax")},
    "sqrt": _Canon.sqrt, "max": _Canon.minmax, "min": _Canon.minmax,
    **{op: _Canon.compare for op in ("gt", "ge", "lt", "le")},
    "sum": _Canon.sum_, "mean": _Canon.mean, "dot": _Canon.dot, "norm": _Canon.norm,
    "tr": _Canon.tr, "det": _Canon.det, "logdet": _Canon.det, "inv": _Canon.inv,
    "diag": _Canon.diag, "vec": _Canon.vec, "kron": _Canon.kron,
}
