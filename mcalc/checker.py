"""`mcalc check`: is a hand-derived CLAIM the derivative REQUEST asks for?

The request is parsed and typed alone (its typing pinned, so the claim cannot change it),
then with the claim, so both share declarations, inferred types and dimension names. A
symmetric S's transpose is S in both (CONTRACT §1). Then, in order (CONTRACT §3 'check',
§ JSON 'decided_by'):

1. shape — the claim must have the derivative's shape in the chosen layout, worked out
   from the contract's layout rules alone; a bare I takes the derivative's size; the
   transposed shape is reported as the other layout's form.            decided_by: shape
2. mcalc's derivative. Without one, check does not decide (exit 2; --exact can): finite
   differences are never the truth on their own. The derivative is compared with a
   directional central difference of the expression (a second difference for the second
   derivative of a scalar) at a few points, so an engine bug cannot make a wrong claim
   hold: a disagreement is exit 2 too.
3. symbolic — canonical(derivative − claim) (mcalc.canonical). 0 proves the claim; a
   nonzero constant or monomial disproves it (shown at a point).    decided_by: symbolic
4. numeric — every named dimension takes every size 1..9 (smallest first), values at
   scales 1, 1e-3 and 1e3 with random signs (positive where signed values leave the
   domain), and for every kink (relu, abs, sign, max, min, an indicator) the points just
   either side of it, found by the secant method along a random line (then bisection of a
   sign change, for a kink far out: relu(x^3 - 1e9); or of a point and the nearest peak,
   for a narrow window: cos(x) > 0.9999999999). A point where the
   derivative is defined is screened in float64 (a difference relative to the values, or
   a nonzero canonical difference evaluated term by term) and confirmed with mpmath
   intervals, which surely hold the exact values: disjoint means different, a claim
   undefined where the derivative is defined differs too.   decided_by: counterexample
   No difference anywhere — a few points also compared in mpmath intervals, for a
   difference below the float screen (cos(x + 1e-13)) — holds.       decided_by: sampling
   The first confirmed point (at the smallest sizes) is the counterexample; a few more
   points feed the diagnosis: transposed, a constant factor, a wrong sign, a missing or
   extra term, a missing A' term, a reversed indicator, a misplaced transpose.
   Concrete sizes too costly to evaluate (vector(100000)) without a proof: exit 2, "declare
   the dimension by name" — never a guess at a smaller size.

`check --exact` (or --method definition) decides by the definition method instead
(mcalc.methods.definition: SymPy, component by component at sizes 2 and 3); the numeric
stage then explains a failure, and looks for a difference the exact one cannot see (at
other sizes, where the claim is undefined)           decided_by: exact (counterexample)

Public API: check(request, claim, types=(), layout, method, exact, seed, cache) ->
CheckResult, check_batch(lines, ...) -> [CheckResult] (one cache for the batch: each
request is parsed, derived and validated once), worst_status(results), derivative_shape.
numpy and mpmath are imported when a check runs (sympy only for --exact), never when mcalc
or this module is imported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from mcalc import expr as E
from mcalc.errors import McalcError, NoRule, NumberTooLarge
from mcalc.expr import Expr
from mcalc.canonical import (Canonicalizer, GiveUp, Poly, _ones_like, canonical_poly,
                             poly_sub, render_mono, render_poly)
from mcalc.types import SCALAR, dim_mul, parse_dim_size

LAYOUTS = ("numerator", "denominator")
DECIDED_BY = ("shape", "symbolic", "counterexample", "exact", "sampling")
SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9)   # every free dimension takes every one of these
SCALES = (1.0, 1e-3, 1e3)             # value scales (signs random)
SECANT_STEPS = 12                     # root finding on a line, for a kink's argument ...
FAR_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 308)   # ... then a sign change at t = ±10^k
KINK_STEPS = (1e-11, 1e-6)            # the points beside a kink: t* ± these (relative)
FLOAT_RTOL = 1e-12                    # float64 screen: larger relative differences ...
DIFF_RTOL = 1e-9                      # ... or canonical differences go to mpmath
MP_DPS = (30, 60, 120)                # digits of the high-precision confirmation ...
MP_DEEP_DPS = (400, 1200)             # ... and beyond, for a few points per check
MP_DEEP_POINTS = 4                    # (tanh saturated beside a kink: 1 - tanh^2 ~ e^-600)
MP_SCREEN_POINTS = 3                  # points looked at in mpmath before "holds" (sampling)
MAX_COST = 200_000                    # entries (and products) evaluated: beyond, exit 2
UNDERFLOW = ("exp", "tanh", "sigmoid", "softmax", "logsumexp", "pow")
UNDERFLOW_EXP = frozenset(UNDERFLOW[:-1])  # (a power underflows only at huge values)
MAX_DIFF_TERMS = 40                   # canonical differences evaluated term by term
SCAN_LIMIT = 10 ** 6                  # a kink of the dimensions alone ((n >= 10)) is
SCAN_LINEAR = 16                      # looked for at sizes 1..16, then 25% apart up to
SCAN_GROWTH = 1.25                    # SCAN_LIMIT, each change pinned down by bisection
SCAN_CHANGES = 6                      # (the first few: cos(pi*n) > 0 changes at every n)


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
        """Plain data; non-finite numbers as the strings "nan", "inf", "-inf" (JSON)."""
        def tolist(v):
            v = v.tolist() if hasattr(v, "tolist") else v
            if isinstance(v, list):
                return [tolist(x) for x in v]
            return v if v == v and v not in (float("inf"), float("-inf")) else \
                ("nan" if v != v else ("inf" if v > 0 else "-inf"))
        return {"sizes": dict(self.sizes),
                "values": {k: tolist(v) for k, v in self.values.items()},
                "derivative": tolist(self.expected), "claim": tolist(self.claimed)}


@dataclass(frozen=True)
class CheckResult:
    request: str
    claim: str
    holds: bool | None                # None: the line was bad input (see `error`)
    decided_by: str = ""              # shape | symbolic | counterexample | exact | sampling
    reason: str = ""                  # one line: why it was decided so
    cause: str | None = None          # the likely cause when it does not hold
    layout: str = "numerator"
    derivative: str | None = None     # mcalc's own result, in the request language
    types: dict = field(default_factory=dict)
    counterexample: Counterexample | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None          # the one-line message of bad input
    sampled: str = ""                 # sampling: the points, sizes and scales compared

    @property
    def method(self) -> str:
        """The former name of decided_by."""
        return self.decided_by

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
        out.update({"decided_by": self.decided_by, "layout": self.layout,
                    "types": dict(self.types), "derivative": self.derivative})
        if self.cause:
            out["cause"] = self.cause
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.as_dict()
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def verdict(self) -> str:
        """'holds (proved)', 'holds (no difference found at N points, …)', 'does not
        hold'."""
        if not self.holds:
            return "does not hold"
        if self.decided_by == "sampling":
            return f"holds ({self.sampled})"
        return "holds (proved)" if self.decided_by == "symbolic" else \
            f"holds ({self.decided_by})"

    def line(self) -> str:
        """The one-line form (batch output)."""
        both = f"{self.request} ;; {self.claim}"
        if self.error is not None:
            return f"error: {both}  — {self.error}"
        if self.holds:
            return f"{self.verdict()}: {both}"
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
        lines.append(f"  decided by: {self.decided_by}")
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
    # a counterexample beyond the usual sizes (n = 101, where (n > 100) changes) is shown
    # by its corners; JSON has every value
    return np.array2string(np.asarray(v), precision=4, separator=", ", suppress_small=True,
                           max_line_width=10_000, threshold=100, edgeitems=3
                           ).replace("\n", "")


# =====================================================================================
# Entry points
# =====================================================================================

