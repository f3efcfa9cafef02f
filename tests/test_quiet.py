"""The result without steps (`pipeline.derive(..., steps=False)`: a plain batch line and
check's own derivative, mcalc.methods.graph.Derive.quiet) is the derivation's result —
the same expression, shape, vec form and named subexpressions, by every method and
layout — and, on its own, agrees with central finite differences."""
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcalc.errors import McalcError
from mcalc.pipeline import derive
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.plain import one_line
from numeric import assert_close, evaluate, finite_difference, random_values
from test_classics import CLASSICS
from test_properties import DECLS, SETTINGS, _matrix, _matrix_scalar, _scalar, _vector
from test_steps_fuzz import _request

MIX = Path(__file__).resolve().parent.parent / "benchmarks" / "mix.txt"
REQUESTS = sorted(
    {c[0] for c in CLASSICS}
    | {line.strip() for line in MIX.read_text().splitlines()[::5]
       if line.strip() and not line.startswith("#")}
    | {_request(random.Random(1000 + seed)) for seed in range(60)}
    | {"d/dx x", "d/dx 3", "d/d(a, b) [[a, b], [b, a]] where a, b: scalar",
       "d/d(a, b) a*b^2 where a, b: scalar", "d/dX X@X where X: matrix(n, n)",
       "d/dx x'@t1 where x: vector(n); t1 = A@x + x",
       "d^2/dx^2 sum(tanh(W2@tanh(W1@x))) where W1: matrix(n, n); W2: matrix(n, n)"})


def _outcome(request_text, layout, method, steps):
    try:
        d = derive(request_text, layout=layout, method=method, steps=steps)
    except McalcError as e:
        return f"error: {e}"
    return one_line(d), d.result, d.shape, d.vec_form, d.where


@pytest.mark.parametrize("request_text", REQUESTS)
def test_the_result_is_the_derivations(request_text):
    for layout in ("numerator", "denominator"):
        for method in (None, "chain", "differential"):
            full = _outcome(request_text, layout, method, True)
            quiet = _outcome(request_text, layout, method, False)
            assert quiet == full, (layout, method)


def test_no_steps_are_worked_out():
    d = derive("d/dx sin(x^2)", steps=False)
    assert d.steps == () and d.result is not None
    assert derive("d/dx sin(x^2)").steps            # (the derivation has them)


def _check_quiet(request, layout, seed):
    d = derive(f"{request} {DECLS}", layout=layout, steps=False)
    rng = np.random.default_rng(seed)
    values = random_values(d.types, {"n": int(rng.integers(2, 5)),
                                     "m": int(rng.integers(2, 5))}, rng)
    values = {k: v * 0.5 for k, v in values.items()}
    got = evaluate(to_numpy(d.result, d.dims, {e: n for n, e in d.where}), values)
    f_np = to_numpy(d.expr, d.dims)
    want = finite_difference(lambda v: evaluate(f_np, v), values, d.wrt[0], layout)
    assert_close(got, want, rtol=1e-3, atol=1e-4)


@SETTINGS
@given(st.one_of(
    st.tuples(_scalar(3), st.sampled_from(["x", "a", "A"])),
    st.tuples(_vector(3), st.sampled_from(["x", "a"])),
    st.tuples(_matrix_scalar(2), st.sampled_from(["A", "x", "B"])),
    st.tuples(_matrix(2), st.sampled_from(["A", "x", "a"]))),
    st.sampled_from(["numerator", "denominator"]), st.integers(0, 2**31))
def test_the_result_agrees_with_finite_differences(body_wrt, layout, seed):
    body, wrt = body_wrt
    _check_quiet(f"d/d{wrt} {body}", layout, seed)
