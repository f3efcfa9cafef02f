"""Untyped syntax tree produced by the parser; mcalc.types turns it into typed Expr nodes.

The nodes are mcalc.record.Record classes (frozen-dataclass equivalents that are cheaper
to define: every call of mcalc imports this module).
"""
from __future__ import annotations

from mcalc.record import Record, fillable


class Syntax(Record):
    __slots__ = _fields = ("op", "args", "text", "column")

    def __new__(cls, op: str, args: tuple = (), text: str = "", column: int = 0):
        return syntax(op, args, text, column)


def syntax(op: str, args: tuple, text: str, column: int) -> Syntax:
    """A Syntax node, built as its fillable twin (mcalc.record.fillable): the parser makes
    one at almost every reduction, and a call of this function is half the cost of a
    class call that assigns the frozen fields through their setters."""
    node = _new(_SyntaxFill)
    node.op = op                 # 'name', 'number', 'call', 'add', 'matmul', 'list', ...
    node.args = args
    node.text = text             # identifier, number text, function or operator spelling
    node.column = column
    node.__class__ = Syntax
    return node


_new = object.__new__
_SyntaxFill = fillable(Syntax)


class Decl(Record):
    __slots__ = _fields = ("names", "kind", "dims", "column", "name_columns", "dim_columns")

    def __init__(self, names: tuple[str, ...], kind: str, dims: tuple[str, ...],
                 column: int = 0, name_columns: tuple[int, ...] = (),
                 dim_columns: tuple[int, ...] = ()):
        s = object.__setattr__
        s(self, "names", names)
        s(self, "kind", kind)        # scalar | vector | matrix | symmetric
        s(self, "dims", dims)
        s(self, "column", column)
        s(self, "name_columns", name_columns)    # each name's and dimension's (for errors;
        s(self, "dim_columns", dim_columns)      # empty when not parsed from text)

    def text(self) -> str:
        """The type as declared: 'scalar', 'vector(n)', 'matrix(m, n)'."""
        return f"{self.kind}({', '.join(self.dims)})" if self.dims else self.kind

    def name_column(self, i: int) -> int:
        return self.name_columns[i] if self.name_columns else self.column

    def dim_column(self, i: int) -> int:
        return self.dim_columns[i] if self.dim_columns else self.column


class Definition(Record):
    """`where t1 = tanh(W@x)`: the name stands for the expression (it is not a variable)."""
    __slots__ = _fields = ("name", "body", "column")

    def __init__(self, name: str, body: Syntax, column: int = 0):
        s = object.__setattr__
        s(self, "name", name)
        s(self, "body", body)
        s(self, "column", column)


class Request(Record):
    """A request, or a claim (no wrt): its own declarations and definitions, in order."""
    __slots__ = _fields = ("text", "wrt", "body", "decls", "wrt_columns", "defs")

    def __new__(cls, text: str, wrt: tuple[tuple[str, ...], ...], body: Syntax,
                decls: tuple[Decl, ...] = (), wrt_columns: tuple[int, ...] = (),
                defs: tuple[Definition, ...] = ()):
        self = _new(_RequestFill)          # (built as its twin: one per request)
        self.text = text
        self.wrt = wrt               # outermost first: d/dx d/dy f -> (("x",), ("y",))
        self.body = body
        self.decls = decls
        self.wrt_columns = wrt_columns
        self.defs = defs
        self.__class__ = cls
        return self


_RequestFill = fillable(Request)
