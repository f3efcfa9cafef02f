"""Every derivative rule, checked the way the brief asks: the result's numpy form,
evaluated at random points and random dimension sizes, against central finite
differences of the expression itself (in both layouts)."""
import numpy as np
import pytest

from mcalc.pipeline import derive
from mcalc.printing.numpy_code import to_numpy
from numeric import assert_close, evaluate, finite_difference, random_sizes, random_values

# (request, needs positive values)
CASES = [
    # P&H §2 scalar rules and chain rules
    ("d/dx sin(x^2)", False),
    ("d/dx sin(x + x^2)", False),
    ("d/dx x*x^2", False),
    ("d/dx cos(x)*exp(x) - tan(x)/3", False),
    ("d/dx log(x) + sqrt(x)", True),
    ("d/dx tanh(x)*sigmoid(x) + abs(x) + sign(x)", False),
    ("d/dx x^x", True),
    ("d/dx 2^x + pi*x", False),
    ("d/dx d/dy x^2*y^3 + sin(x*y)", False),
    # P&H §3-§4: gradients and Jacobians of stacked scalars
    ("d/d(x, y) 3*x^2*y", False),
    ("d/d(x, y) [3*x^2*y, 2*x + y^8]", False),
    ("d/dx [log(x^2), sin(3*x)]", False),
    # §4.2 element-wise binary operators, §4.3 scalar expansion
    ("d/dw w + x", False), ("d/dw w - x", False), ("d/dw w*x", False),
    ("d/dw w/x", True), ("d/dx w/x", True), ("d/dw max(w, x)", False), ("d/dw min(w, x)", False),
    ("d/dx x + z where z: scalar", False), ("d/dz x + z where z: scalar", False),
    ("d/dx x*z where z: scalar", False), ("d/dz x*z where z: scalar", False),
    ("d/dz x/z where z: scalar", True),
    # §4.3 scalar expansion by the scalar itself: an n×1 column (x declared a vector)
    ("d/dz x + z where x: vector(n); z: scalar", False),
    ("d/dz x - z where x: vector(n); z: scalar", False),
    ("d/dz x + 2*z where x: vector(n); z: scalar", False),
    ("d/dz x + z^2 where x: vector(n); z: scalar", False),
    ("d/dz z - x where x: vector(n); z: scalar", False),
    ("d/dz A + z where z: scalar", False),
    ("d/dz sin(A@x + z) where z: scalar", False),
    # a transposed definition is what it stands for (t1' with t1 = A + B: a matrix)
    ("d/dx t1'@x where t1 = A + B", False),
    ("d/dA x'@t1'@x where t1 = A + B", False),
    ("d/db W@x + b where b: scalar", False),
    ("d/db sum(W@x + b) where b: scalar", False),
    ("d/dz max(x, z) where x: vector(n); z: scalar", False),
    ("d/dz (x > z)*x where x: vector(n); z: scalar", False),
    ("d/dx x + sum(x)", False),
    # §4.4 reductions
    ("d/dx sum(x)", False), ("d/dx sum(x*z) where z: scalar", False),
    ("d/dz sum(x*z) where z: scalar", False), ("d/dw dot(w, x)", False),
    ("d/dw w'@x", False), ("d/dx mean(x)", False), ("d/dy mean(y) - sum(y)/N where y: vector(N)", False),
    ("d/dx norm(x)", False), ("d/dx norm(x)^2", False), ("d/dx logsumexp(x)", False),
    ("d/dx softmax(x)", False),
    # element-wise functions on vectors (diag(f'(x)))
    ("d/dx sin(x) + cos(x) + exp(x) + tanh(x) + sigmoid(x)", False),
    ("d/dx log(x) + sqrt(x)", True), ("d/dx relu(x) + abs(x)", False),
    ("d/dx x^3", False), ("d/dx sum(x^3)", False),
    # matrix-vector products
    ("d/dx A@x", False), ("d/dx x'@A", False), ("d/dx x'@A@x", False),
    ("d/dx x'@S@x where S: symmetric(n)", False), ("d/dx norm(A@x - b)^2", False),
    ("d/dx a'@x + x'@B@x", False), ("d/dx norm(x - a)^2", False),
    # §5 neuron, §6 loss
    ("d/dw max(0, w'@x + b)", False), ("d/db max(0, w'@x + b)", False),
    ("d/dw mean((X@w + b - y)^2) where b: scalar", False),
    ("d/db mean((X@w + b - y)^2) where b: scalar", False),
    # vector-valued
    ("d/dx sin(A@x) + x", False), ("d/dx x@x'", False), ("d/dx diag(x)@a", False),
    ("d/dx x*sum(x)", False), ("d/dx diag(x)@A@x", False), ("d/dX logsumexp(X)", False),
    # 004 §6 losses
    ("d/dw sum(log(1 + exp(-y*(X@w))))", False),
    ("d/dw norm(y - X@w)^2 + lam*norm(w)^2 where lam: scalar", False),
    ("d/dw norm(y - X@w)^2 + lam*sum(abs(w)) where lam: scalar", False),
    ("d/dw sum(max(0, 1 - y*(X@w))) + lam/2*norm(w)^2 where lam: scalar", False),
    ("d/dz -y'@log(softmax(z))", False),
    # matrices: seeds 000, 003, 004 and the Cookbook
    ("d/dX tr(A@X)", False), ("d/dX tr(X'@A)", False), ("d/dX tr(A@X@B)", False),
    ("d/dX tr(X'@A@X)", False), ("d/dX logdet(X)", False), ("d/dX det(X)", False),
    ("d/dX tr(inv(X))", False), ("d/dX a'@X@b", False), ("d/dX a'@inv(X)@b", False),
    ("d/dX tr(X@X)", False), ("d/dX norm(X)^2", False), ("d/dX norm(X)", False),
    ("d/dW norm(X'@W)^2", False), ("d/dX sum(sin(X))", False), ("d/dX sum(X*A)", False),
    ("d/dX x'@X'@X@x", False), ("d/dS x'@S@x where S: symmetric(n)", False),
    ("d/dX logdet(X'@X) where X: matrix(n, n)", False), ("d/dX det(X)^2 + tr(X')", False),
    ("d/dW1 sum((W2@tanh(W1@x + b1) + b2 - y)^2)", False),
    ("d/dW2 sum((W2@tanh(W1@x + b1) + b2 - y)^2)", False),
    ("d/dW -y'@log(softmax(W@x))", False),
    # seed 000's four conclusions, and the Cookbook's aᵀXb family
    ("d/dX sum(sin(X@a + b))", False), ("d/da sum(sin(X@a + b))", False),
    ("d/dX sum(sin(A@X + B))", False), ("d/dX sum(sin(X@A + B))", False),
    ("d/dX a'@X'@b", False), ("d/dX tr(X@A@X')", False), ("d/dX tr(A@X')", False),
    ("d/dX b'@X'@X@c", False), ("d/dX tr(X@B@X'@C)", False), ("d/dX sum(X)", False),
    ("d/dX logdet(X) where X: symmetric(n)", False), ("d/dX mean(X)", False),
    ("d/dx kron(x*A, B) where x: scalar", False), ("d/dx tr(diag(x)@A)", False),
    ("d/dx sum((x > 0)*x)", False), ("d/dX vec(X)", False),
    # beyond 2-D: vec forms
    ("d/dX A@X@B", False), ("d/dX X@a + b", False), ("d/da X@a + b", False),
    ("d/dX A@X + B", False), ("d/dX X@A + B", False), ("d/dX sin(X)", False),
    ("d/dX inv(X)", False), ("d/dX X@X", False),
    # commutation matrices, the diagonal embedding, Kronecker products, literals
    ("d/dX X'", False), ("d/dX X'@X", False), ("d/dx diag(x)", False),
    ("d/dX kron(A, X)", False), ("d/dX sum(kron(A, X)^2)", False),
    ("d/dX tr(kron(A, X)) where A: matrix(m, m); X: matrix(n, n)", False),
    # sizes only a product of dimensions ties: matched factor by factor (square X and Y)
    ("d/dX tr(kron(X, Y))", False), ("d/dX sum(kron(X, Y)@kron(A, B))", False),
    ("d/dx kron(I, x') + kron(x, A)", False),
    ("d/dA sum(A@x)^2 where A: matrix(m, 2*n); x: vector(n*2)", False),
    ("d/dX sum(vec(X)^2)", False), ("d/dx sum([sum(x), a*sum(x)]^2)", False),
    ("d/dx [[sum(x), a], [a, sum(x^2)]]", False), ("d/dx sum([[sum(x), a], [a, x'@x]]^2)", False),
    # second derivatives
    ("d^2/dx^2 x'@A@x", False), ("d^2/dx^2 sum(sin(x))", False),
    ("d^2/dx^2 logsumexp(x)", False), ("d^2/dx^2 norm(A@x - b)^2", False),
    ("d^2/dx^2 sin(x)*x^3", False),
    # a matrix (or a row) by stacked scalars: the vec form ∂vec(F)/∂(a, b)
    ("d/d(x, y) [[x*y, x^2], [sin(y), 1]]", False),
    ("d/d(a, b) a*X + b^2*sin(X) where a, b: scalar", False),
    ("d/d(a, b) a*x' + sin(b*y') where a, b: scalar; x, y: vector(n)", False),
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("request_text,positive", CASES, ids=[c[0] for c in CASES])
def test_result_matches_finite_differences(request_text, positive, layout):
    rng = np.random.default_rng(abs(hash(request_text)) % 2**32)
    d = derive(request_text, layout=layout)
    result_np = to_numpy(d.result, d.dims, {e: n for n, e in d.where})
    dims = {x for t in d.types.values() for x in _dims_of(t)}
    for _ in range(3):
        sizes = random_sizes(dims, rng)
        values = random_values(d.types, sizes, rng, positive=positive)
        got = evaluate(result_np, values)
        want = _numeric_derivative(d, values, layout)
        assert_close(got, want, rtol=2e-4, atol=2e-5)


def _dims_of(t: str):
    """The dimension names of a type: matrix(m, 2*n) -> m, n."""
    inside = t[t.find("(") + 1:t.rfind(")")] if "(" in t else ""
    return [p.strip() for x in inside.split(",") for p in x.split("*")
            if p.strip() and not p.strip().isdigit()]


def _numeric_derivative(d, values, layout):
    if d.stacked:
        # ∂vec(f)/∂x for each stacked scalar x (a matrix f: a vec form)
        cols = [np.reshape(finite_difference(lambda v: evaluate(to_numpy(d.expr, d.dims), v),
                                             values, x, "numerator"), -1, order="F")
                for x in d.wrt]
        jac = np.stack(cols, axis=-1)
        if jac.shape[0] == 1:                  # the gradient of a scalar: 1-D
            return jac[0]
        return jac if layout == "numerator" else jac.T
    if len(d.wrt) == 1:
        f_np = to_numpy(d.expr, d.dims)
        return finite_difference(lambda v: evaluate(f_np, v), values, d.wrt[0], layout)
    # second derivative d/dx d/dy f: difference the inner derivative (denominator layout)
    inner = derive("d/d" + d.wrt[1] + " " + _body(d.request), layout="denominator")
    inner_np = to_numpy(inner.result, inner.dims, {e: n for n, e in inner.where})
    return finite_difference(lambda v: evaluate(inner_np, v), values, d.wrt[0], layout)


def _body(request: str) -> str:
    """The request without its derivative prefixes."""
    from mcalc.parser import parse_request
    from mcalc.printing.text import to_text
    req = parse_request(request)
    from mcalc.build import infer
    exprs, typing = infer([req.body], req.decls, request)
    where = "; ".join(f"{k}: {v}" for k, v in typing.as_strings().items())
    return f"{to_text(exprs[0])} where {where}"


def test_every_rule_is_checked_numerically(monkeypatch):
    """Every entry of the rule table is applied by at least one case above."""
    from mcalc import rules
    applied = set()
    look_up = rules.rule_for

    def recording(u, i):
        rule = look_up(u, i)
        applied.add(rule.name)
        return rule
    monkeypatch.setattr(rules, "rule_for", recording)
    for request_text, _ in CASES:
        for layout in ("numerator", "denominator"):
            derive(request_text, layout=layout)
    assert not {r.name for r in rules.RULES} - applied


@pytest.mark.parametrize("k", [12, 20, 60])
def test_any_order_of_derivative(k):
    """d^k/dx^k (exp(x) sin(x)) = 2^(k/2) exp(x) sin(x + kπ/4) (by hand, Leibniz), for
    orders past the common 2 and 3 — compared at points, not as text."""
    import math
    from mcalc.evaluate import evaluate
    d = derive(f"d^{k}/dx^{k} exp(x)*sin(x)")
    for x in (-0.7, 0.3, 1.1):
        want = 2 ** (k / 2) * math.exp(x) * math.sin(x + k * math.pi / 4)
        assert math.isclose(float(evaluate(d.result, {"x": x})), want, rel_tol=1e-9)


def test_an_order_whose_derivative_swells_is_an_error_with_a_column(monkeypatch):
    """tanh's orders grow without end: past MAX_AGAIN nodes another order is refused
    (one line, the column of the prefix) rather than run out of time and memory."""
    from mcalc.errors import McalcError
    from mcalc.methods import graph
    monkeypatch.setattr(graph, "MAX_AGAIN", 60)
    with pytest.raises(McalcError, match="too large to differentiate again") as e:
        derive("d^40/dx^40 tanh(x)")
    assert e.value.column is not None
