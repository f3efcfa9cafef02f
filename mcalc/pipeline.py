"""Request text -> internal Derivation: parse, type, pick a method and derive. The public
Python API (mcalc.pipeline) and check sit on top of this module."""
from __future__ import annotations

from mcalc import engine
from mcalc.build import infer
from mcalc.derivation import Derivation, Step, dim_sources  # noqa: F401 (API)
from mcalc.errors import McalcError
from mcalc.expr import Expr
from mcalc.parser import parse_decls, parse_request
from mcalc.simplify import Simplifier
from mcalc.syntax import Request
from mcalc.types import Typing

LAYOUTS = ("numerator", "denominator")
METHODS = ("chain", "differential", "definition")


def decls_from_options(types: tuple[str, ...] | list[str]) -> tuple:
    out: tuple = ()
    for t in types or ():
        out += parse_decls(t)
    return out


def typed(text: str, types=(), claim: str | None = None):
    """(request, typed body, typed claim or None, typing) — the claim typed together with the
    request, so both see the same declarations and dimensions."""
    req = parse_request(text, decls_from_options(types))
    bodies, decls, local = [req.body], req.decls, [()]
    if claim is not None:
        from mcalc.parser import parse_claim
        c = parse_claim(claim)
        bodies.append(c.body)
        decls, local = decls + c.decls, [(), c.defs]
    exprs, typing = infer(bodies, decls, text, req.defs, local)
    return req, exprs[0], (exprs[1] if claim is not None else None), typing


def _variable(name: str, typing: Typing, req: Request, k: int) -> Expr:
    from mcalc import expr as E
    col = req.wrt_columns[k] if k < len(req.wrt_columns) else 0
    if name not in typing.vars:
        raise McalcError(typing.not_a_variable(name), col)
    vt = typing.vars[name]
    return E.var(name, vt.shape, vt.kind == "symmetric")


def derive(text: str, types=(), layout: str = "numerator", method: str | None = None) -> Derivation:
    if layout not in LAYOUTS:
        raise McalcError(f"unknown layout '{layout}' (numerator or denominator)")
    req, body, _, typing = typed(text, types)
    return derive_typed(req, body, typing, layout, method)


def _where_names(req: Request) -> set[str]:
    """The names the request's `where` definitions give (intermediates never take them)."""
    return {getattr(dcl, "name", None) for dcl in getattr(req, "defs", ())} - {None}


def derive_typed(req: Request, body: Expr, typing: Typing, layout: str,
                 method: str | None) -> Derivation:
    if method == "definition":
        from mcalc.definition import definition_derivation
        return definition_derivation(req, body, typing, layout, lambda: derive_typed(
            req, body, typing, layout, None))
    steps: list[Step] = []
    simp = Simplifier()
    f = body
    wrt_names: list[str] = []
    groups = list(reversed(req.wrt))                    # innermost derivative first
    vec_form = False
    chosen = method
    names = engine.Names(body, _where_names(req))
    for k, group in enumerate(groups):
        xs = [_variable(n, typing, req, len(groups) - 1 - k) for n in group]
        wrt_names = list(group) + wrt_names
        last = k == len(groups) - 1
        lay = layout if last else "denominator"        # inner derivatives as gradients
        m = method or ("differential" if any(x.is_matrix for x in xs) and f.is_scalar
                       else "chain")
        chosen = m
        root = ""
        if k:
            root = names.fresh("g")
            steps.append(Step("note", text=f"differentiate the result again, by "
                              f"{', '.join(group)}: call it {root}"))
        if len(xs) > 1:
            f, st, vec_form = engine.stacked_derivative(f, xs, lay, m, simp, names, root)
        else:
            f, st, vec_form = engine.first_derivative(f, xs[0], lay, m, simp, names, root)
        steps.extend(st)
    from mcalc.share import shared_names
    where = shared_names(f, taken=typing.defined) if req.wrt else ()
    return Derivation(request=req.text, wrt=tuple(wrt_names), layout=layout,
                      method=chosen or "chain", types=typing.as_strings(), expr=body,
                      result=f if req.wrt else None, steps=tuple(steps), vec_form=vec_form,
                      dims=dim_sources(typing), of=engine.labels(body)[0], where=where,
                      stacked=bool(req.wrt) and len(set(req.wrt)) == 1 and len(req.wrt[0]) > 1,
                      groups=tuple(tuple(g) for g in req.wrt))
