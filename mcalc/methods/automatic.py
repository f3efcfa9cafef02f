"""No --method: for each derivative of the request, the differential method for a scalar
by a matrix (dy = G : dX gives the gradient directly), the chain rule otherwise."""
from __future__ import annotations

from mcalc.derivation import Derivation
from mcalc.expr import Expr
from mcalc.methods.chain import ChainRule
from mcalc.methods.differential import Differential
from mcalc.methods.graph import derive_groups

NAME = "automatic"


def pick(f: Expr, xs: list[Expr]):
    return Differential if f.is_scalar and any(x.is_matrix for x in xs) else ChainRule


def derive(req, body: Expr, typing, layout: str) -> Derivation:
    return derive_groups(req, body, typing, layout, pick)
