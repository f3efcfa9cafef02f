"""No --method: for each derivative of the request, the differential method by a matrix
(dy = G : dX gives a scalar's gradient directly, dF = A dX B a vec form's kron(B', A)),
the chain rule otherwise (by a scalar, a vector or stacked scalars)."""
from __future__ import annotations

from mcalc.derivation import Derivation
from mcalc.expr import Expr
from mcalc.methods.chain import ChainRule
from mcalc.methods.differential import Differential
from mcalc.methods.graph import derive_groups

NAME = "automatic"


def pick(f: Expr, xs: list[Expr]):
    return Differential if xs[0].is_matrix else ChainRule      # (stacked: scalars)


def derive(req, body: Expr, typing, layout: str, quiet: bool = False) -> Derivation:
    return derive_groups(req, body, typing, layout, pick, quiet)
