"""The numpy code is valid Python for every name the language accepts (the contract's
renaming rule), and its generated names never capture a variable. The generated code is
compiled, then evaluated (test-only: it is mcalc's own output, never user text) and
compared with finite differences."""
from __future__ import annotations

import keyword
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcalc.errors import McalcError
from mcalc.pipeline import derive
from mcalc.printing.json_out import as_dict
from mcalc.printing.numpy_code import python_names, to_numpy
from numeric import assert_close, finite_difference, random_sizes, random_values


def run_generated(code: str, values: dict, py: dict):
    """Evaluate mcalc's generated numpy code with each variable bound to its Python name."""
    compiled = compile(code, "<mcalc numpy>", "eval")
    env = {"np": np, **{py[k]: v for k, v in values.items()}}
    return eval(compiled, env)  # noqa: S307 - mcalc's own generated code, never user text


def check_numerically(request_text: str, seed: int = 0):
    d = derive(request_text)
    code = as_dict(d)["numpy"]
    compile(code, "<mcalc numpy>", "eval")              # valid Python first of all
    py = python_names(d.types)
    f_code = to_numpy(d.expr, d.dims, None, d.types)
    rng = np.random.default_rng(seed)
    dims = {x.strip() for t in d.types.values() for x in t.partition("(")[2].rstrip(")")
            .split(",") if x.strip()}
    values = random_values(d.types, random_sizes(dims, rng), rng)
    got = run_generated(code, values, py)
    expected = finite_difference(lambda v: run_generated(f_code, v, py), values, d.wrt[0])
    assert_close(got, expected, what=request_text)
    return d, code


@pytest.mark.parametrize("name,expected", [
    ("lambda", "lambda_"), ("np", "np_"), ("True", "True_"), ("None", "None_"),
    ("False", "False_"), ("class", "class_"), ("θ", "θ"), ("x", "x"), ("ℓ", "l"),
    ("x²", "x2"), ("x½", "x1_2_"), ("²x", "_2x_"),
    ("__debug__", "__debug___"),        # Python reads __debug__ as a constant (True)
])
def test_the_renaming_rule(name, expected):
    assert python_names([name]) == {name: expected}
    assert expected.isidentifier() and not keyword.iskeyword(expected)


def test_renamed_names_stay_distinct():
    py = python_names(["lambda", "lambda_", "x₁", "x1"])
    assert len(set(py.values())) == 4
    assert py["lambda_"] == "lambda_" and py["x1"] == "x1"      # unchanged names win


@pytest.mark.parametrize("request_text", [
    "d/dx lambda*x^2 + np*x + True*x where lambda, np, True: scalar",
    "d/dθ sum(θ*λ) + norm(θ)^2 where λ: scalar",
    "d/dℓ ℓ^3 + l*ℓ",
    "d/dx x₁*x + x1*x^2",
    "d/dclass sum(class*None) where None: vector(n)",
    "d/dx __debug__*x^2 + sin(__debug__*x)",
])
def test_hostile_names_give_valid_code_with_the_right_value(request_text):
    check_numerically(request_text)


def test_a_user_t1_is_not_captured_by_a_generated_name():
    body = "tanh(W1@t1 + b1)"
    for k in range(2, 6):
        body = f"tanh(W{k}@{body} + b{k})"
    d, code = check_numerically(f"d/dW1 sum(({body} - y)^2)")
    assert d.where and "t1" not in dict(d.where)
    assert "(t1 :=" not in code


def test_a_generated_name_meeting_a_renamed_variable_is_fresh():
    from mcalc import expr as E
    t = E.var("t₁", ("n", "1"))                       # its Python name is t1
    shared = E.make("mul", t, t)
    e = E.make("add", shared, E.make("mul", shared, shared))
    code = to_numpy(e, {}, {shared: "t1"})
    assert "(t1_1 := t1 * t1)" in code
    x = np.arange(3.0)
    assert np.allclose(run_generated(code, {"t₁": x}, python_names(["t₁"])), x**2 + x**4)


def test_a_variable_missing_from_the_list_is_named_with_the_listed_ones():
    # Python names are made distinct together: `lambda` (listed or not) must not take
    # `lambda_`, the listed variable's own name; the code is the same as with both listed.
    from mcalc import expr as E
    lam, lam_ = E.var("lambda", ("1", "1")), E.var("lambda_", ("1", "1"))
    e = E.make("add", lam, E.make("mul", E.num(2), lam_))
    code = to_numpy(e, {}, None, ["lambda_"])
    assert code == to_numpy(e, {}, None, ["lambda_", "lambda"])
    assert run_generated(code, {"lambda": 3.0, "lambda_": 5.0},
                         python_names(["lambda_", "lambda"])) == 13.0


_LETTERS = st.sampled_from(list("abxyzABWtT_θλσμℓαβ") + ["ｘ", "ﬁ", "Ω", "ä"])
_TAILS = st.text(alphabet=list("0123456789_abTλ²₁ₐ"), max_size=4)
_WORDS = st.sampled_from(sorted(set(keyword.kwlist) | {"True", "None", "False", "np", "t1",
                                                          "t2", "lambda_", "print"}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_WORDS, st.builds(lambda a, b: a + b, _LETTERS, _TAILS)),
                min_size=2, max_size=3, unique=True))
def test_any_names_give_valid_code(names):
    assume(all(unicodedata.normalize("NFKC", n) not in ("I", "e", "pi") for n in names))
    a, x, *rest = names
    extra = f" + {rest[0]}*{x}" if rest else ""
    request = f"d/d{x} {a}*{x}^2 + sin({x}){extra}"
    decl = ", ".join(names)
    try:
        derive(f"{request} where {decl}: scalar")
    except McalcError:
        assume(False)                                   # a name the language refuses
    check_numerically(f"{request} where {decl}: scalar")
