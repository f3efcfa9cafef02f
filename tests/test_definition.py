"""The definition method (SymPy, component by component): `diff --method definition`,
`check --exact` (it agrees with the numeric decision on the whole check corpus), and the
bounds (a too-large expansion gives up with a one-line message, exit status 2)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from mcalc.methods import definition
from mcalc.pipeline import derive, typed
from mcalc.checker import check
from mcalc.check_cli import register
from mcalc.cli import main
from mcalc.methods.definition import GaveUp, exact_equal
from mcalc.errors import McalcError
from mcalc.printing.plain import render
from mcalc.printing.text import to_text
from test_check import RIGHT, WRONG

register(main)


# ---- diff --method definition ---------------------------------------------------------

@pytest.mark.parametrize("text,layout,component", [
    ("d/dx x'@A@x", "numerator", "∂y/∂x_1 = 2*A_1_1*x_1 + A_1_2*x_2 + A_2_1*x_2"),
    ("d/dw sum(w*x) + b", "numerator", "∂y/∂w_2 = x_2"),
    ("d/dX tr(A@X)", "denominator", "∂y/∂X_2_1 = A_1_2"),
    ("d/dX A@X@B", "numerator", "∂y_1_1/∂X_1_1 = A_1_1*B_1_1"),
    ("d/dw max(0, w'@x + b)", "denominator", "∂y/∂w_1 = x_1*(b + w_1*x_1 + w_2*x_2 > 0)"),
    ("d^2/dx^2 x'@A@x", "numerator", "∂g_1/∂x_2 = A_1_2 + A_2_1"),
    ("d/d(x, y) [3*x^2*y, 2*x + y^8]", "numerator", "∂f_2/∂y = 8*y^7"),
    ("d/dx sin(x^2)", "numerator", "∂y/∂x = 2*x*cos(x^2)"),
])
def test_definition_derivation(text, layout, component):
    d = derive(text, layout=layout, method="definition")
    chain = derive(text, layout=layout)
    assert d.method == "definition"
    assert d.result == chain.result                 # the engine's symbolic result ...
    kinds = [s.kind for s in d.steps]
    assert "component" in kinds and kinds[0] in ("define", "note")
    last = d.steps[-1]
    assert last.kind == "note" and "checked exactly with SymPy" in last.text  # ... confirmed
    assert last.rhs == d.result
    out = render(d)
    assert component in out, out
    assert "definition method: component by component" in out


def test_definition_derivation_shows_a_bounded_number_of_components():
    d = derive("d/dX A@X@B where X: matrix(3, 3)", method="definition")
    components = [s for s in d.steps if s.kind == "component"]
    assert len(components) == definition.SHOWN_COMPONENTS
    assert any("more non-zero components" in s.text for s in d.steps if s.kind == "note")


def test_definition_reports_an_engine_that_disagrees(monkeypatch):
    from mcalc.derivation import replace
    from mcalc.pipeline import derive_typed
    parts = _parts("d/dx x'@A@x")

    def broken():
        d = derive_typed(*parts, "denominator", None)
        return replace(d, result=typed("d/dx x'@A@x", (), "2*A@x")[2])
    with pytest.raises(McalcError, match="disagrees with the chain rule"):
        definition.definition_derivation(*parts, "denominator", broken)


def _parts(text, claim=None):
    req, body, cl, typing = typed(text, (), claim)
    return (req, body, typing) if claim is None else (req, body, cl, typing)


# ---- check --exact agrees with the numeric decision ---------------------------------

@pytest.mark.parametrize("case", WRONG + [c + ("",) for c in RIGHT],
                         ids=lambda c: f"{c[0]} ;; {c[1]} [{c[2]}]")
def test_exact_agrees_with_numeric_on_the_corpus(case):
    request, claim, layout = case[:3]
    numeric = check(request, claim, layout=layout)
    exact = check(request, claim, layout=layout, exact=True)
    assert exact.holds == numeric.holds, exact.text()
    if exact.method != "shape":
        assert exact.method == "exact" and exact.reason.startswith("exact: ")
    if not exact.holds:
        assert exact.cause == numeric.cause         # the numeric stage explains it


def test_exact_equal_direct():
    req, body, cl, typing = _parts("d/dx x'@A@x", "(A + A')@x")
    v = exact_equal(req, body, cl, typing, "denominator")
    assert v.equal and v.detail.endswith("at n = 2 and n = 3")
    req, body, cl, typing = _parts("d/dx x'@A@x", "2*A@x")
    v = exact_equal(req, body, cl, typing, "denominator")
    assert not v.equal and "entry (1, 1)" in v.detail


def test_method_definition_on_check_means_exact():
    r = check("d/dx x'@A@x", "A@x + A'@x", layout="denominator", method="definition")
    assert r.method == "exact" and r.holds


# ---- bounds: it says clearly when it gives up ---------------------------------------

def test_too_large_expansion_gives_up():
    with pytest.raises(GaveUp) as info:
        check("d/dX A@X@B where X: matrix(20, 20)", "kron(B', A)", exact=True)
    msg = info.value.one_line()
    assert msg.startswith("error: the definition method gave up:") and "limit" in msg
    with pytest.raises(GaveUp):
        derive("d/dX A@X@B where X: matrix(20, 20)", method="definition")


def test_time_limit_gives_up():
    req, body, cl, typing = _parts("d/dX tr(inv(X))", "-inv(X)'@inv(X)'")
    with pytest.raises(GaveUp, match="time limit"):
        exact_equal(req, body, cl, typing, "denominator", time_limit=0.0)


def test_cli_exact_gives_up_with_exit_2_and_one_line():
    r = CliRunner().invoke(main, ["check", "--exact", "d/dX A@X@B where X: matrix(20, 20)",
                                  "kron(B', A)"])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and "gave up" in r.output


def test_cli_exact_and_diff_method_definition():
    r = CliRunner().invoke(main, ["check", "--exact", "d/dX tr(inv(X))", "-inv(X)'@inv(X)",
                                  "--layout", "denominator"])
    assert r.exit_code == 1 and "exact:" in r.output and "inv(X) should be inv(X)'" in r.output
    r = CliRunner().invoke(main, ["diff", "d/dX tr(A@X)", "--method", "definition",
                                  "--format", "plain"])
    assert r.exit_code == 0 and "∂y/∂X_1_2 = A_2_1" in r.output


def test_symbolic_results_only_come_from_the_tree():
    """Component steps are Expr trees printed in the request language."""
    d = derive("d/dx x'@A@x", method="definition")
    comps = [s for s in d.steps if s.kind == "component"]
    assert [s.lhs for s in comps] == [("y", "x_1"), ("y", "x_2")]
    assert to_text(comps[1].rhs) == "A_1_2*x_1 + A_2_1*x_1 + 2*A_2_2*x_2"


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("text,stated,arranged", [
    ("d/d(a, b) a^2*b + sin(a*b)", 2, True),   # the gradient's components: ∂y/∂a, ∂y/∂b
    ("d/dx sin(x)*x^3", 1, True),
    ("d^2/dx^2 sin(x)*x^3", 1, False),          # ∂y/∂x; ∂g/∂x comes before g is defined
    ("d/dw w'@x", 0, False),                    # ∂y/∂w_1 = x_1: components, not names
    ("d/da a*n*x where x: vector(n)", 0, False),  # at n = 2 only
    ("d/d(a, b) [[a*b, a], [b, 1]]", 0, True),  # ∂y_1_1/∂a: a component of y
])
def test_component_steps_state_an_equation_where_the_language_can(text, stated, arranged,
                                                                  layout):
    """A component step is an equation (eq: ∂y/∂a, partial, as printed) when it is the whole scalar y by
    a scalar variable, written in the variables alone at the one size there is; a
    component of a vector or matrix (w_1, y_1_1, a component symbol) or one at a named
    size (true at n = 2 only) is no equation of the request language and has none — its
    kind, 'component', says what it is. So is the arranged derivative. Every equation is
    checked by finite differences."""
    import numpy as np
    from stepcheck import check_derivation
    d = derive(text, layout=layout, method="definition")
    components = [s for s in d.steps if s.kind == "component"]
    assert components and sum(s.eq is not None for s in components) == stated
    assert all(s.eq.kind == "partial" for s in components if s.eq is not None)
    note = next(s for s in d.steps if s.text.startswith("arranged"))
    assert (note.eq is not None) == arranged
    inner = len(d.groups) - 1                   # g = the first derivative, of a Hessian
    assert check_derivation(d, np.random.default_rng(len(text))) == \
        2 + stated + arranged + inner            # y, the components, arranged, g, result


@pytest.mark.parametrize("text,again", [
    ("d^2/dx^2 sin(x)*g where x, g: scalar", ["g2"]),     # g is the request's variable
    ("d^3/dx^3 sin(x)", ["g", "g2"]),
    ("d^2/dx^2 sin(x)*g*g2 where x, g, g2: scalar", ["g3"]),
])
def test_a_second_pass_names_the_previous_derivative_afresh(text, again):
    """The pass that differentiates the derivative again calls it by a name of its own
    (`∂g/∂x = -g*sin(x)` with g the variable would be false), the name its definition
    line gives it below, and each pass its own."""
    d = derive(text, method="definition")
    said = [s.text for s in d.steps if s.text.startswith("differentiate again")]
    assert [t.split(": ")[1].split(" = ")[0] for t in said] == again
    comps = [s.lhs[0] for s in d.steps if s.kind == "component"]
    assert set(comps) == {"y"} | set(again)
    defined = [s.lhs for s in d.steps if s.kind == "define"]
    assert defined == ["y"] + again