def check(request: str, claim: str, types=(), layout: str = "numerator",
          method: str | None = None, exact: bool = False, seed: int = 0,
          cache: dict | None = None) -> CheckResult:
    """Decide whether `claim` is the derivative `request` asks for. Bad input raises
    McalcError (exit status 2); otherwise the result says holds or not, and why. `cache`
    (check_batch's) keeps parsed requests and validated derivatives between calls."""
    cache = {} if cache is None else cache
    from mcalc.pipeline import METHODS
    if layout not in LAYOUTS:
        raise McalcError(f"unknown layout '{layout}' (numerator or denominator)")
    if method is not None and method not in METHODS:
        raise McalcError(f"unknown method '{method}' (chain, differential or definition)")
    if not isinstance(seed, int) or seed < 0:
        raise McalcError(f"the seed is a non-negative integer, not {seed!r}")
    if not claim.strip():
        raise McalcError("the claim is empty")
    exact = exact or method == "definition"
    req, body, cl, typing = _typed_pair(request, claim, tuple(types), cache)
    if not req.wrt:
        raise McalcError("check needs a derivative request such as d/dx f", 1)
    extra = sorted(E.free_vars(cl) - E.free_vars(body))
    if extra:
        raise McalcError(f"the claim uses {', '.join(extra)}, which the request does not "
                         f"have")
    body, cl = _symmetric_plain(body, typing), _symmetric_plain(cl, typing)
    from mcalc.evaluate import EvaluationError
    try:
        return _Checker(request, claim, req, body, cl, typing, layout, method, exact, seed,
                        cache).run()
    except EvaluationError as e:
        raise McalcError(f"cannot decide: {e}") from None
    except (OverflowError, ValueError) as e:       # a literal such as ((2^64)^64)^64
        if not _huge_number(e):
            raise
        raise McalcError("cannot decide: a number is too large to work with "
                         "(more than floats hold, or thousands of digits)") from None


CACHE_SIZE = 512          # entries a batch remembers: parsed requests, their derivatives


def _remember(cache: dict, key, value):
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _typed_pair(request: str, claim: str, types: tuple, cache: dict):
    """(request, typed body, typed claim, typing), through mcalc.pipeline.typed. The
    request's own typing (found once per batch) stands: when typing the claim with it
    would change it (in `(w'@x + b < 0)*x` the claim alone would make b a vector), it is
    pinned by declarations and the pair typed again."""
    from mcalc.pipeline import typed
    alone = cache.get(("typed", request, types))
    if alone is None:
        alone = _remember(cache, ("typed", request, types),
                          typed(request, types)[3].as_strings())
    try:
        try:
            got = typed(request, types, claim)
            if all(got[3].as_strings().get(n) == t for n, t in alone.items()):
                return got
        except McalcError:
            pass                               # perhaps only without the pinned typing
        decl = "; ".join(f"{n}: {t}" for n, t in alone.items())
        return typed(request, types + ((decl,) if decl else ()), claim)
    except McalcError as e:                   # the request alone was fine: it is the claim
        raise McalcError(f"in the claim: {e.message}", e.column) from None


