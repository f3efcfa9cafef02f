"""Untyped syntax tree produced by the parser; mcalc.types turns it into typed Expr nodes."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Syntax:
    op: str                      # 'name', 'number', 'call', 'add', 'matmul', 'list', ...
    args: tuple = ()
    text: str = ""               # identifier, number text, function or operator spelling
    column: int = 0


@dataclass(frozen=True)
class Decl:
    names: tuple[str, ...]
    kind: str                    # scalar | vector | matrix | symmetric
    dims: tuple[str, ...]
    column: int = 0


@dataclass(frozen=True)
class Request:
    text: str
    wrt: tuple[tuple[str, ...], ...]   # outermost first: d/dx d/dy f -> (("x",), ("y",))
    body: Syntax
    decls: tuple[Decl, ...] = field(default_factory=tuple)
    wrt_columns: tuple[int, ...] = ()
