"""Every line of every derivation is a true equation: each step's `eq` is checked on its
own (tests/stepcheck.py) — all three methods, both layouts, Hessians and vec forms."""
import re
import zlib

import numpy as np
import pytest

from mcalc import expr as E
from mcalc.derivation import replace
from mcalc.errors import McalcError
from mcalc.pipeline import derive
from stepcheck import check_derivation
from test_engine_numeric import CASES

METHODS = (None, "chain", "differential", "definition")


# The definition method (SymPy, slow) on a third of the cases in numerator layout and on
# every Hessian in both, without the two-layer network: chosen here, so nothing is skipped.
RUNS = [pytest.param(text, positive, method, layout, id=f"{text}-{method}-{layout}")
        for k, (text, positive) in enumerate(CASES)
        for method in METHODS for layout in ("numerator", "denominator")
        if method != "definition" or "W1" not in text and (
            layout == "numerator" and k % 3 == 0 or text.startswith("d^2"))]


@pytest.mark.parametrize("request_text,positive,method,layout", RUNS)
def test_every_equation_holds(request_text, positive, method, layout):
    d = derive(request_text, layout=layout, method=method)
    if method == "definition":               # the result is an equation too (Hessians: of g)
        assert d.steps[-1].eq is not None and d.steps[-1].eq.rhs == d.result
    if method == "differential":             # never the chain rule under another name
        assert not [s.rule for s in d.steps if "chain rule" in s.rule], d.steps
    rng = np.random.default_rng(zlib.crc32(f"{request_text}|{method}|{layout}".encode()))
    for _ in range(2):
        assert check_derivation(d, rng, positive=positive) > 0


def test_a_false_line_is_caught():
    """The checker can fail: one partial doubled is reported."""
    d = derive("d/dx sin(x^2)")
    k = next(i for i, s in enumerate(d.steps) if s.kind == "partial")
    s = d.steps[k]
    wrong = replace(s, eq=replace(
        s.eq, rhs=E.make("mul", E.num(2), s.eq.rhs)))
    bad = replace(d, steps=d.steps[:k] + (wrong,) + d.steps[k + 1:])
    with pytest.raises(AssertionError):
        check_derivation(bad, np.random.default_rng(0))


# the other suites' derivations: textbook examples, golden files, random expressions
from hypothesis import given, settings, HealthCheck  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_check  # noqa: E402
import test_classics  # noqa: E402
import test_documents  # noqa: E402
import test_golden  # noqa: E402
import test_latex  # noqa: E402
import test_rich_view  # noqa: E402
import test_properties as props  # noqa: E402
import test_textbook  # noqa: E402

OTHERS = sorted({c[0] for c in test_textbook.NUMERATOR + test_textbook.DENOMINATOR}
                | {c[2] for c in test_golden.CASES}
                | {c[0] for c in test_check.WRONG + test_check.RIGHT}
                | {c[0] for c in test_latex.REAL_REQUESTS}
                | set(test_rich_view.REQUESTS) | set(test_documents.REQUESTS))


@pytest.mark.parametrize("method", ["chain", "differential"])     # None is one of them
@pytest.mark.parametrize("request_text", OTHERS)
def test_textbook_and_golden_equations_hold(request_text, method):
    for layout in ("numerator", "denominator"):
        try:
            d = derive(request_text, layout=layout, method=method)
        except McalcError:
            continue                          # a request the other suite expects refused
        rng = np.random.default_rng(zlib.crc32(f"{request_text}|{method}|{layout}".encode()))
        assert check_derivation(d, rng, positive="log" in request_text) > 0 or \
            d.result is None


# The classics, with their own domains (x^x, sqrt(x): positive values). Left out:
# -det(X/X), whose intermediate X/X is the all-ones matrix, singular everywhere, where the
# determinant's rule det(U)*inv(U)' is undefined (its lines hold wherever it is defined).
CLASSICS = sorted({(c[0], c[3]) for c in test_classics.CLASSICS if c[0] != "d/dX -det(X/X)"})


@pytest.mark.parametrize("method", ["chain", "differential"])
@pytest.mark.parametrize("request_text,positive", CLASSICS, ids=[c[0] for c in CLASSICS])
def test_classics_equations_hold(request_text, positive, method):
    for layout in ("numerator", "denominator"):
        d = derive(request_text, layout=layout, method=method)
        rng = np.random.default_rng(zlib.crc32(f"{request_text}|{method}|{layout}".encode()))
        assert check_derivation(d, rng, positive=positive) > 0


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.tuples(props._scalar(2), st.sampled_from(["x", "a", "A"])),
    st.tuples(props._vector(2), st.sampled_from(["x", "a"])),
    st.tuples(props._matrix_scalar(1), st.sampled_from(["A", "x", "B"])),
    st.tuples(props._matrix(1), st.sampled_from(["A", "x", "a"]))),
    st.sampled_from(METHODS[:3]), st.sampled_from(["numerator", "denominator"]),
    st.integers(0, 2**31))
