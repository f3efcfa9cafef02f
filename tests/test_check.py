"""`mcalc check` (issue #4): no false accepts, no false rejects, the right diagnosis, exit
status 0/1/2 for single checks and batches, JSON lines, and the end-to-end CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mcalc import expr as E
from mcalc.pipeline import derive, typed
from mcalc.canonical import canonical
from mcalc.checker import CheckResult, check, check_batch, derivative_shape, worst_status
from mcalc.check_cli import register
from mcalc.cli import main
from mcalc.errors import McalcError
from mcalc.evaluate import evaluate, to_contract
from mcalc.printing.text import to_text
from installed import installed_mcalc

register(main)                       # idempotent: cli.py may already have added `check`

# (request, wrong claim, layout, the diagnosis it must give)
WRONG = [
    # transposes: the other layout's form
    ("d/dx x'@A@x", "x'@(A + A')", "denominator", "transposed (the numerator-layout form)"),
    ("d/dx x'@A@x", "(A + A')@x", "numerator", "transposed (the denominator-layout form)"),
    ("d/dx A@x where A: matrix(m, n)", "A'", "numerator",
     "transposed (the denominator-layout form)"),
    ("d/dX tr(A@X)", "A", "denominator", "transposed (the numerator-layout form)"),
    ("d/dX det(X)", "det(X)*inv(X)", "denominator", "transposed (the numerator-layout form)"),
    ("d/dX logdet(X)", "inv(X)", "denominator", "transposed (the numerator-layout form)"),
    ("d/dX tr(inv(X))", "-inv(X)@inv(X)", "denominator", "transposed"),
    # constant factors and signs
    ("d/dx norm(x)^2", "x", "denominator", "off by a factor of 1/2"),
    ("d/dx x'@S@x where S: symmetric(n)", "S@x", "denominator", "off by a factor of 1/2"),
    ("d/dx sum(x^3)", "x^2", "denominator", "off by a factor of 1/3"),
    ("d/dx x^2", "4*x", "numerator", "off by a factor of 2"),
    ("d/dx mean(x) where x: vector(N)", "ones(N)'", "numerator", "off by a factor of N"),
    ("d/dx norm(y - A@x)^2", "2*A'@(y - A@x)", "denominator", "wrong sign"),
    ("d/dx log(x)", "-1/x", "numerator", "wrong sign"),
    # missing terms; x'Ax with A not symmetric
    ("d/dx x'@A@x", "A@x", "denominator", "missing the A' term A'@x: is A symmetric?"),
    ("d/dx x'@A@x", "2*A@x", "denominator", "missing the A' term: is A symmetric?"),
    ("d/dx x'@A@x", "2*x'@A", "numerator", "missing the A' term: is A symmetric?"),
    ("d/dx x'@x + a'@x", "2*x", "denominator", "missing the term a"),
    ("d/dx sigmoid(x)", "sigmoid(x)*(1 + sigmoid(x))", "numerator",
     "an extra term 2*sigmoid(x)^2"),
    # seed 004's tr(X^-1): -(X^-2)' is -inv(X)'@inv(X)' in denominator layout
    ("d/dX tr(inv(X))", "-inv(X)'@inv(X)", "denominator",
     "a transpose is wrong: inv(X) should be inv(X)'"),
    # relu: the wrong indicator
    ("d/dx relu(x) where x: vector(n)", "diag(x < 0)", "numerator",
     "wrong indicator: (x < 0) should be (x > 0)"),
    ("d/dw max(0, w'@x + b)", "(w'@x + b < 0)*x", "denominator", "wrong indicator"),
    ("d/dw max(0, w'@x + b)", "(b > 0)*x", "denominator", "the values differ"),
]

# (request, right claim in another form, layout)
RIGHT = [
    ("d/dx x'@A@x", "A@x + A'@x", "denominator"),
    ("d/dx x'@A@x", "(A + A')@x", "denominator"),
    ("d/dx x'@A@x", "x'@A + x'@A'", "numerator"),
    ("d/dx x'@A@x", "(A@x)' + x'@A", "numerator"),
    ("d/dx x'@S@x where S: symmetric(n)", "2*S@x", "denominator"),
    ("d/dx x'@S@x where S: symmetric(n)", "S@x + S'@x", "denominator"),
    ("d/dy y'@A@x", "(A@x)'", "numerator"),
    ("d/dy (A@x)'@y", "x'@A'", "numerator"),
    ("d/dt t*mean(x) where x: vector(N); t: scalar", "sum(x)/N", "numerator"),
    ("d/dx mean(x) where x: vector(N)", "ones(N)'/N", "numerator"),
    ("d/dw mean(w*x) where w, x: vector(N)", "x'/N", "numerator"),
    ("d/dX tr(inv(X))", "-inv(X)'@inv(X)'", "denominator"),
    ("d/dX tr(inv(X))", "-(inv(X)@inv(X))'", "denominator"),
    ("d/dX tr(inv(X))", "-inv(X)@inv(X)", "numerator"),
    ("d/dx relu(x) where x: vector(n)", "diag(x > 0)", "numerator"),
    ("d/dw max(0, w'@x + b)", "(w'@x + b > 0)*x", "denominator"),
    ("d/dw max(0, w'@x + b)", "(0 < b + x'@w)*x'", "numerator"),
    ("d/dx norm(x)^2", "2*x", "denominator"),
    ("d/dx norm(x)^2", "x + x", "denominator"),
    ("d/dX tr(A@X)", "A'", "denominator"),
    ("d/dX det(X)", "det(X)*inv(X)'", "denominator"),
    ("d/dX logdet(X)", "inv(X')", "denominator"),
    ("d/dx sum(x^3)", "3*x^2", "denominator"),
    ("d/dx log(x)", "1/x", "numerator"),
    ("d/dx sigmoid(x)", "sigmoid(x)*(1 - sigmoid(x))", "numerator"),
    ("d/dx sigmoid(x)", "exp(-x)/(1 + exp(-x))^2", "numerator"),
    ("d/dx norm(y - A@x)^2", "2*A'@(A@x - y)", "denominator"),
    ("d/dx norm(y - A@x)^2", "-2*A'@(y - A@x)", "denominator"),
    ("d/dX A@X@B", "kron(B', A)", "numerator"),
    ("d^2/dx^2 x'@A@x", "A + A'", "numerator"),
    ("d/d(x, y) 3*x^2*y", "[6*x*y, 3*x^2]'", "numerator"),
    ("d/dx sum(abs(x))", "sign(x)", "denominator"),
    ("d/dx sum(y) where x, y: vector(n)", "0", "numerator"),
    ("d/dx sin(x)^2", "2*sin(x)*cos(x)", "numerator"),
    ("d/dx sin(x)^2", "sin(2*x)", "numerator"),
]


def _id(case):
    return f"{case[0]} ;; {case[1]} [{case[2]}]"


# ---- no false accepts, the right diagnosis -------------------------------------------

@pytest.mark.parametrize("case", WRONG, ids=_id)
def test_wrong_claims_are_rejected_with_the_diagnosis(case):
    request, claim, layout, cause = case
    r = check(request, claim, layout=layout)
    assert r.holds is False and r.status == 1
    assert cause in r.cause, r.text()
    assert cause in r.reason
    if r.decided_by != "shape":                  # a numeric failure shows its counterexample
        ce = r.counterexample
        assert ce is not None and set(ce.values) == set(r.types)
        assert all(1 <= s <= 9 for s in ce.sizes.values())
        assert not np.allclose(np.asarray(ce.expected), np.asarray(ce.claimed))


# ---- no false rejects ----------------------------------------------------------------

@pytest.mark.parametrize("case", RIGHT, ids=_id)
def test_right_claims_in_other_forms_hold(case):
    request, claim, layout = case
    r = check(request, claim, layout=layout)
    assert r.holds is True and r.status == 0, r.text()
    assert r.decided_by in ("symbolic", "sampling")


@pytest.mark.parametrize("request_text,claim,layout", [
    ("d/dx x'@A@x", "A@x + A'@x", "denominator"),         # the issue's own examples
    ("d/dx x'@S@x where S: symmetric(n)", "S@x + S'@x", "denominator"),
    ("d/dy y'@A@x", "(A@x)'", "numerator"),
    ("d/dt t*mean(x) where x: vector(N); t: scalar", "sum(x)/N", "numerator"),
    ("d/dX tr(inv(X))", "-(inv(X)@inv(X))'", "denominator"),
    # vec is linear and commutes with element-wise products: one diagonal or two
    ("d/dX sin(X)*X", "diag(vec(sin(X))) + diag(vec(X*cos(X)))", "numerator"),
    ("d/dX sin(X)*X", "diag(vec(sin(X))) + diag(vec(X)*vec(cos(X)))", "numerator"),
    ("d/dX X*log(X)", "diag(vec(log(X))) + eye(m*n)", "numerator"),
])
def test_textbook_rewrites_are_decided_symbolically(request_text, claim, layout):
    r = check(request_text, claim, layout=layout)
    assert (r.holds, r.decided_by) == (True, "symbolic")
    assert r.reason.startswith("symbolic:")


@pytest.mark.parametrize("request_text,claim,identity", [
    ("d/dx sigmoid(x)", "exp(-x)/(1 + exp(-x))^2", "exp(u)/(1 + exp(u)) = sigmoid(u)"),
    ("d/dx log(1 + exp(x))", "exp(x)/(1 + exp(x))", "exp(u)/(1 + exp(u)) = sigmoid(u)"),
    ("d/dx abs(x)^2", "2*abs(x)*sign(x)", "abs(u)*sign(u) = u"),
    ("d/dx x*abs(x)", "abs(x) + x*sign(x)", "abs(u)*sign(u) = u"),
])
def test_claims_in_the_other_form_of_an_identity_are_proved(request_text, claim, identity):
    """The canonical form alone does not see these (sigmoid is a function of its own
    there); the claim brought to textbook form through the table of identities does."""
    r = check(request_text, claim)
    assert (r.holds, r.decided_by) == (True, "symbolic")
    assert "in textbook form" in r.reason and identity in r.reason


@pytest.mark.parametrize("request_text,claim", [
    ("d/dx sigmoid(x)", "exp(-x)/(1 + exp(-x))^3"),
    ("d/dx abs(x)^2", "2*abs(x)*sign(x) + 1e-9"),
    ("d/dx x*abs(x)", "2*x"),
])
def test_claims_near_an_identity_still_fail(request_text, claim):
    r = check(request_text, claim)
    assert not r.holds and r.decided_by in ("counterexample", "symbolic")


def test_the_engine_printed_result_always_holds():
    for text in ("d/dx x'@A@x", "d/dX tr(A@X@B)", "d/dw sum(log(1 + exp(-y*(X@w))))",
                 "d/dx softmax(x)", "d^2/dx^2 logsumexp(x)", "d/dX inv(X)"):
        for layout in ("numerator", "denominator"):
            d = derive(text, layout=layout)
            assert check(text, to_text(d.result), layout=layout).holds, (text, layout)


# ---- the checker does not take the engine's word --------------------------------------

def test_a_wrong_engine_result_cannot_make_a_wrong_claim_hold(monkeypatch):
    """If the engine said 2*A@x for d/dx x'Ax, the claim 2*A@x must still not hold:
    the engine is checked against finite differences first, and check then does not
    decide (finite differences alone are never the truth)."""
    from mcalc.derivation import replace
    import mcalc.pipeline as api
    real = api.derive_typed

    def broken(req, body, typing, layout, method, steps=True):
        d = real(req, body, typing, layout, method, steps)
        wrong = typed("d/dx x'@A@x", (), "2*A@x")[2]
        return replace(d, result=wrong)
    monkeypatch.setattr(api, "derive_typed", broken)
    with pytest.raises(McalcError, match="disagrees with finite differences"):
        check("d/dx x'@A@x", "2*A@x", layout="denominator")
    with pytest.raises(McalcError, match="disagrees with finite differences"):
        check("d/dx x'@A@x", "(A + A')@x", layout="denominator")


# ---- shapes ------------------------------------------------------------------------

def test_shape_reason_names_both_shapes_and_the_layout():
    r = check("d/dx x'@A@x", "(A + A')@x")
    assert r.decided_by == "shape"
    assert "the claim is n×1, the derivative is 1×n in numerator layout" in r.reason
    r = check("d/dx x'@A@x", "A", layout="denominator")
    assert r.cause == "wrong shape: n×n instead of n×1"


def test_derivative_shape_follows_the_contract():
    assert derivative_shape(("1", "1"), ("n", "1"), "numerator") == ("1", "n")
    assert derivative_shape(("1", "1"), ("m", "n"), "denominator") == ("m", "n")
    assert derivative_shape(("1", "1"), ("m", "n"), "numerator") == ("n", "m")
    assert derivative_shape(("m", "1"), ("n", "1"), "numerator") == ("m", "n")
    assert derivative_shape(("p", "q"), ("m", "n"), "numerator") == ("p*q", "m*n")
    assert derivative_shape(("p", "q"), ("1", "1"), "denominator") == ("q", "p")


# ---- the canonical form and the evaluator ------------------------------------------

CANON_CASES = ["d/dx x'@A@x", "d/dX tr(inv(X))", "d/dx norm(y - A@x)^2",
               "d/dw max(0, w'@x + b)", "d/dX det(X)^2 + tr(X')", "d/dX A@X@B",
               "d/dx x*sum(x)", "d/dx softmax(x)", "d/dW -y'@log(softmax(W@x))",
               "d/dy mean(y) - sum(y)/N where y: vector(N)", "d^2/dx^2 sin(x)*x^3"]


@pytest.mark.parametrize("text", CANON_CASES)
def test_canonical_form_keeps_the_value(text):
    rng = np.random.default_rng(7)
    for layout in ("numerator", "denominator"):
        d = derive(text, layout=layout)
        for e in (d.expr, d.result):
            c = canonical(e)
            sizes = {n: int(rng.integers(2, 6)) for n in _dim_names(d.types)}
            values = _values(d.types, sizes, rng)
            assert np.allclose(evaluate(e, values, sizes), evaluate(c, values, sizes),
                               rtol=1e-9, atol=1e-12), (to_text(e), to_text(c))


def test_canonical_forms_of_equal_textbook_forms_are_equal():
    def canon(claim, req="d/dx x'@A@x where S: symmetric(n); y: vector(n); B, C: matrix(n, n)"):
        return canonical(typed(req, (), claim)[2])
    assert canon("A@x + A'@x") == canon("(A + A')@x")
    assert canon("(A@x)'") == canon("x'@A'")
    assert canon("S'@x") == canon("S@x")
    assert canon("tr(A@B@C)") == canon("tr(C'@B'@A')") == canon("tr(B@C@A)")
    assert canon("x'@y") == canon("y'@x") == canon("sum(x*y)") == canon("dot(x, y)")
    assert canon("(x < 0)") == canon("(0 > x)")
    assert canon("inv(A)@A@x") == canon("x")
    assert canon("A@x") != canon("A'@x")
    assert canon("vec(2*B*C^2 + B)") == canon("2*vec(B)*vec(C)^2 + vec(B)")
    assert canon("vec(B/B)") == canon("ones(n*n)")
    assert canon("vec(B')") != canon("vec(B)")


def test_evaluate_agrees_with_the_numpy_printer():
    from mcalc.printing.numpy_code import to_numpy
    rng = np.random.default_rng(3)
    for text in CANON_CASES:
        d = derive(text, layout="denominator")
        sizes = {n: int(rng.integers(2, 6)) for n in _dim_names(d.types)}
        values = {k: to_contract(v) for k, v in _values(d.types, sizes, rng).items()}
        code = to_numpy(d.result, d.dims, {e: n for n, e in d.where})
        expected = eval(code, {"np": np, **values})          # noqa: S307 - generated code
        assert np.allclose(evaluate(d.result, values, sizes), expected), text


def _dim_names(types):
    out = set()
    for t in types.values():
        inside = t[t.find("(") + 1:t.rfind(")")] if "(" in t else ""
        out.update(x.strip() for x in inside.split(",") if x.strip() and not x.strip().isdigit())
    return sorted(out)


def _values(types, sizes, rng):
    from mcalc.types import parse_dim_size
    out = {}
    for name, t in types.items():
        kind = t.split("(")[0]
        dims = [x.strip() for x in t[t.find("(") + 1:-1].split(",")] if "(" in t else []
        if kind == "scalar":
            r = c = 1
        elif kind == "vector":
            r, c = parse_dim_size(dims[0], sizes), 1
        elif kind == "symmetric":
            r = c = parse_dim_size(dims[0], sizes)
        else:
            r, c = parse_dim_size(dims[0], sizes), parse_dim_size(dims[1], sizes)
        m = rng.standard_normal((r, c))
        if kind == "symmetric":
            m = (m + m.T) / 2
        if r == c and r > 1:
            m += r * np.eye(r)
        out[name] = m
    return out


# ---- bad input: exit status 2 --------------------------------------------------------

@pytest.mark.parametrize("request_text,claim,message", [
    ("d/dx x'@A@x", "A@@x", "error"),
    ("x'@A@x", "A@x", "derivative request"),
    ("d/dx x'@A@x", "B@x", "B, which the request does not have"),
    ("d/dx x'@A@x", "foo(x)", "unknown function"),
    ("d/dx x'@A@x", "", "empty"),
])
def test_bad_input_raises(request_text, claim, message):
    with pytest.raises(McalcError) as info:
        check(request_text, claim)
    assert message in info.value.one_line()


def test_same_seed_same_counterexample():
    a = check("d/dx x'@A@x", "A@x", layout="denominator", seed=5)
    b = check("d/dx x'@A@x", "A@x", layout="denominator", seed=5)
    assert a.counterexample.sizes == b.counterexample.sizes
    assert np.array_equal(a.counterexample.claimed, b.counterexample.claimed)


# ---- batch --------------------------------------------------------------------------

BATCH = """\
# comments and blank lines are skipped

