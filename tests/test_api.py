"""The public Python API (contract, "Python API"): mcalc.derive, mcalc.check and the
objects they return. Numbers are checked against central finite differences of the
expression, at random points and sizes."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import mcalc
from mcalc.pipeline import derive as internal_derive
from mcalc.printing.numpy_code import to_numpy
from numeric import assert_close, evaluate, finite_difference, random_sizes, random_values

PUBLIC = ("derive", "check", "Derivation", "Verdict", "Step", "McalcError")


def test_every_public_name_is_exported_and_documented():
    for name in PUBLIC:
        obj = getattr(mcalc, name)
        assert inspect.getdoc(obj), name
    for cls in (mcalc.Derivation, mcalc.Verdict):
        for attr, member in vars(cls).items():
            if attr.startswith("_") and attr not in ("_repr_latex_", "_repr_html_",
                                                     "_repr_markdown_"):
                continue
            doc = inspect.getdoc(member.fget if isinstance(member, property) else
                                 getattr(member, "func", member))
            assert doc, f"{cls.__name__}.{attr}"
    assert set(PUBLIC) <= set(dir(mcalc))
    with pytest.raises(AttributeError):
        mcalc.no_such_name  # noqa: B018


def test_import_mcalc_loads_nothing_heavy():
    code = ("import sys, mcalc; print(sorted(m for m in ('mcalc.api', 'mcalc.pipeline', "
            "'numpy', 'sympy', 'latex2mathml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_derive_gives_strings_of_the_request_language():
    d = mcalc.derive("d/dw sum(w*x) + b")
    assert isinstance(d, mcalc.Derivation)
    assert d.result == "x'"
    assert d.shape == ("1", "n")
    assert d.types == {"w": "vector(n)", "x": "vector(n)", "b": "scalar"}
    assert d.latex == r"\mathbf{x}^{T}"
    assert d.numpy == "x"
    assert d.where == {}
    assert d.request == "d/dw sum(w*x) + b"
    assert "x'" in repr(d) and "request: d/dw sum(w*x) + b" in str(d)


def test_options_layout_method_and_types():
    d = mcalc.derive("d/dx x'@A@x", layout="denominator")
    assert d.result == "(A + A')@x" and d.shape == ("n", "1")
    d = mcalc.derive("d/dx a*x", types=["a: vector(n)"])
    assert d.types["a"] == "vector(n)"
    assert mcalc.derive("d/dx a*x", types="a: vector(n)").types["a"] == "vector(n)"
    assert mcalc.derive("d/dX tr(X)", method="chain").to_json()["method"] == "chain"
    assert mcalc.derive("d/dX tr(X)", method="definition").to_json()["method"] == "definition"


def test_steps_are_step_records_with_the_json_fields():
    d = mcalc.derive("d/dx sin(x^2)")
    js = d.to_json()
    assert len(d.steps) == len(js["steps"]) > 0
    for step, raw in zip(d.steps, js["steps"]):
        assert isinstance(step, mcalc.Step)
        assert (step.kind, step.rule, step.source, step.text, step.latex) == \
            (raw["kind"], raw["rule"], raw["source"], raw["text"], raw["latex"])
        assert step.eq == raw.get("eq")
        assert step.eq is None or isinstance(step.eq, dict)
    with pytest.raises(Exception):
        d.steps[0].kind = "x"                       # immutable


def test_to_json_is_the_cli_json_and_a_copy():
    from click.testing import CliRunner

    from mcalc.cli import main
    out = CliRunner().invoke(main, ["diff", "--format", "json", "d/dX tr(A@X@B)"]).output
    d = mcalc.derive("d/dX tr(A@X@B)")
    assert d.to_json() == json.loads(out)
    d.to_json()["result"] = "changed"
    assert d.result == d.to_json()["result"] != "changed"


def test_large_results_have_where_names():
    body = "tanh(W1@x + b1)"
    for k in range(2, 6):
        body = f"tanh(W{k}@{body} + b{k})"
    d = mcalc.derive(f"d/dW1 sum(({body} - y)^2)")
    assert d.where and all(k.startswith("t") for k in d.where)
    assert d.to_json()["where"] == d.where


# ---- function(): mcalc's own interpreter against finite differences --------------------

FUNCTION_CASES = [
    ("d/dx sin(x^2)", "numerator", False),
    ("d/dw sum(w*x) + b", "numerator", False),
    ("d/dx x'@A@x", "denominator", False),
    ("d/dx softmax(x)", "numerator", False),
    ("d/dX tr(A@X@B)", "numerator", False),
    ("d/dX log(det(X))", "denominator", False),
    ("d/dX A@X@B", "numerator", False),
    ("d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)", "denominator", False),
    ("d/dW1 sum((W2@tanh(W1@x + b1) + b2 - y)^2)", "numerator", False),
    ("d/dx log(x) + sqrt(x)", "numerator", True),
]


@pytest.mark.parametrize("request_text,layout,positive", FUNCTION_CASES,
                         ids=[c[0] for c in FUNCTION_CASES])
@pytest.mark.parametrize("seed", [1, 2])
def test_function_matches_finite_differences(request_text, layout, positive, seed):
    rng = np.random.default_rng(seed)
    d = mcalc.derive(request_text, layout=layout)
    inner = internal_derive(request_text, (), layout)
    sizes = random_sizes({x for t in d.types.values() for x in _dims(t)}, rng)
    values = random_values(d.types, sizes, rng, positive=positive)
    got = d.function()(**values)
    f_np = to_numpy(inner.expr, inner.dims)
    expected = finite_difference(lambda v: evaluate(f_np, v), values, inner.wrt[0], layout)
    assert_close(got, expected, what=request_text)
    assert np.ndim(got) == np.ndim(evaluate(d.numpy, values))


def test_function_of_second_and_stacked_derivatives():
    rng = np.random.default_rng(5)
    A, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    H = mcalc.derive("d^2/dx^2 x'@A@x").function()(x=x, A=A)
    assert_close(H, A + A.T)
    J = mcalc.derive("d/d(x, y) [3*x^2*y, 2*x + y^8]").function()(x=0.5, y=-1.5)
    assert_close(J, np.array([[6 * 0.5 * -1.5, 3 * 0.25], [2.0, 8 * (-1.5) ** 7]]))
    K = mcalc.derive("d/dX A@X@B").function()
    A, X, B = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert_close(K(A=A, X=X, B=B), np.kron(B.T, A))              # the vec form


def _dims(t: str):
    inside = t.partition("(")[2].rstrip(")")
    return [p.strip() for p in inside.split(",") if p.strip()]


def test_function_value_convention_and_errors():
    f = mcalc.derive("d/dx sum(x^2)").function()            # scalar by vector: 1-D
    out = f(x=np.array([1.0, 2.0, 3.0]))
    assert out.shape == (3,) and np.allclose(out, [2, 4, 6])
    assert isinstance(mcalc.derive("d/dx x^3").function()(x=2.0), float)
    g = mcalc.derive("d/dX tr(X'@X)").function()            # scalar by matrix: 2-D
    assert g(X=np.ones((2, 3))).shape == (3, 2)
    with pytest.raises(TypeError, match="missing"):
        f()
    with pytest.raises(TypeError, match="unexpected"):
        f(x=np.ones(3), z=1.0)
    with pytest.raises(mcalc.McalcError, match="dimension n"):
        mcalc.derive("d/dx A@x + y").function()(A=np.ones((2, 3)), x=np.ones(4), y=np.ones(2))
    with pytest.raises(mcalc.McalcError, match="2-D"):
        g(X=np.ones(3))
    h = mcalc.derive("d/dx sum(x)*n + sum(ones(k)) where x: vector(n)").function()
    assert np.allclose(h(x=np.ones(3)), [3, 3, 3])          # n read off x
    k = mcalc.derive("d/dx x*sum(ones(k))").function()      # k given by name
    assert k(x=1.0, k=4) == 4.0
    assert "x" in f.__doc__


# ---- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: mcalc.derive("d/dx sin("),
    lambda: mcalc.derive("d/dx x", layout="sideways"),
    lambda: mcalc.derive("d/dx x", method="guess"),
    lambda: mcalc.derive("d/dx A*x where A: matrix(m, n); x: vector(k)"),
    lambda: mcalc.check("d/dx x", ""),
    lambda: mcalc.check("d/dx x", "1", layout="sideways"),
    lambda: mcalc.check("x", "1"),
])
def test_bad_input_raises_mcalc_error(call):
    with pytest.raises(mcalc.McalcError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert info.value.column is None or isinstance(info.value.column, int)


def test_error_column_points_at_the_problem():
    with pytest.raises(mcalc.McalcError) as info:
        mcalc.derive("d/dx sin(x) + $")
    assert info.value.column == 15


# ---- check -------------------------------------------------------------------------

def test_check_holds_symbolically():
    v = mcalc.check("d/dx x'@A@x", "(A + A')@x", layout="denominator")
    assert isinstance(v, mcalc.Verdict)
    assert v and v.holds is True
    assert v.decided_by == "symbolic"
    assert v.derivative == "(A + A')@x"
    assert v.counterexample is None and v.reason


def test_check_counterexample_is_a_real_one():
    v = mcalc.check("d/dx x'@A@x", "2*A@x", layout="denominator", seed=3)
    assert not v and v.holds is False
    assert v.decided_by == "counterexample"
    ce = v.counterexample
    A, x = np.array(ce["values"]["A"]), np.array(ce["values"]["x"])
    assert np.allclose(ce["derivative"], (A + A.T) @ x)
    assert np.allclose(ce["claim"], 2 * A @ x)
    assert "does not hold" in repr(v) and "does not hold" in str(v)


def test_check_by_shape_exact_and_types():
    v = mcalc.check("d/dx x'@A@x", "(A + A')@x")           # numerator: a row is wanted
    assert not v and v.decided_by == "shape"
    v = mcalc.check("d/dx x'@S@x", "2*x'@S", types=["S: symmetric(n)"])
    assert v
    v = mcalc.check("d/dx x'@x", "2*x'", exact=True)
    assert v and v.decided_by == "exact"


def test_check_sampling_when_no_proof():
    v = mcalc.check("d/dx relu(x)", "(x >= 0)")
    assert v and v.decided_by in ("sampling", "symbolic")


# ---- notebook display -------------------------------------------------------------------

def test_rich_reprs():
    d = mcalc.derive("d/dw sum(w*x) + b")
    tex = d._repr_latex_()
    assert r"\begin{align*}" in tex and r"\mathbf{x}^{T}" in tex
    md = d._repr_markdown_()
    assert "$$" in md and r"\mathbf{x}^{T}" in md and "`d/dw sum(w*x) + b`" in md
    html = d._repr_html_()
    assert html.count("<math") >= len(d.steps) and "<script" not in html
    v = mcalc.check("d/dx sin(x)", "cos(x)")
    assert v._repr_markdown_().startswith("**holds**")
