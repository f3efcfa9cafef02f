"""S' is S for S: symmetric(n) (CONTRACT §1), rewritten as the typed tree is built, so
requests and claims both have it before anything is differentiated; derivatives treat S's
n² entries as independent (the unconstrained convention).

Truth: central finite differences, every entry of S perturbed on its own, of the function
written by hand in numpy with S' replaced by S (the contract's meaning) — never mcalc's
own evaluation of the request.
"""
import numpy as np
import pytest

import mcalc
from mcalc.pipeline import derive, typed
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import to_text
from numeric import assert_close, evaluate, finite_difference, random_values

DECLS = "where S: symmetric(n); A, B: matrix(n, n); x, y: vector(n)"

# request body -> the same function with S' = S, by hand
CASES = [
    ("tr(S'@A)", lambda v: np.trace(v["S"] @ v["A"])),
    ("tr(transpose(S)@A)", lambda v: np.trace(v["S"] @ v["A"])),
    ("tr(S.T@A)", lambda v: np.trace(v["S"] @ v["A"])),
    ("x'@S'@x", lambda v: v["x"] @ v["S"] @ v["x"]),
    ("x'@S'@y", lambda v: v["x"] @ v["S"] @ v["y"]),
    ("S'@S", lambda v: v["S"] @ v["S"]),
    ("S'@A", lambda v: v["S"] @ v["A"]),
    ("tr((A@S)'@B)", lambda v: np.trace(v["S"] @ v["A"].T @ v["B"])),
    ("x'@(S@A)'@y", lambda v: v["x"] @ v["A"].T @ v["S"] @ v["y"]),
    ("sum((S*A)'@B)", lambda v: np.sum((v["S"] * v["A"].T) @ v["B"])),
    ("tr(inv(S')@A)", lambda v: np.trace(np.linalg.inv(v["S"]) @ v["A"])),
    ("logdet(S' + S'@S)", lambda v: np.linalg.slogdet(v["S"] + v["S"] @ v["S"])[1]),
    ("norm((S + A)'@x)^2", lambda v: np.sum(((v["S"] + v["A"].T) @ v["x"]) ** 2)),
    ("tr(sin(S')@A)", lambda v: np.trace(np.sin(v["S"]) @ v["A"])),
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("body,f", CASES, ids=[c[0] for c in CASES])
def test_against_finite_differences(body, f, layout):
    d = derive(f"d/dS {body} {DECLS}", layout=layout)
    rng = np.random.default_rng(len(body))
    for scale in (0.2, 1.0, 3.0):
        values = random_values(d.types, {"n": int(rng.integers(2, 5))}, rng)
        values = {k: v * scale for k, v in values.items()}
        if "S" in values:          # logdet needs a positive definite S + S@S; inv a safe S
            n = values["S"].shape[0]
            values["S"] = values["S"] @ values["S"].T / n + np.eye(n)
        got = evaluate(to_numpy(d.result, d.dims), values)
        want = finite_difference(f, values, "S", layout)
        assert_close(got, want, rtol=1e-4, atol=1e-6, what=f"{body} at scale {scale}")


@pytest.mark.parametrize("body", ["tr(S'@A)", "tr(S@A)"])
def test_both_are_A_in_numerator_layout(body):
    assert mcalc.derive(f"d/dS {body} where S: symmetric(n)").result == "A"
    assert mcalc.derive(f"d/dS {body} where S: symmetric(n)", layout="denominator").result \
        == "A'"


def test_the_rewrite_is_in_the_typed_tree():
    _, e, claim, _ = typed(f"(A@S)' + S' + transpose(S) {DECLS}", claim="S'@A'")
    assert to_text(e) == "S@A' + S + S"
    assert to_text(claim) == "S@A'"
    _, plain, _, _ = typed("(A@B)' where A, B: matrix(n, n)")
    assert to_text(plain) == "(A@B)'"                  # no symmetric variable: as written


def test_check_agrees_under_the_same_convention():
    assert mcalc.check(f"d/dS tr(S'@A) {DECLS}", "A").holds
    assert mcalc.check(f"d/dS tr(S'@A) {DECLS}", "inv(S')@S@A").holds      # S' is S in claims
    assert not mcalc.check(f"d/dS tr(S'@A) {DECLS}", "A'").holds
    assert mcalc.check(f"d/dS x'@S'@y {DECLS}", "y@x'").holds


def test_deep_transposes_do_not_recurse():
    body = "S"
    for _ in range(60):         # the parser's nesting limit is 200 levels
        body = f"(A@{body})'"
    e = typed(f"{body} {DECLS}")[1]
    assert e.shape == ("n", "n") and "'" not in to_text(e).replace("A'", "")


def test_transpose_of_a_deep_tree_is_pushed_without_recursion():
    from mcalc import expr as E
    from mcalc.build import _Symmetric
    typing = typed(f"S {DECLS}")[3]
    s, a = E.var("S", ("n", "n"), True), E.var("A", ("n", "n"))
    e = s
    for _ in range(5000):
        e = E.make("matmul", a, e)
    out = _Symmetric(typing).transpose(e)              # (A@(A@…S))' = ((S@A')@A')…
    for _ in range(5000):
        assert out.op == "matmul" and out.args[1].op == "T" and out.args[1].args[0] is a
        out = out.args[0]
    assert out is s
