"""A fresh-eyes audit of mcalc against its contract (/work/shared/spec/CONTRACT.md), clause
by clause, as an outside test suite would try it. Each test pins a discrepancy the audit
found (failing before its fix). Values are checked against the JSON `numpy` expression
evaluated with numpy itself or against central finite differences, never against a value
the code under test produced alone."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mcalc

MCALC = [sys.executable, "-m", "mcalc.cli"]


def run(*args, stdin: bytes | None = None):
    return subprocess.run([*MCALC, *args], input=stdin, capture_output=True)


# -- Python API: d.function() is "the JSON numpy value" ----------------------------------
# The convention is the type's, not the sizes': a vector(n) is a 1-D array even at n = 1,
# a Jacobian or a derivative by a matrix is 2-D even when it is 1×1.

@pytest.mark.parametrize("request_, arrays", [
    ("d/dx x'@x", {"x": np.array([2.0])}),                         # 1-D (1,), not a float
    ("d/dx A@x where A: matrix(m, n)", {"A": np.array([[3.0]]), "x": np.array([1.5])}),
    ("d/dx A@x where A: matrix(m, n)", {"A": np.ones((3, 1)), "x": np.array([1.5])}),
    ("d/dX sum(X) where X: matrix(m, n)", {"X": np.ones((3, 1))}),
    ("d/dX sum(X) where X: matrix(m, n)", {"X": np.ones((1, 1))}),
    ("d^2/dx^2 x'@x", {"x": np.array([0.5])}),
    ("X where X: matrix(m, n)", {"X": np.array([[4.0]])}),
    ("x where x: vector(n)", {"x": np.array([4.0])}),
])
def test_function_has_the_numpy_expressions_shape_at_size_one(request_, arrays):
    d = mcalc.derive(request_)
    got = d.function()(**arrays)
    want = eval(d.numpy, {"np": np, **arrays})          # the contract's own definition
    assert type(got) is type(want) or (isinstance(got, float) and np.ndim(want) == 0)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want)


def test_counterexample_values_follow_the_types_at_size_one():
    v = mcalc.check("d/dx x'@x", "x'")
    ce = v.counterexample
    assert ce is not None and ce["sizes"] == {"n": 1}
    assert isinstance(ce["values"]["x"], list) and len(ce["values"]["x"]) == 1
    assert isinstance(ce["derivative"], list) and isinstance(ce["claim"], list)
    x = ce["values"]["x"][0]
    assert ce["derivative"] == pytest.approx([2 * x]) and ce["claim"] == pytest.approx([x])


# -- batch modes: a UTF-8 byte-order mark starts a file, it is not part of a request ----

def test_batch_diff_skips_a_byte_order_mark():
    r = run("diff", "-", "--format", "json", stdin="\ufeffd/dx x'@x\nd/dx sum(x)\n".encode())
    assert r.returncode == 0, r.stdout
    lines = [json.loads(s) for s in r.stdout.decode().splitlines()]
    assert [d["request"] for d in lines] == ["d/dx x'@x", "d/dx sum(x)"]
    assert [d["result"] for d in lines] == ["2*x'", "ones(n)'"]


def test_check_batch_file_skips_a_byte_order_mark(tmp_path):
    f = tmp_path / "claims.txt"
    f.write_bytes("\ufeffd/dx x'@x ;; 2*x'\r\nd/dx sum(x) ;; ones(n)'\r\n".encode())
    r = run("check", "--batch", str(f))
    assert r.returncode == 0, r.stdout
    assert r.stdout.decode().count("holds (proved)") == 2


# -- check: "a verdict is a proof, or says it is not" — wrong claims must not hold ------
# A claim that differs only beyond a far kink of a steep argument: the secant method
# alone does not reach it in its steps (x^3 = 1e9 is ~30 steps from x = 1), or sees
# f(0) == f(1) in floats (x^5 - 1e20), and the sampler said "holds".

@pytest.mark.parametrize("extra, differs", [
    ("relu(x^3 - 1e9)", lambda x: max(x ** 3 - 1e9, 0.0)),
    ("(x^3 > 1e12)", lambda x: float(x ** 3 > 1e12)),
    ("relu(x^5 - 1e20)", lambda x: max(x ** 5 - 1e20, 0.0)),
    ("(x^7 > 1e100)", lambda x: float(x ** 7 > 1e100)),
    ("relu(-x^3 - 1e15)", lambda x: max(-x ** 3 - 1e15, 0.0)),
])
def test_check_finds_a_difference_beyond_a_far_kink(extra, differs):
    v = mcalc.check("d/dx x^2", f"2*x + {extra}")
    assert not v.holds and v.decided_by in ("counterexample", "symbolic"), v.reason
    ce = v.counterexample
    x = ce["values"]["x"]
    assert differs(x) != 0
    assert ce["derivative"] == pytest.approx(2 * x, rel=1e-12)
    assert ce["claim"] == pytest.approx(2 * x + differs(x), rel=1e-9)
    r = run("check", "d/dx x^2", f"2*x + {extra}")
    assert r.returncode == 1, r.stdout


def test_check_still_proves_or_samples_right_claims_with_far_kinks():
    assert mcalc.check("d/dx relu(x^3 - 1e9)", "3*x^2*(x^3 > 1e9)").holds
    assert mcalc.check("d/dx x^2 + relu(x^5 - 1e20)", "2*x + 5*x^4*(x^5 >= 1e20)").holds


# A claim off by less than the float screen's tolerance (relative 1e-12) everywhere held by
# sampling: "1e-10*x is a difference" (README), and so is 1e-13. Such a difference shows
# at any point in mpmath intervals, which are looked at before "holds" without a proof.

@pytest.mark.parametrize("request_, claim", [
    ("d/dx sin(x)", "cos(x + 1e-13)"),
    ("d/dx sin(x)", "cos(x + 1e-15)"),
    ("d/dx sin(x)", "sin(x + 1.5707963267948966)"),      # a decimal is exact, not pi/2
    ("d/dx sum(sin(x))", "cos(x + 1e-14)'"),
    ("d/dX logdet(X)", "inv(X + 1e-14*I)"),
])
def test_check_finds_differences_below_the_float_screen(request_, claim):
    import mpmath
    v = mcalc.check(request_, claim)
    assert not v.holds and v.decided_by == "counterexample", v.reason
    r = run("check", request_, claim)
    assert r.returncode == 1, r.stdout
    if request_ == "d/dx sin(x)":                   # the point shows it, independently
        mpmath.mp.dps = 40
        x = mpmath.mpf(v.counterexample["values"]["x"])
        shift = mpmath.mpf(claim.split("+ ")[1].rstrip(")"))
        fn = mpmath.cos if claim.startswith("cos") else mpmath.sin
        assert abs(fn(x + shift) - mpmath.cos(x)) > mpmath.mpf(10) ** -30


@pytest.mark.parametrize("request_, claim", [
    ("d/dx sin(x)", "sin(x + pi/2)"),
    ("d/dX logdet(X@X)", "2*inv(X)"),
    ("d/dx relu(x)", "(x >= 0)"),
    ("d/dx exp(log(x))", "1"),
])
def test_right_claims_without_a_proof_still_hold(request_, claim):
    v = mcalc.check(request_, claim)
    assert v.holds and v.decided_by == "sampling", v.reason
    assert "no difference found at" in v.reason


# --exact compares components at sizes 2 and 3 with SymPy: a claim that differs only at
# other sizes, or only where SymPy's simplification dropped that it is undefined
# (0*log(x) is 0), held with exit 0. check decides "for every size of the dimensions".

@pytest.mark.parametrize("request_, claim, size", [
    ("d/dx x'@x", "2*x' + (n >= 6)*x'", 6),
    ("d/dx sum(x)", "ones(n)' + (n > 3)*ones(n)'", 4),
])
def test_exact_does_not_hold_beyond_its_sizes(request_, claim, size):
    for v in (mcalc.check(request_, claim, exact=True),
              mcalc.check(request_, claim, method="definition")):
        assert not v.holds and v.decided_by == "counterexample", v.reason
        ce = v.counterexample
        assert ce["sizes"] == {"n": size}
        x = np.array(ce["values"]["x"])
        want, extra = (2 * x, x) if request_ == "d/dx x'@x" else (np.ones(size),) * 2
        np.testing.assert_allclose(ce["derivative"], want, rtol=1e-12)
        np.testing.assert_allclose(ce["claim"], want + extra, rtol=1e-12)
    assert run("check", "--exact", request_, claim).returncode == 1


def test_exact_does_not_hold_where_the_claim_is_undefined():
    v = mcalc.check("d/dx x", "1 + 0*log(x)", exact=True)
    assert not v.holds and v.counterexample["values"]["x"] < 0
    assert v.counterexample["claim"] == "nan" and v.counterexample["derivative"] == 1.0


@pytest.mark.parametrize("request_, claim", [
    ("d/dx relu(x)", "(x >= 0)"), ("d/dx x'@A@x", "x'@(A + A')"), ("d/dx x'@x", "2*x'")])
def test_exact_still_holds_and_names_the_derivative(request_, claim):
    v = mcalc.check(request_, claim, exact=True)
    assert v.holds and v.decided_by == "exact", v.reason
    assert v.derivative                              # mcalc's own, as the contract's str


# -- options: `--latex` is `--format latex`; with another --format it is a bad option ----

@pytest.mark.parametrize("fmt", ["json", "plain", "numpy", "html"])
def test_latex_flag_conflicting_with_format_is_a_usage_error(fmt):
    r = run("diff", "--latex", "--format", fmt, "d/dx x'@x")
    assert r.returncode == 2 and r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "--latex" in err and fmt in err and "Traceback" not in err


def test_latex_flag_with_format_latex_is_fine():
    r = run("diff", "--latex", "--format", "latex", "d/dx x'@x")
    assert r.returncode == 0 and r.stdout.startswith(b"\\begin{align*}")


# Sizes: dimension names take sizes offset from each other, so three or more are never all
# large at once, and two are never equal: a claim off only there held by sampling.

@pytest.mark.parametrize("request_, claim, at", [
    ("d/dx x'@x where x: vector(n); B: matrix(k, p)",
     "2*x'*(1 + (n >= 5)*(k >= 5)*(p >= 5)*sin(x'@x)^2)", {"n": 5, "k": 5, "p": 5}),
    ("d/dx sum(A@x) where A: matrix(m, n)",
     "ones(m)'@A*(1 + (m >= n)*(m <= n)*sin(sum(x))^2)", None),
    ("d/dx x'@x where x: vector(n); B: matrix(k, p)",
     "2*x'*(1 + (n >= 20)*(k >= 20)*(p >= 20)*sin(x'@x)^2)", {"n": 20, "k": 20, "p": 20}),
])
def test_check_tries_every_dimension_large_or_equal_together(request_, claim, at):
    v = mcalc.check(request_, claim)
    assert not v.holds and v.decided_by == "counterexample", v.reason
    sizes = v.counterexample["sizes"]
    if at is None:
        assert sizes["m"] == sizes["n"]
    else:
        assert all(sizes[d] >= s for d, s in at.items())
    x = np.array(v.counterexample["values"]["x"], ndmin=1)
    got = np.array(v.counterexample["claim"], ndmin=1)
    want = np.array(v.counterexample["derivative"], ndmin=1)
    if "x'@x" in request_:
        np.testing.assert_allclose(want, 2 * x, rtol=1e-12)
        np.testing.assert_allclose(got, 2 * x * (1 + np.sin(x @ x) ** 2), rtol=1e-9)


# A kink whose argument crosses 0 only in a narrow window around a peak: no sign change
# among the points tried, so the window was never met and the claim held by sampling.

@pytest.mark.parametrize("extra, inside", [
    ("(cos(x) > 0.9999999999)", lambda x: np.cos(x) > 0.9999999999),
    ("relu(sin(x) - 0.9999999)", lambda x: np.sin(x) > 0.9999999),
    ("relu(1e-10 - (x - 3)^2)", lambda x: (x - 3) ** 2 < 1e-10),
    ("(exp(-x^2) > 0.99999999)", lambda x: np.exp(-x * x) > 0.99999999),
])
def test_check_finds_a_difference_in_a_narrow_window(extra, inside):
    v = mcalc.check("d/dx x^2", f"2*x + {extra}")
    assert not v.holds and v.decided_by == "counterexample", v.reason
    x = v.counterexample["values"]["x"]
    assert inside(x)
    assert v.counterexample["derivative"] == pytest.approx(2 * x, rel=1e-12)


def test_a_kink_that_only_touches_zero_still_holds():
    v = mcalc.check("d/dx x^2", "2*x + relu(-x^2)")          # relu(-x^2) is 0 everywhere
    assert v.holds, v.reason


def test_check_finds_a_kink_at_the_end_of_the_float_range():
    for claim in ("cos(x)*(1 + (x > 1e300))", "cos(x)*(1 + (x < -1e300))"):
        v = mcalc.check("d/dx sin(x)", claim)
        assert not v.holds and abs(v.counterexample["values"]["x"]) > 1e300, v.reason


# -- a bad --seed is bad input (exit 2, one line), not an internal error -----------------

@pytest.mark.parametrize("seed", ["-1", "-5"])
def test_a_negative_seed_is_a_usage_error(seed):
    r = run("check", "--seed", seed, "d/dx x", "1")
    err = r.stderr.decode()
    assert r.returncode == 2 and "internal error" not in err and "--seed" in err
    assert err.count("\n") == 1


def test_a_negative_seed_raises_mcalc_error_in_the_api():
    with pytest.raises(mcalc.McalcError, match="seed"):
        mcalc.check("d/dx x", "1", seed=-1)


@pytest.mark.parametrize("args", [("d/dx x", None), ("d/dx x", 1), (None, "1"),
                                  (b"d/dx x", "1")])
def test_api_check_refuses_non_text_with_a_type_error(args):
    with pytest.raises(TypeError, match="str"):
        mcalc.check(*args)


@pytest.mark.parametrize("request_", [None, b"d/dx x", 3])
def test_api_derive_refuses_non_text_with_a_type_error(request_):
    with pytest.raises(TypeError, match="str"):
        mcalc.derive(request_)


def test_function_takes_every_variable_the_numpy_expression_uses():
    # x is declared but not in the body: the result is a zero row of x's size, and the
    # numpy expression reads that size off x — function() must take x as well
    d = mcalc.derive("d/dx y where x: vector(n)")
    x = np.ones(3)
    want = eval(d.numpy, {"np": np, "x": x, "y": 2.0})
    got = d.function()(x=x, y=2.0)
    assert np.shape(got) == np.shape(want) == (3,)
    np.testing.assert_array_equal(got, want)


# A claim undefined everywhere (a division by zero, the inverse of a zero matrix) where
# the derivative is defined does not hold — the canonical form had multiplied it by 0 and
# "proved" it.

@pytest.mark.parametrize("request_, claim", [
    ("d/dx x", "1 + 0/(x - x)"),
    ("d/dx x", "1 + 0*(1/0)"),
    ("d/dX tr(X)", "I + 0*inv(X - X)"),
    ("d/dx sum(x)", "ones(n)' + 0*(x/(x - x))'"),
])
def test_a_claim_undefined_everywhere_does_not_hold(request_, claim):
    v = mcalc.check(request_, claim)
    assert not v.holds and v.decided_by == "counterexample", v.reason
    assert "not defined" in v.reason
    assert run("check", request_, claim).returncode == 1


@pytest.mark.parametrize("request_, claim", [
    ("d/dx log(x)", "1/x"), ("d/dX logdet(X)", "inv(X)"), ("d/dx x^3", "3*x^4/x^2"),
    ("d/dx x", "1 + 0*x^(-1)")])               # undefined at a point only: a measure zero
def test_claims_with_divisions_still_hold(request_, claim):
    assert mcalc.check(request_, claim).holds


def test_json_always_has_where():
    # the contract's schema lists "where"; a result with no names gives {} (it was left out)
    for request, where in [("d/dx sin(x)", {}), ("d/dx x'@A@x", {})]:
        obj = json.loads(run("diff", "--format", "json", request).stdout)
        assert obj["where"] == where
    deep = "d/dW1 sum((" + "tanh(W2@tanh(W1@x + b1) + b2)" + " - y)^2)"
    obj = json.loads(run("diff", "--format", "json", deep).stdout)
    assert isinstance(obj["where"], dict)
    assert list(obj)[:3] == ["request", "wrt", "layout"]


def test_a_vec_form_by_stacked_scalars_says_so():
    # the shape line named ∂vec(X) for d/d(a, b), where there is no X
    obj = json.loads(run("diff", "--format", "json", "d/d(a, b) [[a, b], [b, a]]").stdout)
    assert obj["vec_form"] and obj["shape_text"] == "4×2 vec form ∂vec(F)/∂(a, b), numerator layout"
    obj = json.loads(run("diff", "--format", "json", "d/dX A@X@B").stdout)
    assert obj["shape_text"].startswith("m*p×k*n vec form ∂vec(F)/∂vec(X)")
