"""`where t1 = …` definitions (contract §1, "Declarations and type inference"): a defined
name stands for its expression in the body and in later definitions; it is not a
variable; a claim may carry its own; and a result printed with `where` feeds back, word
for word, as a request or a claim that derives and checks like the original."""
import numpy as np
import pytest

from mcalc.checker import check
from mcalc.errors import McalcError
from mcalc.evaluate import evaluate
from mcalc.pipeline import derive
from mcalc.printing.plain import names_below
from mcalc.printing.text import to_text
from numeric import assert_close, finite_difference, random_sizes, random_values


def _value(text: str, values, sizes):
    d = derive(text)
    return evaluate(d.result if d.result is not None else d.expr, values, sizes)


def test_definitions_stand_for_their_expressions():
    rng = np.random.default_rng(1)
    defined = "d/dx t2 where t1 = tanh(W1@x + b1); W1: matrix(m, n); t2 = sum(tanh(W2@t1 + b2))"
    written = "d/dx sum(tanh(W2@tanh(W1@x + b1) + b2)) where W1: matrix(m, n)"
    d = derive(defined)
    assert set(d.types) == {"W1", "x", "b1", "W2", "b2"}        # t1, t2 are not variables
    sizes = random_sizes(["m", "n", "k"] + [x for t in d.types.values() for x in t[7:-1].split(", ")
                                            if "(" in t], rng)
    values = random_values(d.types, sizes, rng)
    assert_close(_value(defined, values, sizes), _value(written, values, sizes))


def test_a_definition_may_use_earlier_definitions_and_share():
    d = derive("d/dx t2 where t1 = x^2; t2 = t1*t1 + sin(t1)")
    values = {"x": 0.7}
    want = finite_difference(lambda v: v["x"] ** 4 + np.sin(v["x"] ** 2), values, "x")
    assert_close(evaluate(d.result, values, {}), want)


@pytest.mark.parametrize("text, message", [
    ("d/dt1 t1 where t1 = x^2", "'t1' is a definition"),
    ("d/dn sum(x)/n where x: vector(n)", "'n' is a dimension"),
    ("d/dz x^2", "'z' does not appear"),
    ("d/de e^x", "'e' is a constant (Euler's number), not a variable"),
    ("d/dpi pi*x", "'pi' is a constant (π), not a variable"),
    ("d/dx t where t = x; t = 2*x", "'t' is defined twice"),
    ("d/dx t where t: scalar; t = x", "both declared and defined"),
    ("d/dx t where t = x; t: scalar", "both declared and defined"),
    ("d/dx t1 where t1 = t2; t2 = x", "used as a variable before its definition"),
    ("d/dx t where t = t + x", "used as a variable before its definition"),
    ("d/dx I where I = x", "reserved"),
    ("d/dx n where x: vector(n); n = 2", "'n' is a dimension"),
])
def test_errors_name_the_real_problem(text, message):
    with pytest.raises(McalcError) as e:
        derive(text)
    assert message in str(e.value)
    assert e.value.column and e.value.column > 1


def test_a_claim_carries_its_own_definitions():
    assert check("d/dx sum(x^2)", "2*t' where t = x").holds
    assert not check("d/dx sum(x^2)", "3*t' where t = x").holds
    # the request's definitions apply to the claim too
    assert check("d/dx sum(t^2) where t = 3*x", "18*x'").holds
    assert check("d/dx sum(t^2) where t = 3*x", "6*t'").holds
    with pytest.raises(McalcError, match="defined twice"):
        check("d/dx sum(t^2) where t = 3*x", "18*t' where t = x")


def test_a_claims_definitions_do_not_leak_into_the_request():
    # 'u' is the request's variable; the claim may not redefine it
    with pytest.raises(McalcError, match="'u' is"):
        check("d/dx sum(x*u)", "u' where u = x")


# ---- round trip: a result printed with `where` feeds back word for word ------------------

def _network(layers: int, loss: str = "sum(({e} - y)^2)", by: str = "W1") -> str:
    e = "x"
    for i in range(1, layers + 1):
        e = f"tanh(W{i}@{e} + b{i})"
    return f"d/d{by} " + loss.format(e=e)


