"""The named function identities of textbook form — one table, shared by the simplifier
(mcalc.simplify, mcalc.algebra) and, through `IDENTITIES`, by anything else that needs the
same equalities (check's canonical form).

Each entry is data: its name (what a derivation's simplify step cites), the formula, its
source. The local rewrites (one node, its operands already simplified) are functions in
`REWRITE_BY_OP`; the identities that need a whole element-wise product or quotient —
the logistic function, softmax, relu under its step — are applied by mcalc.algebra under the names here.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from mcalc import expr as E
from mcalc.expr import Expr
from mcalc.types import SCALAR


class Identity(NamedTuple):
    name: str
    formula: str
    source: str


E_POWER = Identity("e^u = exp(u)", "exp(a)^u = exp(a*u), so e^x = exp(x)", "algebra")
LOG_EXP = Identity("log(exp(u)) = u", "log(exp(u)) = u, log(e) = 1", "algebra")
NORM = Identity("sqrt(x'x) = norm(x)", "sqrt(x'@x) = sqrt(sum(x^2)) = norm(x)", "MC §2.6")
LOGISTIC = Identity("exp(u)/(1 + exp(u)) = sigmoid(u)",
                    "exp(u)/(1 + exp(u)) = 1/(1 + exp(-u)) = sigmoid(u), "
                    "exp(-u)/(1 + exp(-u))^2 = sigmoid(u)*(1 - sigmoid(u))", "004 §6.3")
SOFTMAX = Identity("exp(x)/sum(exp(x)) = softmax(x)", "exp(x)/sum(exp(x)) = softmax(x)",
                   "CS231n softmax")

SOFTMAX_SUM = Identity("sum(softmax(x)) = 1", "sum(softmax(x)) = 1", "CS231n softmax")
RELU_STEP = Identity("relu(u)*(u > 0) = u*(u > 0)",
                     "relu(u)*(u > 0) = u*(u > 0): the error term, not the activation",
                     "P&H §6")

ABS_SIGN = Identity("abs(u)*sign(u) = u",
                    "abs(u)*sign(u) = u, abs(u)^k*sign(u) = u*abs(u)^(k-1), u*sign(u) = abs(u) "
                    "(sign(0) = 0, the subgradient 004 takes)", "004 §2, §6.4")

SQRT_POWER = Identity("sqrt(u)^2 = u", "sqrt(u)^(2k) = u^k (wherever sqrt(u) is real)", "algebra")

IDENTITIES = (E_POWER, LOG_EXP, NORM, LOGISTIC, SOFTMAX, SOFTMAX_SUM, RELU_STEP, ABS_SIGN,
              SQRT_POWER)


def _pow(base: Expr, p: Expr) -> Expr | None:
    """exp(a)^u = exp(a*u) (e^x, where e is exp(1)); a numeric power of exp(a) stays one,
    so that exp(x)^2 and exp(x) remain powers of one atom to the algebra."""
    if base.op == "exp" and p.is_scalar and (p.op != "num" or E.is_number(base.args[0], 1)):
        a = base.args[0]
        arg = p if E.is_number(a, 1) else Expr("mul", (a, p), base.shape)
        return Expr("exp", (arg,), base.shape)
    return None


def _log(a: Expr) -> Expr | None:
    if a.op == "exp":
        return a.args[0]
    return None


def _sqrt(a: Expr) -> Expr | None:
    if a.op == "matmul" and len(a.args) == 2 and a.args[1].is_column \
            and a.args[0].op == "T" and a.args[0].args[0] is a.args[1]:
        return Expr("norm", (a.args[1],), SCALAR)
    if a.op == "sum" and a.args[0].op == "pow" and E.is_number(a.args[0].args[1], 2):
        return Expr("norm", (a.args[0].args[0],), SCALAR)
    return None


# op -> (identity, the ops of a first operand it may apply to (a cheap test first: the
# simplifier asks at every node of these ops), rewrite(operands) -> Expr or None); the
# result is rebuilt by the caller
REWRITE_BY_OP: dict[str, tuple[Identity, frozenset, Callable]] = {
    "pow": (E_POWER, frozenset({"exp"}), lambda args: _pow(*args)),
    "log": (LOG_EXP, frozenset({"exp"}), lambda args: _log(args[0])),
    "sqrt": (NORM, frozenset({"matmul", "sum"}), lambda args: _sqrt(args[0])),
    "sum": (SOFTMAX_SUM, frozenset({"softmax"}),
            lambda args: E.ONE if args[0].op == "softmax" else None),
}