def test_random_expressions_equations_hold(case, method, layout, seed):
    body, wrt = case
    try:
        d = derive(f"d/d{wrt} {body} {props.DECLS}", layout=layout, method=method)
    except McalcError:
        return
    rng = np.random.default_rng(seed)
    check_derivation(d, rng, rtol=1e-3, atol=1e-4)


def test_a_definition_by_a_where_name_is_checked_through_it():
    """U3 = t1 (t1 = A + B'@B, a name of the result's): ∂U3/∂A is eye(n*n), and the check
    sees it — t1 abbreviates A + B'@B, it is not an operand held fixed."""
    d = derive("d/dA logdet(A'@A + (A + B'@B)@(A + B'@B)' + eye(n)) where B: matrix(m, n)",
               layout="denominator", method="chain")
    from mcalc.printing.json_out import as_dict
    data = as_dict(d)
    defines = [s["eq"]["rhs"] for s in data["steps"] if s["kind"] == "define"]
    assert set(defines) & set(data["where"]), defines
    assert check_derivation(d, np.random.default_rng(3)) > 0


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("request_text,want", [
    ("d/dx (diag(x)*eye(n))@ones(n) where x: vector(n)", "eye(n)"),   # x itself
    ("d/dX X' where X: matrix(m, n)", "commutation(m, n)"),
    ("d/dx sin(x^2)", "2*x*cos(x^2)"),
])
def test_differential_method_for_every_shape(request_text, want, layout):
    """d/dx by differentials and the identification theorem, for a scalar, a vector and a
    matrix; every line checked."""
    d = derive(request_text, layout=layout, method="differential")
    from mcalc.printing.text import to_text
    if layout == "numerator" or want in ("eye(n)", "2*x*cos(x^2)"):
        assert to_text(d.result) == want
    assert any(s.kind == "identify" for s in d.steps)
    assert check_derivation(d, np.random.default_rng(7)) > 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("request_text", [
    "d^2/d(a, b)^2 [a*b, a^2*sin(b)]",
    "d^2/d(a, b)^2 a^2*b*X + sin(b)*Y where a, b: scalar",
    "d/d(a, b) d/d(a, b) [[a*b, a^2], [exp(b), 1]]",
])
def test_second_derivatives_by_stacked_scalars_equations_hold(request_text, layout, method):
    """A vector or a matrix by stacked scalars twice: the vec form of the Jacobian."""
    d = derive(request_text, layout=layout, method=method)
    rng = np.random.default_rng(zlib.crc32(f"{request_text}|{method}|{layout}".encode()))
    assert check_derivation(d, rng) > 0


@pytest.mark.parametrize("request_text", [
    "d/dX A@X@B", "d/dX sin(X)", "d/dX inv(X)", "d/dX X@X", "d^2/dX^2 tr(X@X)",
    "d^2/dX^2 sum(X^3)", "d/dX kron(X, X) where X: matrix(m, n)"])
def test_the_default_by_a_matrix_is_the_differential_method(request_text):
    """Contract §3: without --method, a derivative by a matrix (a vec form too, not only a
    scalar's gradient) is derived by differentials — never the chain rule's steps."""
    d = derive(request_text)
    assert d.method == "differential"
    assert not [s.rule for s in d.steps if "chain rule" in s.rule], d.steps
    assert any(s.kind == "identify" for s in d.steps)
    assert check_derivation(d, np.random.default_rng(zlib.crc32(request_text.encode()))) > 0


def test_the_differential_default_is_never_longer_than_the_chain_rule():
    """Where the default became the differential method (a non-scalar by a matrix), its
    result is no longer, in tokens, than the chain rule's (the reason it is the default)."""
    import test_every_derivative
    from test_classics import tokens
    from mcalc.printing.text import to_text
    requests = [c[0] for c in CASES] + [c[0] for c in test_every_derivative.NAMED] + \
        [c[0] for c in test_classics.CLASSICS]
    compared = 0
    for text in dict.fromkeys(requests):
        d = derive(text)
        if d.method != "differential" or d.expr.is_scalar and len(d.wrt) == 1:
            continue
        chain = derive(text, method="chain")
        assert tokens(to_text(d.result)) <= tokens(to_text(chain.result)), text
        compared += 1
    assert compared >= 10


