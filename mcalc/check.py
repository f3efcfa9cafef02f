"""`mcalc check`: is a hand-derived CLAIM the derivative REQUEST asks for?

The claim is parsed by the request language's grammar and typed together with the request
(mcalc.pipeline.typed), so both share declarations, inferred types and dimension names. Then,
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

The canonical form is mcalc.canonical's.

Public API: check(request, claim, types=(), layout, method, exact, seed) -> CheckResult,
check_batch(lines, ...) -> [CheckResult], worst_status(results), derivative_shape,
canonical / canonical_poly (the canonical form). numpy is imported when a check runs
(sympy only for --exact), never when mcalc or this module is imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from mcalc import expr as E
from mcalc.errors import McalcError, NoRule
from mcalc.expr import Expr
from mcalc.canonical import GiveUp, Poly, canonical_poly, poly_sub, render_mono, render_poly
from mcalc.types import SCALAR, dim_mul, parse_dim_size

LAYOUTS = ("numerator", "denominator")
SIZE_DRAWS = 3                # random assignments of the dimension sizes
POINTS_PER_SIZE = 4           # random points at each assignment
KINKED_POINTS_PER_SIZE = 16   # ... when an indicator, relu, abs, sign, max or min is
                              # involved: piecewise functions need many points to meet
                              # every piece ((b > 0) vs (b + w'x > 0) agree at most)
SIZES = (2, 3, 4, 5)
KINK_GAP = 1e-3               # redraw when a kink's argument is closer than this
MAX_SAMPLED_ELEMENTS = 1_000_000   # elements of one variable at a random point


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
    from mcalc.pipeline import METHODS, typed
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
        from mcalc.pipeline import derive_typed
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
        roots = (self.body, self.cl) + ((self.truth,) if self.truth is not None else ())
        return sorted(names | E.dimension_names(*roots))

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
            if r * c > MAX_SAMPLED_ELEMENTS:
                raise McalcError(f"{name} has {r * c} elements, too many to evaluate (the "
                                 f"limit is {MAX_SAMPLED_ELEMENTS}); declare the dimension by "
                                 f"name, vector(n), to sample it")
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
