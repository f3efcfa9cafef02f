"""Classic results in textbook form: for each request, the form a textbook prints, written
here by hand (Parr & Howard, seeds 000/003/004, the Matrix Cookbook, CS229/CS231n losses).

Each case checks two things (mcalc's result is never the reference):
- mcalc's result is no longer than the textbook's, in tokens — names, numbers and
  operators count, brackets and commas are free (`x^x*(log(x) + 1)` is 8);
- the textbook form equals the derivative: central finite differences of the request's
  expression, at random points, random sizes and three value scales.
"""
import re

import numpy as np
import pytest

from mcalc.pipeline import derive, typed
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import to_text
from numeric import assert_close, evaluate, finite_difference, random_sizes, random_values

TOKEN = re.compile(r"[^\W\d]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|[<>]=?|[-+*/^@']")

V = " where x, a, b, w: vector(n); A, B: matrix(n, n); y: scalar"

# (request, layout, textbook form, positive values only)
CLASSICS = [
    # P&H §2 and calculus
    ("d/dx x^2", "numerator", "2*x", False),
    ("d/dx x^3", "numerator", "3*x^2", False),
    ("d/dx sin(x^2)", "numerator", "2*x*cos(x^2)", False),
    ("d/dx sin(x + x^2)", "numerator", "(1 + 2*x)*cos(x + x^2)", False),
    ("d/dx x*x^2", "numerator", "3*x^2", False),
    ("d/dx 9*(x + x^2)", "numerator", "9 + 18*x", False),
    ("d/dx e^x", "numerator", "exp(x)", False),
    ("d/dx x^x", "numerator", "x^x*(log(x) + 1)", True),
    ("d/dx x/(1 + x)", "numerator", "1/(1 + x)^2", True),
    ("d/dx log(x)", "numerator", "1/x", True),
    ("d/dx sqrt(x)", "numerator", "1/(2*sqrt(x))", True),
    ("d/dx exp(2*x)", "numerator", "2*exp(2*x)", False),
    ("d/dx sigmoid(x)", "numerator", "sigmoid(x)*(1 - sigmoid(x))", False),
    ("d/dx 1/(1 + exp(-x))", "numerator", "sigmoid(x)*(1 - sigmoid(x))", False),
    ("d/dx exp(x)/(1 + exp(x))", "numerator", "sigmoid(x)*(1 - sigmoid(x))", False),
    ("d/dx tanh(x)", "numerator", "1 - tanh(x)^2", False),
    ("d/dx log(1 + exp(x))", "numerator", "sigmoid(x)", False),
    ("d/dx log(sigmoid(x))", "numerator", "1 - sigmoid(x)", False),
    ("d/dx x*exp(x)", "numerator", "(1 + x)*exp(x)", False),
    ("d/dx x^2*exp(x)", "numerator", "x*(x + 2)*exp(x)", False),
    ("d/dx x^2*exp(-x)", "numerator", "x*(2 - x)*exp(-x)", False),
    ("d/dx x^2*y^3", "numerator", "2*x*y^3", False),
    ("d/dx (x^2 + 1)^3", "numerator", "6*x*(x^2 + 1)^2", False),
    ("d/dx 1/x", "numerator", "-1/x^2", True),
    ("d/dx x*log(x)", "numerator", "log(x) + 1", True),
    ("d/dx log(x^2 + 1)", "numerator", "2*x/(x^2 + 1)", False),
    ("d/dx (x - 1)/(x + 1)", "numerator", "2/(x + 1)^2", True),
    ("d/dx x/(1 + x^2)", "numerator", "(1 - x^2)/(1 + x^2)^2", False),
    ("d/dx d/dy x^2*y^3", "numerator", "6*x*y^2", False),
    ("d/dx sin(x)^2 + cos(x)^2", "numerator", "0", False),
    ("d/dx abs(x)^2", "numerator", "2*x", False),                          # 004 §2
    ("d/dx abs(x)^3", "numerator", "3*x*abs(x)", False),
    ("d/dx x*abs(x)", "numerator", "2*abs(x)", False),
    # logistic regression, softmax, norms (CS229, CS231n, the Cookbook)
    ("d/dw -y*log(sigmoid(w'@x)) - (1-y)*log(1-sigmoid(w'@x))" + V, "denominator",
     "(sigmoid(w'@x) - y)*x", False),
    ("d/dx 1/(1 + exp(-a'@x))" + V, "denominator", "sigmoid(a'@x)*(1 - sigmoid(a'@x))*a", False),
    ("d/dx a'@x" + V, "denominator", "a", False),
    ("d/dx x'@A@x" + V, "denominator", "(A + A')@x", False),
    ("d/dx x'@S@x where S: symmetric(n)", "denominator", "2*S@x", False),
    ("d/dx x'@x", "denominator", "2*x", False),
    ("d/dx exp(x)/sum(exp(x))" + V, "numerator",
     "diag(softmax(x)) - softmax(x)@softmax(x)'", False),                # CS231n softmax
    ("d/dx log(exp(x)/sum(exp(x)))" + V, "numerator", "eye(n) - ones(n)@softmax(x)'", False),
    ("d/dx norm(x)^2", "denominator", "2*x", False),
    ("d/dx sum(abs(x)^3)" + V, "denominator", "3*x*abs(x)", False),       # the 3-norm, cubed
    ("d/dx norm(x)", "denominator", "x/norm(x)", False),
    ("d/dx sqrt(x'@x)", "denominator", "x/norm(x)", False),
    ("d/dx norm(x - a)^2" + V, "denominator", "2*(x - a)", False),
    ("d/dx norm(A@x - b)^2" + V, "denominator", "2*A'@(A@x - b)", False),
    ("d/dx log(x'@A@x)" + V, "denominator", "(A + A')@x/(x'@A@x)", True),
    ("d/dx log(sum(exp(x)))", "denominator", "softmax(x)", False),
    ("d/dx logsumexp(x)", "denominator", "softmax(x)", False),
    ("d/dx sum(x) where x: vector(n)", "denominator", "ones(n)", False),
    ("d/dx mean(x) where x: vector(n)", "denominator", "ones(n)/n", False),
    ("d/dw sum(w*x) + b where b: scalar", "denominator", "x", False),
    ("d/dw max(0, w'@x + b) where b: scalar", "denominator", "(w'@x + b > 0)*x", False),
    ("d/dw sum(log(1 + exp(-y*(X@w)))) where y: vector(N)", "denominator",
     "-X'@(y*sigmoid(-y*(X@w)))", False),
    ("d/dw norm(y - X@w)^2 + lam*norm(w)^2 where lam: scalar", "denominator",
     "2*X'@(X@w - y) + 2*lam*w", False),
    ("d/dw mean((X@w + b - y)^2) where b: scalar; y: vector(N)", "denominator",
     "2/N*X'@(X@w + b - y)", False),
    ("d/dw mean((y - relu(X@w + b))^2) where b: scalar; y: vector(N)", "denominator",
     "2/N*X'@((X@w + b - y)*(X@w + b > 0))", False),
    ("d/db mean((y - relu(X@w + b))^2) where b: scalar; y: vector(N)", "denominator",
     "2*mean((X@w + b - y)*(X@w + b > 0))", False),
    ("d/dz -y'@log(softmax(z))", "denominator", "sum(y)*softmax(z) - y", False),
    ("d/dw sum(max(0, 1 - y*(X@w))) + lam/2*norm(w)^2 where lam: scalar", "denominator",
     "lam*w - X'@(y*(1 - y*(X@w) > 0))", False),
    ("d/dx a'@x + x'@B@x" + V, "denominator", "a + (B + B')@x", False),
    ("d/dx x'@A@x + b'@x + c where c: scalar" + V.replace(" where", ";"), "denominator",
     "(A + A')@x + b", False),
    # Hessians
    ("d^2/dx^2 0.5*x'@A@x + b'@x" + V, "denominator", "(A + A')/2", False),
    ("d^2/dx^2 x'@A@x" + V, "denominator", "A + A'", False),
    ("d^2/dx^2 norm(x)^2 where x: vector(n)", "denominator", "2*eye(n)", False),
    ("d^2/dx^2 sum(sin(x))", "denominator", "-diag(sin(x))", False),
    # matrices (the Cookbook, seeds 000, 003, 004)
    ("d/dX tr(A@X@B)", "denominator", "A'@B'", False),
    ("d/dX tr(A@X)", "denominator", "A'", False),
    ("d/dX tr(X'@A)", "denominator", "A", False),
    ("d/dX tr(X'@A@X)", "denominator", "(A + A')@X", False),
    ("d/dX logdet(X)", "denominator", "inv(X)'", False),
    ("d/dX logdet(X'@X) where X: matrix(n, n)", "denominator", "2*X@inv(X'@X)", False),  # MC (56)
    ("d/dX vec(X)'@vec(B) where X, B: matrix(m, n)", "denominator", "B", False),   # M&N §2.4
    ("d/dX norm(vec(X))^2 where X: matrix(m, n)", "numerator", "2*X'", False),
    ("d/dX sum(exp(vec(X))) where X: matrix(m, n)", "denominator", "exp(X)", False),
    ("d/dX log(det(X))", "denominator", "inv(X)'", False),
    ("d/dX det(X)", "denominator", "det(X)*inv(X)'", False),
    ("d/dX a'@X@b", "denominator", "a@b'", False),
    ("d/dX tr(inv(X))", "denominator", "-(inv(X)@inv(X))'", False),
    ("d/dX logdet(inv(X))", "denominator", "-inv(X)'", False),
    ("d/dX det(inv(X))", "denominator", "-det(inv(X))*inv(X)'", False),
    ("d/dX tr(A@inv(inv(X)))", "denominator", "A'", False),
    ("d/dx norm(diag(x))", "denominator", "x/norm(x)", False),
    ("d/dx tr(diag(x))", "denominator", "ones(n)", False),
    # the diagonal of an outer product: diag(u@v') = u*v
    ("d/dx sum(diag(x)@diag(x))", "numerator", "2*x'", False),
    ("d/dx sum(diag(x@x'))", "denominator", "2*x", False),
    ("d/dx diag(3*x@a')'@b", "numerator", "3*(a*b)'", False),
    ("d/dX sum(sin(X@a + b))", "denominator", "cos(X@a + b)@a'", False),
    ("d/da sum(sin(X@a + b))", "denominator", "X'@cos(X@a + b)", False),
    ("d/dW norm(X'@W)^2", "denominator", "2*X@X'@W", False),
    ("d/dX norm(X)^2", "denominator", "2*X", False),
    ("d/dX tr(X@X')", "denominator", "2*X", False),
    ("d/dX tr(X@A@X')", "denominator", "X@(A + A')", False),
    ("d/dW sum((W@x - y)^2)", "denominator", "2*(W@x - y)@x'", False),
    ("d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)", "denominator",
     "2*((W1@x + b1 > 0)*(W2'@(W2@relu(W1@x + b1) + b2 - y)))@x'", False),
    # Jacobians and vec forms (numerator layout)
    ("d/dx softmax(x)", "numerator", "diag(softmax(x)) - softmax(x)@softmax(x)'", False),
    ("d/dx A@x", "numerator", "A", False),
    ("d/dw w*x where w, x: vector(n)", "numerator", "diag(x)", False),
    ("d/dX A@X@B", "numerator", "kron(B', A)", False),
    ("d/dx sigmoid(x)", "numerator", "sigmoid(x)*(1 - sigmoid(x))", False),
    # element-wise Jacobians: ∂f(x)/∂x = diag(f'(x)), ∂vec(f(X))/∂vec(X) = diag(vec(f'(X)))
    ("d/dx x*sin(x) where x: vector(n)", "numerator", "diag(sin(x) + x*cos(x))", False),
    ("d/dx x/(1 + x) where x: vector(n)", "numerator", "diag(1/(1 + x)^2)", True),
    ("d/dx x*log(x) where x: vector(n)", "numerator", "diag(1 + log(x))", True),
    ("d/dx (x/x)*x where x: vector(n)", "numerator", "eye(n)", True),
    ("d/dX sin(X)*X", "numerator", "diag(vec(sin(X) + X*cos(X)))", False),
    ("d/dX X/(1 + X)", "numerator", "diag(vec(1/(1 + X)^2))", True),
    ("d/dX X*log(X)", "numerator", "diag(vec(1 + log(X)))", True),
    ("d/dX (X/X)*X", "numerator", "eye(m*n)", True),
    ("d/dX -det(X/X)", "numerator", "0*ones(n)@ones(n)'", True),       # det(X/X) is constant
    ("d/dX tr(X^2)", "numerator", "2*X*eye(n)", False),           # X^2 element-wise
    ("d/dx x'@x*x'@A@x", "denominator", "2*(x'@A@x)*x + x'@x*(A + A')@x", False),
    ("d/dW sum((W@X - N)^2)", "numerator", "2*X@(W@X - N)'", False),
    ("d/dx 3*x/norm(x)", "numerator", "3*(eye(n)/norm(x) - x@x'/norm(x)^3)", False),
    # log-sum-exp: its gradient is softmax, through a product too
    ("d/dx log(sum(exp(x)))", "numerator", "softmax(x)'", False),
    ("d/dx log(sum(exp(A@x)))", "numerator", "softmax(A@x)'@A", False),
    ("d/dx log(sum(exp(A@x)))", "denominator", "A'@softmax(A@x)", False),
    ("d/dW sum(softmax(W@x))", "numerator", "0*ones(n)@ones(m)'", False),      # it is 1
]


def tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def test_token_count_is_the_issues():
    assert tokens("x^x*(log(x) + 1)") == 8 and tokens("x^x + log(x)*x^x") == 10


@pytest.mark.parametrize("request_text,layout,textbook,positive", CLASSICS,
                         ids=[c[0] for c in CLASSICS])
def test_no_longer_than_the_textbook(request_text, layout, textbook, positive):
    d = derive(request_text, layout=layout)
    assert not d.where
    got = to_text(d.result)
    assert tokens(got) <= tokens(textbook), f"{got} is longer than {textbook}"
    claim = typed(request_text, claim=got)[2]               # the result feeds back
    assert claim.shape == d.result.shape or claim.is_scalar and got == "0"


def _hessian_fd(f, values, x, layout):
    """Second derivatives by differencing central differences (no mcalc derivative)."""
    inner = lambda v: finite_difference(f, v, x, "denominator", h=1e-4)  # noqa: E731
    return finite_difference(inner, values, x, layout, h=1e-4)


@pytest.mark.parametrize("request_text,layout,textbook,positive", CLASSICS,
                         ids=[c[0] for c in CLASSICS])
def test_textbook_form_is_the_derivative(request_text, layout, textbook, positive):
    _, body, claim, _ = typed(request_text, claim=textbook)
    d = derive(request_text, layout=layout)
    f_np, claim_np = to_numpy(body, d.dims), to_numpy(claim, d.dims)
    result_np = to_numpy(d.result, d.dims)
    dims = set(d.dims)              # the request's (a claim may name them: eye(m*n))
    rng = np.random.default_rng(len(request_text))
    f = lambda v: evaluate(f_np, v)  # noqa: E731
    for scale in (0.3, 1.0, 2.0):
        sizes = random_sizes(dims, rng)
        values = {k: v * scale for k, v in
                  random_values(d.types, sizes, rng, positive=positive).items()}
        if len(d.wrt) == 2 and d.wrt[0] == d.wrt[1]:
            want = _hessian_fd(f, values, d.wrt[0], layout)
        elif len(d.wrt) == 2:
            want = finite_difference(
                lambda v: finite_difference(f, v, d.wrt[1], "denominator", h=1e-4),
                values, d.wrt[0], layout, h=1e-4)
        else:
            want = finite_difference(f, values, d.wrt[0], layout)
        claimed = np.broadcast_to(evaluate(claim_np, values), np.shape(want))
        assert_close(claimed, want, rtol=1e-3, atol=1e-4, what=f"textbook {textbook}")
        got = np.broadcast_to(evaluate(result_np, values), np.shape(want))
        assert_close(got, want, rtol=1e-3, atol=1e-4, what=f"mcalc {to_text(d.result)}")
