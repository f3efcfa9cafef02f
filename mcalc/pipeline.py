"""Request text -> internal Derivation: parse, type, pick a method and derive. The public
Python API (mcalc.pipeline) and check sit on top of this module."""
from __future__ import annotations

import gc

from mcalc.build import infer
from mcalc.derivation import Derivation, Step, dim_sources  # noqa: F401 (API)
from mcalc.errors import McalcError
from mcalc.expr import Expr
from mcalc.parser import parse_decls, parse_request
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
        local = [(), c.defs]
    exprs, typing = infer(bodies, decls, text, req.defs, local)
    return req, exprs[0], (exprs[1] if claim is not None else None), typing


def derive(text: str, types=(), layout: str = "numerator", method: str | None = None,
           steps: bool = True) -> Derivation:
    """The derivation of `text`; steps=False: its result alone, no steps (the same
    result), for a plain batch line."""
    if layout not in LAYOUTS:
        raise McalcError(f"unknown layout '{layout}' (numerator or denominator)")
    with _collector_waits():                  # (the parse too)
        req, body, _, typing = typed(text, types)
        return _by_method(req, body, typing, layout, method, steps)


class _collector_waits:
    """The collector of reference cycles waits until a derivation is done: it allocates
    many objects that live until its end, and full collections in the middle of a deep
    one re-scan them all (a fifth to a third of a 1000-deep sin(sin(…x))'s time); its
    few cycles are collected after. (A class: contextlib's generator costs a
    StopIteration at every exit.)"""
    __slots__ = ("enabled",)

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.enabled:
            gc.enable()


def derive_typed(req: Request, body: Expr, typing: Typing, layout: str,
                 method: str | None, steps: bool = True) -> Derivation:
    """The derivation by the method named (None: the automatic choice); steps=False: the
    result alone (the definition method has its steps either way)."""
    with _collector_waits():
        return _by_method(req, body, typing, layout, method, steps)


def _by_method(req: Request, body: Expr, typing: Typing, layout: str, method: str | None,
               steps: bool) -> Derivation:
    """derive_typed's work, the collector waiting already (derive's, around the parse)."""
    if method is None:
        return (_automatic or _load_automatic()).derive(req, body, typing, layout, not steps)
    from mcalc.methods import chain, differential
    by_name = {m.NAME: m for m in (chain, differential)}
    if method == "definition":     # loaded only when asked for (random, signal, threads)
        from mcalc.methods import definition
        by_name[definition.NAME] = definition
    return by_name[method].derive(req, body, typing, layout, not steps)


_automatic = None             # mcalc.methods.automatic, imported at the first derivation


def _load_automatic():
    global _automatic
    from mcalc.methods import automatic
    _automatic = automatic
    return automatic
