"""Results in textbook form: each expected string is the hand derivation in the seeds
(Parr & Howard §2-§6, seed 000, 003, 004 §3.5/§5/§6 — corrected where 004 is wrong) or the
Matrix Cookbook, written in the request language. The numeric tests check the values;
these pin the form a reader sees."""
import pytest

from mcalc.pipeline import derive
from mcalc.printing.text import to_text

NUMERATOR = [
    ("d/dw sum(w*x) + b", "x'", ("1", "n")),
    ("d/dx sin(x^2)", "2*x*cos(x^2)", ("1", "1")),
    ("d/dx x*x^2", "3*x^2", ("1", "1")),
    ("d/d(x, y) 3*x^2*y", "[6*x*y, 3*x^2]'", ("1", "2")),
    ("d/d(x, y) [3*x^2*y, 2*x + y^8]", "[[6*x*y, 3*x^2], [2, 8*y^7]]", ("2", "2")),
    ("d/dx [log(x^2), sin(3*x)]", "[2/x, 3*cos(3*x)]", ("2", "1")),
    ("d/dw w*x where w, x: vector(n)", "diag(x)", ("n", "n")),
    ("d/dw w + x where w, x: vector(n)", "eye(n)", ("n", "n")),
    ("d/dx sum(x)", "ones(n)'", ("1", "n")),
    ("d/dw dot(w, x)", "x'", ("1", "n")),
    ("d/dx x'@A@x", "x'@(A + A')", ("1", "n")),
    ("d/dX A@X@B", "kron(B', A)", ("m*p", "k*n")),
    ("d/dX sin(X)", "diag(vec(cos(X)))", ("m*n", "m*n")),
    ("d/dx softmax(x)", "diag(softmax(x)) - softmax(x)@softmax(x)'", ("n", "n")),
    ("d^2/dx^2 x'@A@x", "A + A'", ("n", "n")),
    ("d^2/dx^2 sum(sin(x))", "-diag(sin(x))", ("n", "n")),
    ("d/dx d/dy x^2*y^3", "6*x*y^2", ("1", "1")),
    # written out, the same forms: softmax's Jacobian (CS231n), |x|² (004 §2), Gram (MC 56)
    ("d/dx exp(x)/sum(exp(x))", "diag(softmax(x)) - softmax(x)@softmax(x)'", ("n", "n")),
    ("d/dx log(exp(x)/sum(exp(x)))", "eye(n) - ones(n)@softmax(x)'", ("n", "n")),
    ("d/dx abs(x)^2", "2*x", ("1", "1")),
    ("d/dx e*x^2", "2*e*x", ("1", "1")),                      # the constant e, as written
    ("d/dx x*abs(x)", "2*abs(x)", ("1", "1")),
    ("d/dx x^2*exp(x)", "x*exp(x)*(x + 2)", ("1", "1")),
    ("d^4/dx^4 exp(x^2)", "4*exp(x^2)*(4*x^4 + 12*x^2 + 3)", ("1", "1")),
    ("d/dX logdet(X'@X) where X: matrix(n, n)", "2*inv(X'@X)@X'", ("n", "n")),
    ("d/dx x@x'@x", "2*x@x' + x'@x*eye(n)", ("n", "n")),     # kron(x', x) is x@x'
]

DENOMINATOR = [
    ("d/dx x'@A@x", "(A + A')@x"),
    ("d/dx log(x'@x)", "2*x/(x'@x)"),              # a quotient by the variables: last
    ("d/dw mean((X@w - y)^2)", "2/m*X'@(X@w - y)"),  # by a constant: in front
    ("d/dx x'@S@x where S: symmetric(n)", "2*S@x"),
    ("d/dW norm(X'@W)^2", "2*X@X'@W"),                       # seed 003
    ("d/dX tr(A@X@B)", "(B@A)'"),                            # 004 §3.5: A'@B'
    ("d/dX tr(A@X)", "A'"),
    ("d/dX tr(X'@A)", "A"),
    ("d/dX tr(X'@A@X)", "(A + A')@X"),
    ("d/dX logdet(X)", "inv(X)'"),
    ("d/dX det(X)", "det(X)*inv(X)'"),
    ("d/dX tr(inv(X))", "-(inv(X)@inv(X))'"),               # 004 prints -(X⁻¹)ᵀX⁻¹: wrong
    ("d/dX a'@X@b", "a@b'"),
    ("d/dX sum(sin(X@a + b))", "cos(X@a + b)@a'"),           # seed 000, y = Xa + b
    ("d/da sum(sin(X@a + b))", "X'@cos(X@a + b)"),
    ("d/dX sum(sin(A@X + B))", "A'@cos(A@X + B)"),           # Y = AX + B
    ("d/dX sum(sin(X@A + B))", "cos(X@A + B)@A'"),           # Y = XA + B
    ("d/dx norm(x - a)^2", "2*(x - a)"),
    ("d/dw sum(log(1 + exp(-y*(X@w))))", "-X'@(y*sigmoid(-y*(X@w)))"),                # 004 §6.3
    ("d/dw norm(y - X@w)^2 + lam*norm(w)^2 where lam: scalar", "2*(lam*w - X'@(y - X@w))"),
    ("d/dw norm(y - X@w)^2 + lam*sum(abs(w)) where lam: scalar",
     "lam*sign(w) - 2*X'@(y - X@w)"),                                                 # lasso
    ("d/dw sum(max(0, 1 - y*(X@w))) + lam/2*norm(w)^2 where lam: scalar",
     "lam*w - X'@(y*(1 - y*(X@w) > 0))"),                                             # SVM
    ("d/dz -y'@log(softmax(z))", "sum(y)*softmax(z) - y"),
    # where SymPy 1.14's MatrixSymbol.diff returns 0, ArrayAdd(PermuteDims(…)) or a ValueError
    ("d/dX log(det(X))", "inv(X)'"),
    ("d/dW sum((sigmoid(W@x + b) - y)^2)",
     "2*sigmoid(W@x + b)*(1 - sigmoid(W@x + b))*(sigmoid(W@x + b) - y)@x'"),
    ("d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)",
     "2*(W1@x + b1 > 0)*(W2'@(W2@relu(W1@x + b1) + b2 - y))@x'"),
]


@pytest.mark.parametrize("request_text,result,shape", NUMERATOR, ids=[c[0] for c in NUMERATOR])
def test_numerator_layout(request_text, result, shape):
    d = derive(request_text)
    assert to_text(d.result) == result
    assert d.shape == shape


@pytest.mark.parametrize("request_text,result", DENOMINATOR, ids=[c[0] for c in DENOMINATOR])
def test_denominator_layout(request_text, result):
    assert to_text(derive(request_text, layout="denominator").result) == result


def test_subgradient_choice_is_stated_at_kinks():
    d = derive("d/dw max(0, w'@x + b)")
    notes = " ".join(s.text for s in d.steps if s.kind == "note")
    assert "[0, 1]" in notes
    d = derive("d/dw sum(abs(w))")
    assert "[-1, 1]" in " ".join(s.text for s in d.steps if s.kind == "note")


def test_seed_003_derivation_has_the_differential_steps():
    d = derive("d/dW norm(X'@W)^2", layout="denominator")
    from mcalc.printing.plain import step_text
    lines = [step_text(s) for s in d.steps if s.kind == "differential"]
    assert "dy = 2*U1 : d(U1)" in lines
    assert "dy = 2*U1 : X'@d(W)" in lines
    assert "dy = 2*X@U1 : d(W)" in lines