d/dx x'@A@x ;; (A + A')@x
d/dx x'@A@x ;; 2*A@x
d/dx x'@A@x ;; A@@x
no separator here
d/dX tr(inv(X)) ;; -inv(X)'@inv(X)'
"""


def test_check_batch_goes_on_after_a_bad_line():
    results = check_batch(BATCH.splitlines(), layout="denominator")
    assert [r.status for r in results] == [0, 1, 2, 2, 0]
    assert worst_status(results) == 2
    assert results[3].error == "error: expected REQUEST ;; CLAIM"
    assert results[0].line() == "holds (proved): d/dx x'@A@x ;; (A + A')@x"
    assert results[1].line().startswith("does not hold: d/dx x'@A@x ;; 2*A@x  — missing the "
                                        "A' term: is A symmetric?")
    assert results[2].line().startswith("error: d/dx x'@A@x ;; A@@x  — error")
    assert worst_status(results[:2]) == 1 and worst_status(results[:1]) == 0


# ---- the CLI (click's runner) ---------------------------------------------------------

def run(*args, stdin=None):
    return CliRunner().invoke(main, ["check", *args], input=stdin)


def test_cli_exit_status_single():
    ok = run("d/dx x'@A@x", "(A + A')@x", "--layout", "denominator")
    assert ok.exit_code == 0 and ok.output.startswith("holds (proved): ")
    bad = run("d/dx x'@A@x", "2*A@x", "--layout", "denominator")
    assert bad.exit_code == 1 and bad.output.startswith("does not hold: ")
    assert "counterexample" in bad.output and "derivative = " in bad.output
    err = run("d/dx x'@A@x", "A@@x")
    assert err.exit_code == 2
    assert len(err.output.strip().splitlines()) == 1 and "Traceback" not in err.output


def test_cli_claim_with_a_leading_minus_and_type_option():
    r = run("d/dX tr(inv(X))", "-inv(X)'@inv(X)'", "--layout", "denominator")
    assert r.exit_code == 0, r.output
    r = run("-t", "S: symmetric(n)", "d/dx x'@S@x", "-2*S@x", "--layout=denominator")
    assert r.exit_code == 1 and "wrong sign" in r.output


def test_cli_json_single():
    r = run("d/dx x'@A@x", "A@x", "--layout", "denominator", "--format", "json")
    assert r.exit_code == 1
    obj = json.loads(r.output)
    assert obj["request"] == "d/dx x'@A@x" and obj["claim"] == "A@x"
    assert obj["holds"] is False and "missing the A' term" in obj["reason"]
    assert obj["decided_by"] == "counterexample" and "counterexample" in obj


def test_cli_batch_file_plain_and_json(tmp_path):
    f = tmp_path / "hand.txt"
    f.write_text(BATCH, encoding="utf-8")
    r = run("--batch", str(f), "--layout", "denominator")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 5
    assert [ln.split(":")[0] for ln in lines] == ["holds (proved)", "does not hold", "error",
                                                   "error", "holds (proved)"]
    r = run("--batch", str(f), "--layout", "denominator", "--format", "json")
    objs = [json.loads(ln) for ln in r.output.strip().splitlines()]
    assert [o["holds"] for o in objs] == [True, False, None, None, True]
    assert all({"request", "claim", "holds", "reason"} <= set(o) for o in objs)
    assert "error" in objs[2]


def test_cli_batch_stdin_worst_status_is_one():
    r = run("--batch", "-", "--layout", "denominator",
            stdin="d/dx x'@A@x ;; (A + A')@x\nd/dx norm(x)^2 ;; x\n")
    assert r.exit_code == 1
    assert "off by a factor of 1/2" in r.output.splitlines()[1]


def test_cli_batch_with_arguments_is_bad_input():
    r = run("--batch", "-", "d/dx x", "1", stdin="")
    assert r.exit_code == 2


def test_cli_wrong_number_of_arguments():
    assert run("d/dx x").exit_code == 2
    assert run("--bogus", "d/dx x", "1").exit_code == 2


def test_cli_batch_missing_file():
    r = run("--batch", "/nonexistent/file.txt")
    assert r.exit_code == 2 and "cannot read" in r.output


def test_check_result_json_keys():
    r = check("d/dx x^2", "2*x")
    d = r.as_dict()
    assert list(d)[:4] == ["request", "claim", "holds", "reason"]
    assert isinstance(r, CheckResult) and d["holds"] is True


# ---- end to end: the installed executable ---------------------------------------------



def test_installed_mcalc_check_exit_codes(tmp_path):
    exe = installed_mcalc()

    def status(*args, stdin=None):
        p = subprocess.run([exe, "check", *args], capture_output=True, text=True, input=stdin,
                           timeout=120)
        assert "Traceback" not in p.stderr
        return p.returncode, p.stdout, p.stderr

    assert status("d/dx x'@A@x", "(A + A')@x", "--layout", "denominator")[0] == 0
    code, out, _ = status("d/dX tr(inv(X))", "-inv(X)'@inv(X)", "--layout", "denominator")
    assert code == 1 and "inv(X) should be inv(X)'" in out
    code, _, err = status("d/dx x'@A@x", "A@@x")
    assert code == 2 and len(err.strip().splitlines()) == 1
    f = tmp_path / "batch.txt"
    f.write_text("d/dx x'@A@x ;; (A + A')@x\nd/dx norm(x)^2 ;; x\n", encoding="utf-8")
    code, out, _ = status("--batch", str(f), "--layout", "denominator")
    assert code == 1 and len(out.strip().splitlines()) == 2
    code, out, _ = status("--batch", "-", "--format", "json",
                          stdin="d/dx x^2 ;; 2*x\nd/dx x^2 ;; 2*x +\n")
    assert code == 2
    assert [json.loads(ln)["holds"] for ln in out.strip().splitlines()] == [True, None]


def test_check_does_not_import_numpy_until_it_runs():
    code = ("import sys; import mcalc.cli, mcalc.check_cli, mcalc.checker, mcalc.methods.definition; "
            "print('numpy' in sys.modules, 'sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_zero_literal_stands_for_a_zero_array():
    assert check("d/dx sum(y) where x, y: vector(n)", "0").holds
    assert not check("d/dx sum(x) where x: vector(n)", "0").holds
    assert E.zeros(("n", "1")).shape == ("n", "1")