def check_batch(lines, types=(), layout: str = "numerator", method: str | None = None,
                exact: bool = False, seed: int = 0) -> list[CheckResult]:
    """One result per line `REQUEST ;; CLAIM`; blank lines and # comments are skipped. A
    bad line gives a result with `error` set (status 2) and the batch goes on."""
    out: list = []
    cache: dict = {}
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        request, sep, claim = line.partition(";;")
        request, claim = request.strip(), claim.strip()
        try:
            if not sep:
                raise McalcError("expected REQUEST ;; CLAIM")
            out.append(check(request, claim, types, layout, method, exact, seed, cache))
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
    def __init__(self, request, claim, req, body, cl, typing, layout, method, exact, seed,
                 cache):
        import numpy as np
        self.np = np
        self.request, self.claim = request, claim
        self.req, self.body, self.cl, self.typing = req, body, cl, typing
        self.layout, self.method, self.exact = layout, method, exact
        self.rng = np.random.default_rng(seed)
        self.seed, self.types_key = seed, tuple(sorted(typing.as_strings().items()))
        self.cache = cache
        self.notes: list[str] = []
        self.truth: Expr | None = None          # mcalc's derivative
        self.points: list[dict] = []            # the points compared (2-D values)
        self.kink_points = 0
        self.diff_terms: list[Expr] = []        # canonical(derivative − claim), by term

    # -- the decision, in order ------------------------------------------------------
    def run(self) -> CheckResult:
        self.shape = expected_shape(self.req, self.body, self.typing, self.layout)
        self.cl = _fit_free_dims(self.cl, self.shape, self.typing)
        claim_shape = self.cl.shape
        if _is_zero_literal(self.cl) and claim_shape != self.shape:
            self.cl = E.zeros(self.shape)                  # "0" stands for a zero array
            claim_shape = self.shape
        if claim_shape != self.shape:
            return self._result(False, "shape", *self._shape_reason(claim_shape))
        if self.exact:
            return self._exact()
        key = ("derived", self.request, self.types_key, self.layout, self.method)
        if key in self.cache:
            self.truth = self.cache[key]
        else:
            self._derive()
        large = self._too_large()
        if large:
            self.notes.append(f"mcalc's derivative is not compared with finite differences "
                              f"here (the expressions, with {large}, are too large)")
        elif key not in self.cache:
            self._validate_engine()
            _remember(self.cache, key, self.truth)
        diff = self._difference()
        identities = self._through_identities(diff)
        if diff is not None and not diff.terms or identities is not None:
            bad = None if large else self._outside_domain()
            if bad is None:
                from mcalc.printing.text import to_text
                said = f", in textbook form ({', '.join(identities)})," if identities else ""
                return self._result(True, "symbolic", f"symbolic: the claim{said} minus "
                                    f"the derivative {to_text(self.truth)} reduces to 0")
            cause, ce = self._diagnose_failure(bad)
            return self._result(False, "counterexample", f"counterexample: {cause}", cause,
                                ce)
        nonzero = diff is not None and self._provably_nonzero(diff)
        if large:
            if nonzero:
                return self._result(False, "symbolic", self._nonzero_reason(diff))
            raise McalcError(f"cannot decide: no proof, and the expressions (with {large}) "
                             f"are too large to evaluate — declare the dimension by name "
                             f"(vector(n), matrix(m, n)) to sample it at sizes 1..9")
        try:
            bad = self._search()
        except McalcError:
            if not nonzero:
                raise
            return self._result(False, "symbolic", self._nonzero_reason(diff))
        if bad is None and nonzero:
            bad = next((p for p in self.points if self._confirm(p)), None)
        if bad is None and not nonzero:
            bad = self._below_the_screen()
        if bad is not None:
            cause, ce = self._diagnose_failure(bad)
            if nonzero:
                return self._result(False, "symbolic", f"{self._nonzero_reason(diff)} — "
                                                       f"{cause}", cause, ce)
            at = ", ".join(f"{k} = {v}" for k, v in ce.sizes.items())
            return self._result(False, "counterexample",
                                f"counterexample: the claim differs from the derivative"
                                f"{f' at {at}' if at else ''} (confirmed with mpmath "
                                f"intervals) — {cause}", cause, ce)
        if nonzero:
            return self._result(False, "symbolic", self._nonzero_reason(diff))
        if getattr(self, "_beyond", None):
            at = "; ".join(f"{d} = {_ranges(t)}" for d, t in sorted(self._beyond.items()))
            raise McalcError(f"cannot decide: no proof, and the expressions change at "
                             f"sizes too large to evaluate ({at})")
        return self._result(True, "sampling", f"sampling: {self._sampled_text()}")

    def _result(self, holds, decided_by, reason, cause=None, counterexample=None):
        from mcalc.printing.text import to_text
        return CheckResult(
            request=self.request, claim=self.claim, holds=holds, decided_by=decided_by,
            reason=reason, cause=cause, layout=self.layout,
            derivative=to_text(self.truth) if self.truth is not None else None,
            types=self.typing.as_strings(), counterexample=counterexample,
            notes=tuple(dict.fromkeys(self.notes)), sampled=self._sampled_text()
            if decided_by == "sampling" else "")

    def _derive(self):
        """mcalc's derivative; without it check cannot decide (exit 2), never by finite
        differences alone."""
        from mcalc.pipeline import derive_typed
        method = self.method if self.method in ("chain", "differential") else None
        why, result = None, None
        try:
            result = derive_typed(self.req, self.body, self.typing, self.layout, method,
                                  steps=False).result
        except NoRule as e:
            why = f"mcalc cannot derive this request ({e.message})"
        except McalcError as e:
            why = f"mcalc's own derivation failed ({e.message}; please report this request)"
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as e:
            why = (f"mcalc's own derivation failed (internal error: {type(e).__name__}; "
                   f"please report this request)")
        else:
            if result.is_scalar and self.shape != SCALAR:     # a scalar stands for an array
                result = Expr("mul", (result, _ones_like(self.shape)), self.shape)
            if result.shape != self.shape:
                from mcalc.printing.text import to_text
                why = (f"mcalc's own derivative {to_text(result)} has the shape "
                       f"{_by(result.shape)}, not {_by(self.shape)} (please report this "
                       f"request)")
        if why is not None:
            raise McalcError(f"cannot decide: {why}; --exact decides by the definition "
                             f"method")
        self.truth = _symmetric_plain(result, self.typing)

    def _difference(self):
        """canonical(derivative − claim), or None when the forms are too large."""
        try:
            diff = self._canonical_difference()
        except GiveUp:
            self.notes.append("the canonical forms were too large to compare")
            return None
        if len(diff.terms) <= MAX_DIFF_TERMS:
            self.diff_terms = [render_mono(m, c) for m, c in diff.terms.items()]
        return diff

    def _through_identities(self, diff) -> list[str] | None:
        """The rewrites that bring the claim to the derivative's canonical form, when its
        own does not reach it: the simplifier's textbook form of the claim, through the
        one table of identities (mcalc.identities: exp(u)/(1 + exp(u)) is sigmoid(u),
        abs(u)*sign(u) is u, ...) that gave the derivative its form. None when that does
        not make the difference 0 either (or there was no difference to remove)."""
        if diff is None or not diff.terms:
            return None
        from mcalc.simplify import simplify
        fired: list[str] = []
        try:
            claim = simplify(self.cl, fired)
            canon = self.polys[0]
            rest = poly_sub(self.polys[1], canon.poly(claim))
        except (GiveUp, McalcError):
            return None
        return fired if not rest.terms and fired else None

    def _canonical_difference(self):
        """canonical(derivative) − canonical(claim); raises GiveUp when too large."""
        canon = self.cache.get(("canon", self.truth))
        if canon is None:                      # one per derivative: claims share its work
            canon = _remember(self.cache, ("canon", self.truth), Canonicalizer())
        self.polys = canon, canon.poly(self.truth), canon.poly(self.cl)
        return poly_sub(*self.polys[1:])

    def _provably_nonzero(self, diff) -> bool:
        """A difference that cannot vanish identically: one term of variables, constants,
        dimensions and literals (a monomial) whose scalars of no variable (exp(-1000),
        (n - 10 >= 0)) mpmath intervals show nonzero together at some sizes: 1..9, or
        either side of a kink of the dimensions."""
        ok, constants = _plain_factors(diff)
        if not ok or not constants:
            return ok
        from mcalc.evaluate import evaluate_mp
        names = self._dims()
        plans = [{n: k for n in names} for k in SIZES] + [
            dict({n: 1 for n in names}, **{d: t}) for d, t in self._threshold_sizes()]
        for sizes in plans:
            memo: dict = {}
            try:
                ends = [_iv_ends(evaluate_mp(b, {}, sizes, MP_DPS[0], memo, interval=True)
                                 [0, 0]) for b in constants]
            except (ArithmeticError, ValueError, TypeError):
                continue
            if all(lo > 0 or hi < 0 for lo, hi in ends):
                return True
        return False

    def _nonzero_reason(self, diff) -> str:
        text = self._difference_text(diff, "a nonzero constant or monomial")
        return f"symbolic: the derivative minus the claim is {text}, which is not 0"

    def _difference_text(self, diff=None, fallback="the canonical difference") -> str:
        """The derivative minus the claim (canonical), as text."""
        from mcalc.printing.text import to_text
        try:
            return to_text(render_poly(diff if diff is not None else
                                       poly_sub(*self.polys[1:])))
        except (OverflowError, ValueError) as e:
            if not _huge_number(e):
                raise
            return fallback

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
        from mcalc.methods.definition import exact_equal
        verdict = exact_equal(self.req, self.body, self.cl, self.typing, self.layout)
        if verdict.equal:
            bad = self._beyond_exact()
            if bad is None:
                return self._result(True, "exact", f"exact: {verdict.detail}")
            cause, ce = self._diagnose_failure(bad)
            at = ", ".join(f"{k} = {v}" for k, v in ce.sizes.items())
            return self._result(False, "counterexample",
                                f"counterexample: {verdict.detail}, but the claim differs "
                                f"from the derivative{f' at {at}' if at else ''} (confirmed "
                                f"with mpmath intervals) — {cause}", cause, ce)
        try:
            self._derive()
            if self._too_large():
                raise McalcError("too large")
            bad = self._search()
        except McalcError:                        # no numeric explanation: the verdict stands
            return self._result(False, "exact", f"exact: {verdict.detail}")
        if bad is None:
            self.notes.append("the points of the numeric comparison did not show the "
                              "difference")
            return self._result(False, "exact", f"exact: {verdict.detail}")
        cause, ce = self._diagnose_failure(bad)
        return self._result(False, "exact", f"exact: {verdict.detail} — {cause}", cause, ce)

    def _beyond_exact(self):
        """A point the exact comparison cannot see: it is at sizes 2 and 3 only (a claim
        with (n >= 6)*x' is equal there), and SymPy's simplification drops where the claim
        is undefined (0*log(x) is 0). With mcalc's own derivative, validated as usual,
        the numeric search looks there; None when it finds no confirmed difference (or
        there is no derivative to compare with)."""
        try:
            self._derive()
            if self._too_large():
                return None
            self._validate_engine()
            return self._outside_domain() or self._search()
        except McalcError:
            return None

    # -- sizes, values, points -----------------------------------------------------------
    def _roots(self):
        return (self.body, self.cl) + ((self.truth,) if self.truth is not None else ())

    def _dims(self):
        roots = self._roots()
        if getattr(self, "_dims_of", None) != roots:
            names = set(d for d in self.typing.dims if not d.isdigit())
            self._dims_of, self._dim_names = roots, sorted(names |
                                                           E.dimension_names(*roots))
        return self._dim_names

    def _size_plan(self):
        """Every free dimension takes every size 1..9 (names offset from each other, so
        up to three get distinct sizes), smallest first — up to the largest size whose
        cost is within bounds; then the sizes either side of a kink of the dimensions,
        all dimensions at each size together, and all beyond their kinks together."""
        names = self._dims()
        sizes = SIZES[:getattr(self, "top", len(SIZES))]
        if not names:
            return [{}] * len(SIZES)
        plan = [{n: sizes[(k + 3 * i) % len(sizes)] for i, n in enumerate(names)}
                for k in range(len(sizes))]
        plan = sorted(plan, key=lambda s: (max(s.values()), sum(s.values())))
        extra = [at for at in self._threshold_plan(plan[0]) if at not in plan]
        # then the sizes the offsets never give: every dimension at once at each size (a
        # claim off only where m == n, or where k, n and p are all >= 5), and every
        # dimension on the far side of its changes together ((k >= 50)*(n >= 50))
        together = [{n: s for n in names} for s in sizes[1:]] if len(names) > 1 else []
        far = {d: t for d, t in sorted(self._threshold_sizes(), key=lambda dt: dt[1])}
        if len(far) > 1:
            at = dict(plan[0], **far)
            if self._cost(at)[0] <= MAX_COST:
                together.append(at)
        seen = plan + extra
        return seen + [at for i, at in enumerate(together)
                       if at not in seen and at not in together[:i]]

    def _threshold_plan(self, base: dict) -> list[dict]:
        """Sizes on both sides of every change of a kink of the dimensions alone, the
        other dimensions as in `base`, within the cost bound: a claim that differs only
        where n >= 10 differs there (sizes 1..9 alone would never see it)."""
        sizes = self._threshold_sizes()
        if getattr(self, "_planned", None) is not sizes:     # (once the difference is known,
            self._planned, self._thresholds, self._beyond = sizes, [], {}   # its kinks too)
            for d, t in sizes:
                at = dict(base, **{d: t})
                if self._cost(at)[0] > MAX_COST:
                    self._beyond.setdefault(d, set()).add(t)
                elif at not in self._thresholds:
                    self._thresholds.append(at)
        return self._thresholds

    def _threshold_sizes(self) -> list[tuple[str, int]]:
        """(dimension, size) just before and at each size where a kink of the dimensions
        alone changes side ((n >= 10): 9 and 10), the others at size 1: the sizes 1..16,
        then sizes 25% apart up to SCAN_LIMIT, each change found exactly by bisection."""
        from mcalc.evaluate import EvaluationError, evaluate_order, evaluation_order
        # the canonical difference's kinks too: (n - 5000 > 0) costs nothing to evaluate
        # where sum(eye(n)) > 5000 would cost n² entries
        roots = self._roots() + tuple(self.diff_terms)
        if getattr(self, "_scanned", None) == roots:
            return self._threshold_list
        np = self.np
        out: list[tuple[str, int]] = []
        for a, b in self._all_kinks(roots):
            if E.free_vars(a) or (b is not None and E.free_vars(b)) or a.shape != SCALAR:
                continue                                # _kink_points' work, or an array
            order = evaluation_order((a,) if b is None else (a, b))
            dims = E.dimension_names(a) | (E.dimension_names(b) if b is not None else set())
            for d in sorted(dims):
                def side(n, order=order, a=a, b=b, d=d, ones={o: 1 for o in dims}):
                    try:
                        with np.errstate(all="ignore"):
                            memo = evaluate_order(order, {}, dict(ones, **{d: n}))
                            v = (memo[a] if b is None else memo[a] - memo[b]).ravel()[0]
                    except (EvaluationError, ArithmeticError, ValueError):
                        return 2.0
                    return float(np.sign(v)) if np.isfinite(v) else 2.0
                grid, k = [], 1
                while k <= SCAN_LIMIT:          # within the cost bound: sum(eye(n)) is n²
                    if _order_cost(order, {o: k if o == d else 1 for o in dims})[0] > MAX_COST:
                        break
                    grid.append(k)
                    k = k + 1 if k < SCAN_LINEAR else int(k * SCAN_GROWTH) + 1
                if len(grid) < 2:
                    continue
                before, found = side(grid[0]), 0
                for lo, end in zip(grid, grid[1:]):
                    now = side(end)
                    while before != now and found < SCAN_CHANGES:   # each change in order:
                        hi = end                     # (n > 100) is -1, then 0, then +1
                        while hi - lo > 1:           # side(lo) == before != side(hi)
                            mid = (lo + hi) // 2
                            lo, hi = (mid, hi) if side(mid) == before else (lo, mid)
                        out += [(d, lo), (d, hi)]
                        lo, before, found = hi, side(hi), found + 1
                    if found == SCAN_CHANGES:
                        break
        self._scanned, self._threshold_list = roots, list(dict.fromkeys(out))
        return self._threshold_list

    def _cost(self, top):
        """(entries computed, with r·c·k for a matrix product; the largest value) when
        every named dimension has the size top (or the sizes of a dict): the cost of one
        evaluation, which bounds the high-precision confirmation, the slow part."""
        from mcalc.evaluate import evaluation_order
        at = top if isinstance(top, dict) else {n: top for n in self._dims()}
        if getattr(self, "_cost_of", None) != self._roots():
            self._cost_of, self._cost_order = self._roots(), evaluation_order(self._roots())
        return _order_cost(self._cost_order, at)

    def _too_large(self):
        """Why the concrete sizes (vector(100000)) make the expressions too costly to
        evaluate, or ''. Named dimensions are sampled up to the largest size in bounds."""
        self.top = next((k for k in range(len(SIZES), 0, -1)
                         if self._cost(SIZES[k - 1])[0] <= MAX_COST), 0)
        if self.top:
            return ""
        largest = self._cost(SIZES[0])[1]
        return f"a {largest[0]}×{largest[1]} value"

    def _draw_values(self, sizes, scale, positive, rng=None):
        np, rng = self.np, rng or self.rng
        values = {}
        for name, vt in self.typing.vars.items():
            r, c = (parse_dim_size(d, sizes) for d in vt.shape)
            m = rng.standard_normal((r, c))
            m = (np.abs(m) + 0.1 if positive else m) * scale
            if vt.kind == "symmetric":
                m = (m + m.T) / 2
            if r == c and r > 1:
                m = m + r * scale * np.eye(r)              # well conditioned
            values[name] = m
        return values

    def _evaluate(self, values, sizes):
        """Every root at one point, through one evaluation order computed once (the roots
        share subtrees, so each is evaluated once)."""
        from mcalc.evaluate import evaluate_order, evaluation_order
        roots = (self.body, self.truth, self.cl, *self.diff_terms)
        if getattr(self, "_order_of", None) != roots:
            self._order_of, self._order = roots, evaluation_order(roots)
        memo = evaluate_order(self._order, values, sizes)
        out = {"body": memo[self.body], "truth": memo[self.truth], "claim": memo[self.cl]}
        if self.diff_terms:
            terms = [memo[t] for t in self.diff_terms]
            with self.np.errstate(all="ignore"):
                out["diff"] = sum(terms)
                out["diff_size"] = sum(self.np.abs(t) for t in terms)
        return out

    def _point(self, sizes, values, kink: bool = False):
        """The point with its values, or None where the derivative is not defined. Beside
        a kink, a float overflow (2^x at x = 1e6) does not hide the point: mpmath says
        whether the expression and its derivative are defined there."""
        np = self.np
        got = self._evaluate(values, sizes)
        got.update(sizes=sizes, values=values, kink=kink)
        if np.all(np.isfinite(got["body"])) and np.all(np.isfinite(got["truth"])):
            return got
        if kink and self._defined_mp(got):
            got["overflow"] = True
            return got
        return None

    def _defined_mp(self, p) -> bool:
        import mpmath
        from mcalc.evaluate import evaluate_mp
        memo: dict = {}
        ok = lambda x: isinstance(x, mpmath.mpf) and mpmath.isfinite(x)  # noqa: E731
        try:
            return all(ok(x) for root in (self.body, self.truth) for x in
                       evaluate_mp(root, p["values"], p["sizes"], MP_DPS[0], memo).ravel())
        except (ArithmeticError, ValueError, TypeError):
            return False

    def _points_at(self, sizes):
        """Points at every scale (positive values where signed ones leave the domain),
        then points on both sides of every kink."""
        for scale in SCALES:
            for positive in (False, True):
                p = self._point(sizes, self._draw_values(sizes, scale, positive))
                if p is not None:
                    yield p
                    break
        yield from self._kink_points(sizes)

    def _search(self):
        """The first point (smallest sizes first) where the claim differs from the
        derivative, confirmed at high precision; None if there is none."""
        for sizes in self._size_plan():
            for p in self._points_at(sizes):
                self.points.append(p)
                if self._differs(p):
                    if self._confirm(p) or self._hidden_difference(p):
                        return p            # (confirmed, or below the digits confirmed)
                elif self._underflowed(p) and self._hidden_difference(p):
                    return p
        if not self.points:
            raise McalcError("cannot decide: no point found where the expression and its "
                             "derivative are both defined")
        return None

    def _more_points(self, after):
        """A few more points (for the diagnosis) once a difference is found."""
        plan = self._size_plan()
        rest = plan[plan.index(after) + 1:] or plan
        signs = (False, False, True) if self._kinks() else (False, True)
        for sizes in rest[:2]:
            for positive in signs:
                p = self._point(sizes, self._draw_values(sizes, 1.0, positive))
                if p is not None:
                    self.points.append(p)

    def _outside_domain(self):
        """A point where the derivative is defined and the claim is not, when the claim
        has a log, sqrt, fractional or negative power, inverse, tan or logdet the canonical
        form may have dropped (0*sqrt(x) is 0 only where sqrt(x) is defined, 0/(x - x)
        nowhere); None if there is none."""
        np = self.np
        def partial(n):
            if n.op == "pow":
                k = n.args[1]
                return k.op != "num" or k.value.denominator != 1 or k.value < 0
            return n.op in ("log", "sqrt", "logdet", "inv", "tan")
        if not any(partial(n) for _, n in _nodes_with_paths(self.cl)):
            return None
        for sizes in self._size_plan()[:3]:
            p = self._point(sizes, self._draw_values(sizes, 1.0, False))
            if p is not None and not np.all(np.isfinite(p["claim"])):
                self.points.append(p)
                if self._undefined_claim(p, MP_DPS[0]):
                    return p
        return None

    # -- kinks ---------------------------------------------------------------------------
    def _all_kinks(self, roots=None):
        """(a, b) for every kink of the roots (the expression, claim and derivative):
        relu(a)/abs(a)/sign(a) change at a = 0 (b None), max, min and the indicators where
        a − b changes sign."""
        from mcalc.evaluate import KINK_BINARY, KINK_UNARY
        roots = roots or self._roots()
        if getattr(self, "_kinks_of", None) == roots:
            return self._all_kink_list
        seen, out = set(), []
        for root in roots:
            for _, n in _nodes_with_paths(root):
                if n in seen:
                    continue
                seen.add(n)
                if n.op in KINK_UNARY:
                    out.append((n.args[0], None))
                elif n.op in KINK_BINARY:
                    out.append(n.args)
        self._kinks_of, self._all_kink_list = roots, list(dict.fromkeys(out))
        return self._all_kink_list

    def _kinks(self):
        """The kinks of the variables (those of the dimensions alone: _threshold_sizes)."""
        if not hasattr(self, "_kink_list"):
            self._kink_list = [k for k in self._all_kinks()
                               if E.free_vars(k[0]) | (E.free_vars(k[1]) if k[1] else set())]
        return self._kink_list

    def _kink_points(self, sizes):
        """For each kink, a random line through a point; the secant method finds where
        the kink's argument (one entry, at random) is 0 on it, and the points just
        either side of that root are compared (not luck: a kink at x = 700 or 1e9 is
        found as surely as one at 0)."""
        from mcalc.evaluate import evaluate_order, evaluation_order
        np = self.np
        for a, b in self._kinks():
            order = evaluation_order((a,) if b is None else (a, b))
            base = self._draw_values(sizes, 1.0, False)
            step = self._draw_values(sizes, 1.0, False)
            # the line moves every variable, or (half the time) one the kink depends on:
            # far kinks then leave the other variables at ordinary values
            names = sorted(E.free_vars(a) | (E.free_vars(b) if b is not None else set()))
            moving = set(base) if self.rng.random() < 0.5 else \
                {names[int(self.rng.integers(len(names)))]}
            at = lambda t: {k: base[k] + t * (step[k] - (step[k].shape[0] * np.eye(  # noqa: E731
                step[k].shape[0]) if step[k].shape[0] == step[k].shape[1] > 1 else 0))
                if k in moving else base[k] for k in base}

            def g(t, order=order, a=a, b=b):
                with np.errstate(all="ignore"):        # (t up to 1e308: inf is a sign too)
                    memo = evaluate_order(order, at(t), sizes)
                    return (memo[a] if b is None else memo[a] - memo[b]).reshape(-1)
            g0 = g(0.0)
            if not g0.size:
                continue
            j = int(self.rng.integers(g0.size))
            t1 = _kink_root(lambda t, g=g, j=j: g(t)[j], g0[j])
            if t1 is None:
                continue
            for t in (t1 + sgn * step * max(1.0, abs(t1)) for step in KINK_STEPS
                      for sgn in (-1, 1)):
                p = self._point(sizes, at(t), kink=True)
                if p is not None:
                    self.kink_points += 1
                    yield p

    # -- comparison ----------------------------------------------------------------------
    def _differs(self, p) -> bool:
        """float64 screen: a difference larger than FLOAT_RTOL relative to the values
        compared, or a nonzero canonical difference (which big terms cannot swamp); beside
        a kink, also float values that overflowed or underflowed."""
        np = self.np
        t, c = p["truth"], p["claim"]
        if not np.all(np.isfinite(c)) or p.get("overflow"):
            return True
        if p["kink"] and self._underflows() and np.any(np.abs(t) < 1e-290):
            return True          # beside a kink, an underflow to 0 may hide a difference
        if np.any(np.abs(t - c) > FLOAT_RTOL * np.maximum(np.abs(t), np.abs(c))):
            return True
        if "diff" in p:
            d, size = p["diff"], p["diff_size"]
            return bool(np.any(np.isfinite(d) & (np.abs(d) > DIFF_RTOL * size)))
        return False

    def _below_the_screen(self):
        """Before "holds" without a proof: a few of the points compared, at high precision.
        The float screen lets relative differences below FLOAT_RTOL pass (rounding), so a
        claim off by less (cos(x + 1e-13) for cos(x)) would hold; mpmath intervals show
        such a difference at any point. None when there is none at the points looked at."""
        plain = [p for p in self.points if not p["kink"] and not p.get("overflow")]
        step = max(1, len(plain) // MP_SCREEN_POINTS)
        for p in plain[::step][:MP_SCREEN_POINTS]:
            if self._confirm(p):
                p["hidden"] = True
                return p
        return None

    def _underflowed(self, p) -> bool:
        """The canonical difference is exactly 0 in float64 at p, and has exp, tanh,
        sigmoid, softmax or logsumexp: perhaps only because its terms underflowed
        (exp(x - 5000)) or cancelled a 1 (1 + tanh(x - 1000))."""
        return "diff" in p and not self.np.any(p["diff"]) and \
            self._diff_ops() & UNDERFLOW_EXP

    def _diff_ops(self) -> frozenset:
        if getattr(self, "_ops_of", None) is not self.diff_terms:
            self._ops_of, self._ops = self.diff_terms, frozenset(
                n.op for t in self.diff_terms for _, n in _nodes_with_paths(t))
        return self._ops

    def _hidden_difference(self, p) -> bool:
        """A difference too small for float64 and for the digits the two sides are
        compared to (exp(x - 5000) beside 2*x): the canonical difference, summed term by
        term in mpmath intervals, surely is not 0 at p — a proof that they differ there."""
        if not self.diff_terms or self._diff_ops().isdisjoint(UNDERFLOW):
            return False
        # a few points suffice (such a difference is there at any point), more digits at
        # the first ones: 1 + tanh(x - 1000) is 1e-869, beside the 1 it cancels
        self.hidden_left = getattr(self, "hidden_left", 2 * MP_DEEP_POINTS) - 1
        if self.hidden_left < 0:
            return False
        import mpmath
        from mcalc.evaluate import Ambiguous, evaluate_mp
        deep = self.hidden_left >= MP_DEEP_POINTS
        for dps in MP_DPS[:1] + (MP_DEEP_DPS if deep else ()):
            memo: dict = {}
            old, mpmath.iv.dps = mpmath.iv.dps, dps     # (the sum too: it cancels)
            try:
                total = sum(evaluate_mp(t, p["values"], p["sizes"], dps, memo,
                                        interval=True) for t in self.diff_terms)
            except (Ambiguous, ArithmeticError, ValueError, TypeError):
                return False
            finally:
                mpmath.iv.dps = old
            if any(lo > 0 or hi < 0 for lo, hi in map(_iv_ends, total.ravel())):
                p["hidden"] = True
                return True
        return False

    def _underflows(self) -> bool:
        """Can the derivative's values underflow to 0 (exp, tanh, sigmoid, softmax...)?"""
        if not hasattr(self, "_underflow"):
            self._underflow = any(n.op in UNDERFLOW for _, n in _nodes_with_paths(self.truth))
        return self._underflow

    def _confirm(self, p) -> bool:
        """Do the two sides really differ at p? Both are evaluated with mpmath intervals
        (sure to hold the exact values) at increasing precision: disjoint intervals prove
        a difference. A claim undefined (NaN) where the derivative is defined differs too."""
        from mcalc.evaluate import Ambiguous, evaluate_mp
        deep = getattr(self, "deep_left", MP_DEEP_POINTS) > 0
        for dps in MP_DPS + (MP_DEEP_DPS if deep else ()):
            if dps in MP_DEEP_DPS and dps == MP_DEEP_DPS[0]:
                self.deep_left = getattr(self, "deep_left", MP_DEEP_POINTS) - 1
            memo: dict = {}
            try:
                t = evaluate_mp(self.truth, p["values"], p["sizes"], dps, memo, interval=True)
                c = evaluate_mp(self.cl, p["values"], p["sizes"], dps, memo, interval=True)
            except Ambiguous:
                continue                               # a kink too close: more digits
            except (ArithmeticError, ValueError, TypeError) as e:
                self.notes.append(f"high-precision evaluation failed ({type(e).__name__})")
                return False
            t, c = t.ravel(), c.ravel()
            if not all(_iv_finite(x) for x in t):
                return False                           # the derivative is not defined here
            if not all(_iv_finite(x) for x in c):
                if self._undefined_claim(p, dps):
                    return True
                continue
            if any((a < b) is True or (a > b) is True for a, b in zip(t, c)):
                return True
            if all(_iv_narrow(a) and _iv_narrow(b) for a, b in zip(t, c)):
                return False                           # equal to 25 digits
        return False

    def _undefined_claim(self, p, dps) -> bool:
        """At mpmath precision: the derivative has a value and the claim has none."""
        import mpmath
        from mcalc.evaluate import evaluate_mp
        memo: dict = {}
        t = evaluate_mp(self.truth, p["values"], p["sizes"], dps, memo)
        c = evaluate_mp(self.cl, p["values"], p["sizes"], dps, memo)
        ok = lambda x: isinstance(x, mpmath.mpf) and mpmath.isfinite(x)  # noqa: E731
        return all(ok(x) for x in t.ravel()) and not all(ok(x) for x in c.ravel())

    def _sampled_text(self) -> str:
        sizes: dict = {}
        for p in self.points:
            for k, v in p["sizes"].items():
                sizes.setdefault(k, set()).add(v)
        at = "; ".join(f"{k} = {_ranges(v)}" for k, v in sorted(sizes.items()))
        kinks = f" ({self.kink_points} of them beside kinks)" if self.kink_points else ""
        return (f"no difference found at {len(self.points)} points{kinks}, "
                f"{f'sizes {at}, ' if at else ''}scales ±1e-3..±1e3")

    # -- the engine, against finite differences ---------------------------------------
    def _validate_engine(self):
        """A directional central difference of the expression at a few points must agree
        with mcalc's derivative (a second difference for the second derivative of a
        scalar), or check does not decide."""
        from mcalc.evaluate import kink_distance
        groups = _wrt_groups(self.req, self.typing)
        if len(groups) > 2 or len(groups) == 2 and not self.body.is_scalar:
            self.notes.append("mcalc's derivative is not compared with finite differences "
                              "here (beyond the second derivative of a scalar)")
            return
        plan = [s for s in self._size_plan() if all(v >= 2 for v in s.values())] or \
            self._size_plan()
        tried = 0
        rng = self.np.random.default_rng(self.seed + 1)     # the search's points stay put
        for sizes in plan:
            values = self._draw_values(sizes, 1.0, tried % 2 == 1, rng)
            if kink_distance(self.body, values, sizes) < 1e-3:
                continue
            p = self._point(sizes, values)
            if p is None:
                continue
            tried += 1
            ok = self._directional_ok(p, *groups[0], rng) if len(groups) == 1 else \
                self._second_ok(p, groups, rng)
            if ok:
                return
            if tried >= 3:
                break
        if not tried:
            self.notes.append("mcalc's derivative could not be compared with finite "
                              "differences (no point away from kinks where the expression "
                              "is defined)")
            return
        from mcalc.printing.text import to_text
        raise McalcError(f"cannot decide: mcalc's own derivative {to_text(self.truth)} "
                         f"disagrees with finite differences of the expression (please "
                         f"report this request); --exact decides by the definition method")

    def _direction(self, xs, values, rng):
        """A random direction for the variables xs, and its vec."""
        direction = {x.name: rng.standard_normal(values[x.name].shape) for x in xs}
        for x in xs:
            if x.is_symmetric:
                d = direction[x.name]
                direction[x.name] = (d + d.T) / 2
        return direction, self.np.concatenate([direction[x.name].reshape(-1, order="F")
                                               for x in xs])

    def _f_at(self, values, sizes, *moves):
        """The expression at values moved by coefficient × direction, for each move."""
        from mcalc.evaluate import evaluate
        moved = dict(values)
        for c, direction in moves:
            for k, d in direction.items():
                moved[k] = moved[k] + c * d
        return evaluate(self.body, moved, sizes, two_d=True).reshape(-1, order="F")

    def _second_ok(self, p, groups, rng) -> bool:
        """w'·H·v (either orientation) against a second central difference of f."""
        np = self.np
        values, sizes, t = p["values"], p["sizes"], p["truth"]
        dv, v = self._direction(groups[0][0], values, rng)
        dw, w = self._direction(groups[1][0], values, rng)
        cands = [float(x @ t @ y) for x, y in ((v, w), (w, v))
                 if t.shape == (len(x), len(y))]
        for h in (1e-4, 1e-3, 1e-5):
            f = [self._f_at(values, sizes, (a * h, dv), (b * h, dw))[0]
                 for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
            second = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h)
            size = max(float(np.max(np.abs(p["body"]))), abs(second), 1e-300)
            if any(abs(c - second) <= 1e-4 * max(size, abs(c)) for c in cands):
                return True
        return False

    def _directional_ok(self, p, xs, stacked, rng) -> bool:
        np = self.np
        values, sizes = p["values"], p["sizes"]
        direction, v = self._direction(xs, values, rng)
        fr, fc = (parse_dim_size(d, sizes) for d in self.body.shape)
        t = p["truth"]
        num = self.layout == "numerator"
        if len(v) == 1 and not stacked:
            j = (t if num else t.T).reshape(-1, 1, order="F")
        elif (fr, fc) == (1, 1):
            j = (t.T if num else t).reshape(1, -1, order="F")
        else:
            j = t if num else t.T
        jv = j @ v
        for h in (1e-6, 1e-4, 1e-5, 1e-7):
            fd = (self._f_at(values, sizes, (h, direction)) -
                  self._f_at(values, sizes, (-h, direction))) / (2 * h)
            # relative to the values at hand: a derivative of 1e-10*x^2 is not "about 0"
            size = max(float(np.max(np.abs(p["body"]))), float(np.max(np.abs(jv))),
                       float(np.max(np.abs(fd))), 1e-300)
            if np.all(np.abs(fd - jv) <= 1e-4 * size):
                return True
        return False

    # -- diagnosis ---------------------------------------------------------------------
    def _diagnose_failure(self, bad):
        from mcalc.evaluate import to_contract
        np = self.np
        ce = Counterexample(
            sizes=dict(bad["sizes"]),
            values={k: to_contract(v, self.typing.vars[k].shape)
                    for k, v in bad["values"].items()},
            expected=to_contract(bad["truth"], self.shape),
            claimed=to_contract(bad["claim"], self.shape))
        if bad.get("overflow"):                  # beyond floats: the forms must explain
            return (self._symbolic_cause() or self._one_term([]) or
                    "the values differ (beyond the range of floating point numbers)"), ce
        if not np.all(np.isfinite(bad["claim"])):
            return "the claim is not defined (NaN) where the derivative is", ce
        if bad.get("hidden"):
            return ("they differ by less than floating point can show there: by "
                    f"{self._difference_text()}"), ce
        cause = self._symbolic_cause()
        if cause:
            return cause, ce
        self._more_points(bad["sizes"])
        usable = [p for p in self.points if np.all(np.isfinite(p["claim"]))]
        usable = [p for p in usable if all(v >= 2 for v in p["sizes"].values())] or usable
        for find in (self._transposed, self._factor, self._dimension_factor, self._one_term,
                     self._indicator, self._misplaced_transpose, self._symmetric_only):
            try:
                cause = find(usable)
            except (OverflowError, ValueError) as e:
                if not _huge_number(e):
                    raise
                continue                        # a cause too large to print is no help
            if cause:
                return cause, ce
        return "the values differ (no simple cause found)", ce

    def _symbolic_cause(self):
        """Transposed, or off by a constant factor, read off the canonical forms (no
        points needed); None otherwise."""
        if getattr(self, "polys", None) is None:
            return None
        canon, pt, pc = self.polys
        shape = self.truth.shape
        try:
            if shape[0] == shape[1] and shape != SCALAR and pt != pc and \
                    canon.transpose(pt) == pc:
                return f"transposed (the {_other(self.layout)}-layout form)"
        except GiveUp:
            pass
        if pt.terms and set(pt.terms) == set(pc.terms):
            ratios = {pc.terms[m] / c for m, c in pt.terms.items()}
            if len(ratios) == 1:
                return _factor_text(next(iter(ratios)))
        return None

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
        with np.errstate(all="ignore"):          # (values beside a far kink: 1e150)
            k = float(np.dot(c, t) / np.dot(t, t))
        if not all(self._agree(k * p["truth"], p["claim"]) for p in pts):
            return None
        if abs(k) < 1e-9:
            return "the claim is 0 but the derivative is not"
        return _factor_text(k)

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
        return self._eval(self.truth, values, sizes)

    def _eval(self, e, values, sizes):
        from mcalc.evaluate import evaluate
        return evaluate(e, values, sizes, two_d=True)

    def _agree(self, a, b) -> bool:
        return _close(self.np, b, a)

    def _one_term(self, pts):
        """derivative − claim in canonical form: one term is a missing (or extra) term."""
        from mcalc.printing.text import to_text
        from mcalc.simplify import simplify
        if self.truth is None:
            return None
        try:
            diff = self._canonical_difference()
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


def _close(np, a, b) -> bool:
    """Equal up to rounding, relative to the values compared (the diagnosis' test)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    return bool(np.all(np.abs(a - b) <= 1e-9 * np.maximum(np.abs(a), np.abs(b))))


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


def _kink_root(f, f0) -> float | None:
    """Where f (one entry of a kink's argument along a line; f0 = f(0)) is 0: the secant
    method from t = 0 and 1. When it has not converged within SECANT_STEPS but two of the
    points it tried lie on either side of 0 (a far kink of a steep argument: x^3 = 1e9 is
    30 secant steps away from x = 1) — or, if none do, two of t = ±10^FAR_STEPS, or a
    point and the extremum of f nearest it (f touches 0 near a peak) — bisection between
    them finds it: geometric while the bracket spans orders of magnitude, then halving.
    None: no root found."""
    t0, t1, f1 = 0.0, 1.0, f(1.0)
    tried = [(t0, f0), (t1, f1)]
    for _ in range(SECANT_STEPS):
        if f1 == 0:
            return t1
        if not (math.isfinite(f0) and math.isfinite(f1)) or f1 == f0:
            break
        t0, t1, f0 = t1, t1 - f1 * (t1 - t0) / (f1 - f0), f1
        if abs(t1 - t0) <= 1e-14 * max(1.0, abs(t1)):
            return t1 if math.isfinite(t1) else None   # converged (at once when affine)
        f1 = f(t1)
        tried.append((t1, f1))

    def brackets(tried):
        tried = sorted((t, v) for t, v in tried if math.isfinite(t) and not math.isnan(v))
        return [(lo, hi, flo < 0) for (lo, flo), (hi, fhi) in zip(tried, tried[1:])
                if flo and fhi and (flo < 0) != (fhi < 0)]
    if not brackets(tried):          # (x^5 = 1e20: f(0) == f(1) in floats) farther out
        tried += [(t, f(t)) for k in FAR_STEPS for t in (-10.0 ** k, 10.0 ** k)]
    if not brackets(tried):          # 0 only near a peak: (cos(x) > 0.9999999999)
        tried += _extremum(f, tried)
    fallback = t1 if math.isfinite(t1) else None     # (a point of the line all the same)
    if not brackets(tried):
        return fallback
    lo, hi, below = brackets(tried)[0]           # f(lo) < 0 == below, f(hi) on the other side
    for _ in range(200):
        far = lo * hi > 0 and max(abs(lo), abs(hi)) > 4 * min(abs(lo), abs(hi))
        mid = math.copysign(math.sqrt(abs(lo)) * math.sqrt(abs(hi)), lo) if far else \
            lo + (hi - lo) / 2                   # (neither overflows at 1e308)
        if not lo < mid < hi or hi - lo <= 1e-14 * max(1.0, abs(mid)):
            return lo
        v = f(mid)
        if math.isnan(v):                        # (inf - inf: no sign to go by)
            return fallback
        lo, hi = (mid, hi) if (v < 0) == below and v != 0 else (lo, mid)
    return fallback


def _extremum(f, tried) -> list[tuple[float, float]]:
    """(t, f(t)) for the points of a search for the extremum of f nearest the point tried
    (|t| <= 10) where f is closest to 0: the secant method on f's central-difference
    slope. A kink argument that crosses 0 only in a window around a peak (cos(x) > c,
    c a hair below 1: a window 1e-5 wide) has its sign change between the two."""
    near = [(t, v) for t, v in tried if abs(t) <= 10 and math.isfinite(v)]
    if not near:
        return []
    out: list[tuple[float, float]] = []

    def slope(t):
        h = 1e-7 * max(1.0, abs(t))
        a, b = f(t - h), f(t + h)
        out.extend(((t - h, a), (t + h, b)))
        return (b - a) / (2 * h)
    t0 = min(near, key=lambda tv: abs(tv[1]))[0]
    t1 = t0 + 1e-3
    s0, s1 = slope(t0), slope(t1)
    for _ in range(SECANT_STEPS):
        if not (math.isfinite(s0) and math.isfinite(s1)) or s1 == s0:
            break
        t0, t1, s0 = t1, t1 - s1 * (t1 - t0) / (s1 - s0), s1
        if not math.isfinite(t1) or abs(t1 - t0) <= 1e-15 * max(1.0, abs(t1)):
            break
        s1 = slope(t1)
    if math.isfinite(t1):
        out.append((t1, f(t1)))
    return out


def _huge_number(e: Exception) -> bool:
    """Is e Python giving up on a huge number (a float overflow, or its limit on the
    digits of an int turned into text)?"""
    return isinstance(e, (OverflowError, NumberTooLarge)) or (
        type(e) is ValueError and "integer string conversion" in str(e))


def _factor_text(k) -> str | None:
    """'wrong sign', 'off by a factor of 1/2' (k: the claim over the derivative)."""
    exact = isinstance(k, Fraction)                 # from the canonical forms
    if k == -1 or not exact and abs(k + 1) < 1e-6:
        return "wrong sign"
    if k == 1 or not exact and abs(k - 1) < 1e-6:
        return None
    nice = Fraction(k).limit_denominator(1000)
    if exact:
        text = str(nice) if nice == k else f"{float(k):.10g}"
    else:
        text = str(nice) if abs(float(nice) - k) < 1e-6 * abs(k) else f"{k:.6g}"
    if abs(Fraction(text)) == 1:        # 1 + 1e-14: the digits shown would hide the factor
        text = repr(float(k)) if abs(float(k)) != 1 else str(k)
    sign = " and the wrong sign" if k < 0 else ""
    return f"off by a factor of {text.lstrip('-')}{sign}"


def _iv_ends(x):
    """An interval's ends as mpmath numbers (no float overflow: 2^1e6 is finite); a
    plain number, from an operator without an interval version, is its own two ends."""
    import mpmath
    if hasattr(x, "_mpi_"):
        return tuple(mpmath.mp.make_mpf(v) for v in x._mpi_)
    return (mpmath.mpf(x),) * 2


def _iv_finite(x) -> bool:
    import mpmath
    return all(mpmath.isfinite(v) for v in _iv_ends(x))


def _iv_narrow(x) -> bool:
    import mpmath
    lo, hi = _iv_ends(x)
    with mpmath.workdps(40):
        return hi - lo <= mpmath.mpf("1e-25") * max(abs(lo), abs(hi))


def _symmetric_plain(e: Expr, typing) -> Expr:
    """S' is S for a symmetric(n) variable (CONTRACT §1), rewritten before anything else."""
    mapping = {}
    for name, vt in typing.vars.items():
        if vt.kind == "symmetric":
            s = E.var(name, vt.shape, True)
            mapping[Expr("T", (s,), vt.shape)] = s
    return E.replace(e, mapping) if mapping else e


def _fit_free_dims(cl: Expr, want, typing) -> Expr:
    """A bare I takes its size from the derivative it is compared with: a dimension that
    only the claim's I has is renamed to the derivative's."""
    known = set(typing.dims) | E.dimension_names(*(E.var(n, vt.shape)
                                                    for n, vt in typing.vars.items()))
    if cl.shape == want:
        return cl
    bare = {n.shape[0] for _, n in _nodes_with_paths(cl) if n.op == "eye"} - known
    rename: dict = {}
    for have, need in zip(cl.shape, want):
        if have not in bare:
            if have != need:
                return cl
            continue
        if rename.setdefault(have, need) != need:
            return cl
    if not rename:
        return cl
    done: dict = {}
    sub = lambda d: rename.get(d, d)  # noqa: E731
    for node in E.postorder(cl, done):
        done[node] = Expr(node.op, tuple(done[a] for a in node.args),
                          tuple(sub(d) for d in node.shape),
                          sub(node.name) if node.op == "dim" else node.name, node.value)
    return done[cl]


_POSITIVE = ("exp", "sigmoid", "softmax")      # > 0 wherever they are defined


def _plain_factors(diff: Poly) -> tuple[bool, list]:
    """(whether diff is one term whose factors are variables, constants (ones, I, pi),
    dimensions, literals, reciprocals, exp, sigmoid and softmax (nonzero wherever they
    are defined) or scalars of no variable; those scalars, to be shown nonzero)."""
    if len(diff.terms) != 1:
        return False, []
    (mono, c), = diff.terms.items()
    plain = ("var", "ones", "eye", "dim", "const", "num")
    constants = []
    for b, power in mono:
        if b.op in plain or (b.op == "T" and b.args[0].op in ("var", "ones")) or (
                b.op == "matmul" and all(a.op in ("ones", "T") and
                                         (a.op == "ones" or a.args[0].op == "ones")
                                         for a in b.args)):
            continue
        if (b.op in _POSITIVE or power < 0) and E.free_vars(b):
            continue                            # exp(x - 1000): tiny, never 0
        if b.shape != SCALAR or E.free_vars(b):
            return False, []
        constants.append(b)                     # exp(-1000), (n - 10 >= 0)
    return bool(c), constants


def _order_cost(order, sizes) -> tuple[int, tuple[int, int]]:
    """(entries computed, r·c·k for a matrix product; the largest value's r, c) evaluating
    the nodes of `order` at `sizes`."""
    size = lambda d: parse_dim_size(d, sizes)  # noqa: E731
    cost, largest = 0, (1, 1)
    for node in order:
        r, c = size(node.shape[0]), size(node.shape[1])
        k = max((size(a.shape[1]) for a in node.args), default=1) if node.op == "matmul" else 1
        cost += r * c * k
        largest = max(largest, (r, c), key=lambda s: s[0] * s[1])
    return cost, largest


def _ranges(sizes) -> str:
    """1..9 for 1, 2, …, 9; 1..9, 99, 100 with the sizes either side of a threshold."""
    runs: list[list[int]] = []
    for k in sorted(sizes):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(f"{a}..{b}" if b - a > 1 else (f"{a}, {b}" if b > a else f"{a}")
                     for a, b in runs)


def _is_zero_literal(e: Expr) -> bool:
    return (e.op == "num" and e.value == 0) or e.op == "zeros"


def _nodes_with_paths(e: Expr):
    """Every distinct node of the tree with the path (the argument indices from the root)
    of its first occurrence, depth first, parents before children. A shared subtree is
    walked once and paths are built only on request, so this stays linear in the nodes."""
    parent: dict = {}                           # node -> (parent, argument index)
    stack = [(e, None)]
    while stack:
        node, link = stack.pop()
        if node in parent:
            continue
        parent[node] = link
        yield _Path(node, parent), node
        stack.extend((a, (node, i)) for i, a in enumerate(node.args) if a not in parent)


class _Path:
    """The path to a node, read off the parent links when it is used."""
    __slots__ = ("node", "parent")

    def __init__(self, node, parent):
        self.node, self.parent = node, parent

    def __bool__(self):
        return self.parent[self.node] is not None

    def indices(self) -> list:
        out, n = [], self.node
        while self.parent[n] is not None:
            n, i = self.parent[n]
            out.append(i)
        return out[::-1]


def _replace_at(e: Expr, path, new: Expr) -> Expr:
    """e with the node at `path` replaced by `new` (without recursion)."""
    indices, along = path.indices(), [e]
    for i in indices:
        along.append(along[-1].args[i])
    out = new
    for node, i in zip(reversed(along[:-1]), reversed(indices)):
        args = list(node.args)
        args[i] = out
        out = Expr(node.op, tuple(args), node.shape, node.name, node.value)
    return out


def _transposed_matrices(e: Expr):
    seen = []
    for _, n in _nodes_with_paths(e):
        if n.op == "T" and n.args[0].op == "var" and n.args[0].is_matrix \
                and n.args[0].name not in seen:
            seen.append(n.args[0].name)
    return seen
