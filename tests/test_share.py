"""Large results name their repeated subexpressions, so a deep network's gradient (and
its whole derivation) prints in size linear in the depth, and the numpy form stays one
evaluable expression."""
import numpy as np

from mcalc.pipeline import derive
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.plain import render, result_line
from mcalc.printing.text import to_text
from numeric import assert_close, evaluate, finite_difference, random_values


def network(layers: int) -> str:
    e = "x"
    for i in range(1, layers + 1):
        e = f"tanh(W{i}@{e} + b{i})"
    return f"d/dW1 sum(({e} - y)^2)"


def _result_size(d) -> int:
    return len(result_line(d)) + sum(len(n) for n, _ in d.where)


def test_result_and_derivation_grow_linearly():
    small, large = derive(network(8)), derive(network(32))
    assert large.where, "a 32-layer gradient names its shared subexpressions"
    assert _result_size(large) / _result_size(small) <= 5
    assert len(render(large)) / len(render(small)) <= 5


def test_small_results_are_printed_whole():
    assert derive("d/dx x'@A@x").where == ()


def test_named_numpy_form_is_one_expression_with_the_right_value():
    d = derive(network(6), layout="denominator")
    code = to_numpy(d.result, d.dims, {e: n for n, e in d.where})
    assert ":=" in code
    rng = np.random.default_rng(3)
    sizes = {dim: 3 for t in d.types.values() for dim in t[t.find("(") + 1:-1].split(", ")
             if "(" in t}
    values = random_values(d.types, sizes, rng)
    values = {k: v * 0.5 for k, v in values.items()}
    f_np = to_numpy(d.expr, d.dims)
    want = finite_difference(lambda v: evaluate(f_np, v), values, "W1", "denominator")
    assert_close(evaluate(code, values), want, rtol=1e-4, atol=1e-6)


def test_every_where_name_is_used():
    """A name is given only to what the result, or another name, writes: `a - b` writes
    b, not the -b it stores, so a repeated -b is no reason for a name."""
    import re
    for request in ("d/dx (x - mean(x))/sqrt(mean((x - mean(x))^2) + 0.001)", network(8)):
        d = derive(request)
        names = {e: n for n, e in d.where}
        texts = [to_text(d.result, names)] + [
            to_text(e, {k: v for k, v in names.items() if k is not e}) for _, e in d.where]
        used = set(re.findall(r"\bt\d+\b", " ".join(texts)))
        assert d.where and {n for n, _ in d.where} <= used