@pytest.mark.parametrize("method", ["chain", "differential"])
@pytest.mark.parametrize("request_text,positive", CASES, ids=[c[0] for c in CASES])
def test_every_simplification_is_a_named_step(request_text, positive, method):
    """The result is stated, as printed, by the last line that has an equation (a
    simplification changed nothing unsaid), and a simplify step
    names only rewrites of the simplifier's registry (simplify.REWRITES)."""
    from mcalc.printing.text import to_text
    from mcalc.simplify import REWRITES
    names = {n for n, _, _ in REWRITES}
    d = derive(request_text, method=method)
    last = next(s for s in reversed(d.steps) if s.eq is not None)
    assert to_text(last.eq.rhs) == to_text(d.result)
    for s in d.steps:
        if s.kind == "simplify":
            assert s.rule and set(s.rule.split(", ")) <= names, s.rule


def test_the_methods_are_peers():
    """chain, differential and definition (and the automatic choice) are modules with one
    interface, dispatched by name: each derivation says which method made it."""
    import inspect

    from mcalc.methods import automatic, chain, definition, differential
    from mcalc.pipeline import METHODS
    peers = (chain, differential, definition)
    assert {m.NAME for m in peers} == set(METHODS)
    assert len({tuple(inspect.signature(m.derive).parameters)
                for m in peers + (automatic,)}) == 1
    for name in METHODS:
        assert derive("d/dX tr(X'@A@X)", method=name).method == name
    assert derive("d/dX tr(X'@A@X)").method == "differential"
    assert derive("d/dx sin(x^2)").method == "chain"


# Deep derivations: a derivative too large to write out (graph.MAX_SHOWN) is stated with
# names for the large derivatives it is made of ('name' steps), so each equation stays small
# and the JSON grows linearly in depth (issue #16); every line still holds.
def _network(layers: int, wrt: str = "W1") -> str:
    e = "x"
    for k in range(1, layers + 1):
        e = f"tanh(W{k}@{e} + b{k})"
    return f"d/d{wrt} sum(({e} - y)^2)"


def _nested_sin(depth: int, decl: str = "") -> str:
    return "d/dx " + "sin(" * depth + "x" + ")" * depth + decl


def _jacobian(layers: int) -> str:
    e = "x"
    for k in range(1, layers + 1):
        e = f"tanh(W{k}@{e} + b{k})"
    return "d/dx " + e