ROUND_TRIP = [
    (_network(4), "numerator"),
    (_network(6), "denominator"),
    (_network(5, by="b1"), "numerator"),
    (_network(5, by="x"), "denominator"),
    (_network(5, loss="logsumexp({e})"), "numerator"),
    (_network(4, loss="norm({e} - y)^2", by="W2"), "denominator"),
    (_network(4).replace("W1@x", "W1@t1"), "numerator"),       # a variable named like a t_k
    (_network(4).replace("tanh(W1@x + b1)", "t1") + " where t1 = tanh(W1@x + b1)",
     "numerator"),                                               # a definition named so
]


def _fed_back(d) -> str:
    """The result as mcalc prints it (result, its where definitions) plus the typing."""
    names = {e: n for n, e in d.where}
    where = [f"{n} = {to_text(e, names_below(d.where, n))}" for n, e in d.where]
    decls = [f"{v}: {t}" for v, t in d.types.items()]
    return f"{to_text(d.result, names)} where " + "; ".join(where + decls)


@pytest.mark.parametrize("request_text, layout", ROUND_TRIP)
def test_results_with_definitions_feed_back_as_requests(request_text, layout):
    d = derive(request_text, layout=layout)
    assert d.where, "the test needs a result large enough to name subexpressions"
    text = _fed_back(d)
    rng = np.random.default_rng(len(request_text))
    sizes = random_sizes(_dims(d.types), rng)
    values = {k: 0.5 * v for k, v in random_values(d.types, sizes, rng).items()}
    original = evaluate(d.result, values, sizes)
    again = derive(text)
    assert again.result is None and again.types == d.types
    assert_close(evaluate(again.expr, values, sizes), original, rtol=1e-9, atol=1e-12)
    # and the fed-back expression derives: a scalar of it, by one of its variables
    d2 = derive(f"d/d{d.wrt[0]} sum({text.partition(' where ')[0]}) where "
                + text.partition(" where ")[2])
    f = lambda v: float(np.sum(evaluate(again.expr, v, sizes)))  # noqa: E731
    want = finite_difference(f, values, d.wrt[0])
    assert_close(evaluate(d2.result, values, sizes), want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("request_text, layout", ROUND_TRIP[:3] + ROUND_TRIP[-1:])
def test_results_with_definitions_feed_back_as_claims(request_text, layout):
    d = derive(request_text, layout=layout)
    claim = _fed_back(d)
    claim = claim.partition(" where ")[0] + " where " + "; ".join(
        f"{n} = {to_text(e, names_below(d.where, n))}" for n, e in d.where)
    v = check(request_text, claim, layout=layout, seed=1)
    assert v.holds, v.reason


def test_a_declared_variable_is_not_a_size():
    with pytest.raises(McalcError, match="'x' is a declared variable, not a dimension"):
        derive("commutation(x, n)@vec(A) where x: vector(n)")


def _suite_requests():
    from test_engine_numeric import CASES
    from test_every_derivative import NAMED
    return [r for r, _ in CASES] + [r for r, _ in NAMED] + [r for r, _ in ROUND_TRIP]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_every_result_of_the_suites_feeds_back(layout):
    """Each result (with its where definitions, when it has some) re-parses, with the typing
    it was printed with, to the same value."""
    for k, request_text in enumerate(_suite_requests()):
        d = derive(request_text, layout=layout)
        rng = np.random.default_rng(k)
        sizes = random_sizes(_dims(d.types), rng)
        values = random_values(d.types, sizes, rng, positive=True)
        again = derive(_fed_back(d) if d.where else
                       f"{to_text(d.result)} where " + "; ".join(f"{v}: {t}" for v, t in
                                                              d.types.items()))
        assert_close(evaluate(again.expr, values, sizes), evaluate(d.result, values, sizes),
                     rtol=1e-9, atol=1e-12, what=request_text)


def _dims(types):
    """The dimension names of the types (matrix(m, 2*n): m and n)."""
    return {p for t in types.values() if "(" in t for x in t[t.index("(") + 1:-1].split(", ")
            for p in x.split("*") if not p.isdigit()}