DEEP = [
    (_network(16), None), (_network(16), "chain"), (_network(16), "differential"),
    (_nested_sin(60), "chain"), (_nested_sin(60), "differential"), (_nested_sin(40), "chain"),
    (_nested_sin(50, " where x: vector(n)"), "chain"),          # a Jacobian, backward
    (_nested_sin(50, " where x: vector(n)"), "differential"),
    (_jacobian(12), "chain"), (_jacobian(12), "differential"),
    (_network(10, "x"), "chain"),                               # a gradient by a vector
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("request_text,method", DEEP, ids=[f"{t[:24]}…-{m}" for t, m in DEEP])
def test_deep_derivations_equations_hold(request_text, method, layout):
    d = derive(request_text, layout=layout, method=method)
    rng = np.random.default_rng(zlib.crc32(f"{request_text}|{method}|{layout}".encode()))
    assert check_derivation(d, rng, rtol=1e-3, atol=1e-4) > 0
    # every intermediate and name is defined once, and never is a variable or a where name
    defined = [s.eq.of for s in d.steps if s.eq is not None and s.eq.kind == "define"]
    assert len(defined) == len(set(defined))
    assert not set(defined) & (set(d.types) | {n for n, _ in d.where})


@pytest.mark.parametrize("request_text,method", DEEP[:5] + DEEP[8:10],
                         ids=[f"{t[:24]}…-{m}" for t, m in DEEP[:5] + DEEP[8:10]])
def test_deep_derivations_name_their_large_derivatives(request_text, method):
    """Large derivatives are named, and every name is used by a later equation."""
    from mcalc.printing.json_out import as_dict
    d = derive(request_text, method=method)
    steps = as_dict(d)["steps"]
    names = [s["eq"]["define"] for s in steps if s["kind"] == "name"]
    assert names or method == "differential"     # forward differentials write d(u5) instead
    for k, s in enumerate(steps):
        if s["kind"] == "name":
            later = " ".join(t["eq"]["rhs"] for t in steps[k + 1:] if "eq" in t)
            assert re.search(rf"\b{s['eq']['define']}\b", later), s["text"]


def _json_bytes(text: str, method=None) -> int:
    from mcalc.printing.json_out import render
    return len(render(derive(text, method=method)).encode())


@pytest.mark.parametrize("build,n,method", [
    (_network, 16, None), (_network, 16, "chain"), (_nested_sin, 125, "chain"),
    (_nested_sin, 125, "differential"), (_jacobian, 16, "chain"),
])
def test_json_grows_linearly_with_depth(build, n, method):
    """Twice as deep, at most 2.3 times the JSON (sizes, not times): before the names a
    step's equation wrote the whole accumulated derivative out, and the JSON grew as n²."""
    assert _json_bytes(build(2 * n), method) <= 2.3 * _json_bytes(build(n), method)


def test_small_derivations_name_nothing():
    """Names appear only where a derivative is too large to show: textbook cases keep their
    equations written out."""
    for text, _ in CASES:
        for method in ("chain", "differential"):
            d = derive(text, method=method)
            assert not [s for s in d.steps if s.kind == "name"], (text, method)


def test_deep_naming_needs_no_recursion(shallow_stack):
    """600 levels under a recursion limit of 400: names are given and stated iteratively."""
    from mcalc.printing.json_out import render
    d = derive(_nested_sin(600), method="chain")
    assert sum(s.kind == "name" for s in d.steps) > 500
    assert len(render(d)) < 600 * 2000      # about 1,300 bytes a level (written out: 3,800)


def test_a_rewrite_done_for_an_earlier_step_is_still_named():
    """The shared simplifier remembers which rewrites changed each node: a line whose
    simplification it has (partly) seen before names them all, as a fresh simplifier
    would — diag(a)diag(b) = diag(a⊗b) here was done while multiplying out an earlier
    line."""
    from mcalc.printing.text import to_text
    d = derive("d/dX sin(X)*X", method="chain")      # (the default by a matrix: differential)
    line = next(s for s in d.steps if s.kind == "chain" and s.product is not None and
                "diag(vec(X))@" in to_text(s.product))
    assert "diag(a)diag(b) = diag(a⊗b)" in line.rule, line.rule


def test_simplification_steps_name_what_a_fresh_simplifier_names(monkeypatch):
    """Over the engine's cases, each simplifying line names the rewrites a fresh
    simplifier names for the same expression — but for rewrites a cache inside one
    rewrite skips (at most 2 of about 260 lines now; each missing name is a line that
    cites too little, never a wrong name)."""
    from mcalc.methods import chain, graph
    from mcalc.simplify import Simplifier
    seen, missing, extra = [0], [], []
    original = graph.simplified

    def compared(simp, e, order=True):
        out, fired = original(simp, e, order)
        if out != e:
            fresh = Simplifier()
            fresh(e)
            seen[0] += 1
            missing.extend(set(fresh.fired) - set(fired) - {"canonical order"})
            extra.extend(set(fired) - set(fresh.fired) - {"canonical order"})
        return out, fired
    monkeypatch.setattr(graph, "simplified", compared)
    monkeypatch.setattr(chain, "simplified", compared)
    for text, _ in CASES:
        for method in ("chain", "differential"):
            derive(text, method=method)
    assert seen[0] > 200 and len(missing) <= 3 and not extra, (seen, missing, extra)


@pytest.mark.parametrize("method", ["chain", "differential"])
@pytest.mark.parametrize("steps", [True, False])
def test_a_method_that_meets_no_rule_tries_the_simplified_expression(monkeypatch, method,
                                                                       steps):
    """An intermediate no rule takes (diag(x)@a once had none) may vanish once the
    expression is simplified: the method starts again on the simplified expression, with
    the intermediate names the first attempt took given back, and says so. Here no rule
    takes a sum (x + x is 2*x simplified)."""
    from mcalc import rules as R
    from mcalc.errors import NoRule
    real = R.rule_for

    def no_sums(u, i):
        if u.op == "add":
            raise NoRule("no rule for a sum (this test)")
        return real(u, i)
    monkeypatch.setattr(R, "rule_for", no_sums)
    d = derive("d/dx sin(x + x)*exp(x)", method=method, steps=steps)
    from mcalc.printing.numpy_code import to_numpy
    from numeric import evaluate
    for x in (-1.3, 0.4, 2.9):                  # by hand: exp(x)*(2*cos(2*x) + sin(2*x))
        got = evaluate(to_numpy(d.result, d.dims), {"x": x})
        assert abs(got - np.exp(x) * (2 * np.cos(2 * x) + np.sin(2 * x))) < 1e-9
    if steps:
        note = [s for s in d.steps if s.text.startswith("rewritten first")]
        assert len(note) == 1
        assert [s.lhs for s in d.steps if s.kind == "define"][:2] == ["u1", "u2"]
        assert check_derivation(d, np.random.default_rng(7)) > 0
    with pytest.raises(NoRule):                 # nothing to simplify: the reason stands
        derive("d/dx x + exp(x)", method=method, steps=steps)
