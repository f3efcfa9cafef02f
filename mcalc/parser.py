"""Text -> mcalc.syntax, through lark's LALR parser.

The parser is lark's standalone module generated from grammar/mcalc.lark
(`python -m mcalc.grammar_build`), so a call never imports lark itself or
rebuilds the tables; tests keep the generated module in sync with the grammar.
"""
from __future__ import annotations

from mcalc import _lark_parser as lk
from mcalc.errors import McalcError
from mcalc.syntax import Decl, Definition, Request, Syntax

MAX_LENGTH = 100_000          # characters in one request
MAX_DEPTH = 10_000            # nesting of the syntax tree (every walk is iterative)
MAX_ORDER = 10                # k in d^k/dx^k: each order multiplies the result's size

_parser = None


def _lark():
    """The LALR parser with ToSyntax applied at each reduction: syntax is built as the
    parser goes, without a parse tree to walk afterwards (lark's Transformer recurses
    once per level, and the extra walk was a fifth of a short request's parse)."""
    global _parser
    if _parser is None:
        _parser = lk.Lark_StandAlone(transformer=ToSyntax())
    return _parser


def _col(tok) -> int:
    return getattr(tok, "column", 0) or 0


class ToSyntax(lk.Transformer):
    """One short method per grammar alias, as in lark's calc example."""

    def number(self, c):
        return Syntax("number", text=str(c[0]), column=_col(c[0]))

    def name(self, c):
        return Syntax("name", text=str(c[0]), column=_col(c[0]))

    def call(self, c):
        return Syntax("call", tuple(c[1:]), text=str(c[0]), column=_col(c[0]))

    def bracket(self, c):
        return Syntax("list", tuple(c[1:]), column=_col(c[0]))

    def _binary(op):
        def build(self, c):
            return Syntax(op, (c[0], c[2]), text=str(c[1]), column=_col(c[1]))
        return build

    add = _binary("add")
    sub = _binary("sub")
    hadamard = _binary("mul")
    divide = _binary("div")
    matmul = _binary("matmul")
    power = _binary("pow")
    compare = _binary("compare")
    del _binary

    def neg(self, c):
        return Syntax("neg", (c[1],), text="-", column=_col(c[0]))

    def pos(self, c):
        return c[1]

    def transpose(self, c):
        return Syntax("T", (c[0],), text=str(c[1]), column=_col(c[1]))

    # derivative prefixes: (names, column)
    def d_by(self, c):
        return ((str(c[1]),), _col(c[1]))

    def d_by_stacked(self, c):
        return (tuple(str(t) for t in c[1:]), _col(c[1]))

    def dk_by(self, c):
        return self._dk(c[0], (str(c[1]),), c[1], c[2])

    def dk_by_stacked(self, c):
        return self._dk(c[0], tuple(str(t) for t in c[1:-1]), c[1], c[-1])

    @staticmethod
    def _dk(deriv, names, first, power):
        """d^k/dx^k: k nested prefixes (parse_request checks the two k)."""
        k = int(str(deriv)[2:].partition("/")[0])
        return ("dk", k, names, _col(first), int(str(power)[1:]), _col(power))

    # declarations
    def scalar_type(self, c):
        return ("scalar", ())

    def vector_type(self, c):
        return ("vector", (str(c[0]),))

    def matrix_type(self, c):
        return ("matrix", (str(c[0]), str(c[1])))

    def symmetric_type(self, c):
        return ("symmetric", (str(c[0]),))

    def decl(self, c):
        kind, dims = c[-1]
        return Decl(tuple(str(t) for t in c[:-1]), kind, dims, _col(c[0]))

    def decls(self, c):
        return tuple(c)

    items = decls

    def definition(self, c):
        return Definition(str(c[0]), c[1], _col(c[0]))

    def where_clause(self, c):
        return c[0]


def _check_size(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise McalcError(f"request too long ({len(text)} characters; the limit is {MAX_LENGTH})")
    if "\x00" in text:
        raise McalcError("NUL byte in input", text.index("\x00") + 1)


def _check_depth(node) -> None:
    """Iteratively, so that deep input never reaches Python's recursion limit."""
    stack = [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise McalcError(f"expression nested too deeply (more than {MAX_DEPTH} levels; "
                             "each operand of a chain such as a + b + c is a level)",
                             node.column)
        stack.extend((a, depth + 1) for a in node.args if isinstance(a, Syntax))


def _parse(text: str, start: str):
    _check_size(text)
    try:
        tree = _lark().parse(text, start=start)
    except lk.UnexpectedCharacters as e:
        raise McalcError(f"unexpected character {text[e.pos_in_stream]!r}", e.column) from None
    except lk.UnexpectedEOF:
        raise McalcError("unexpected end of input" if text.strip() else "empty request",
                         len(text) + 1) from None
    except lk.UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            raise McalcError("unexpected end of input" if text.strip() else "empty request",
                             len(text) + 1) from None
        raise McalcError(f"unexpected {str(tok)!r}", _col(tok)) from None
    except lk.LarkError as e:                       # anything else lark reports
        raise McalcError(str(e).splitlines()[0]) from None
    for item in getattr(tree, "children", ()):
        if isinstance(item, Syntax):
            _check_depth(item)
        elif isinstance(item, tuple):                # where: definitions have bodies
            for d in item:
                if isinstance(d, Definition):
                    _check_depth(d.body)
    return tree


def parse_request(text: str, extra_decls: tuple[Decl, ...] = ()) -> Request:
    """Parse one request line; `extra_decls` come from -t/--type."""
    tree = _parse(text, "request")
    prefixes, body, where = [], None, ()
    for item in tree.children:
        if isinstance(item, Syntax):
            body = item
        elif isinstance(item, tuple) and item and isinstance(item[0], (Decl, Definition)):
            where = item
        else:
            prefixes.append(item)
    wrt, cols = [], []
    for p in prefixes:
        if p[0] == "dk":
            _, k, _, _, k_again, col = p
            if k_again != k:
                raise McalcError(f"the orders of d^{k}/d…^{k_again} differ", col)
            if not 1 <= k <= MAX_ORDER:
                raise McalcError(f"the order of a derivative is 1 to {MAX_ORDER}, not {k}", col)
            wrt += [p[2]] * p[1]
            cols += [p[3]] * p[1]
        else:
            wrt.append(p[0])
            cols.append(p[1])
    decls = tuple(w for w in where if isinstance(w, Decl))
    defs = tuple(w for w in where if isinstance(w, Definition))
    return Request(text, tuple(wrt), body, tuple(extra_decls) + decls, tuple(cols), defs)


def parse_claim(text: str) -> Request:
    """A claim of mcalc check: an expression with its own `where` definitions, which apply
    to the claim alone. Types come from the request (the contract), so a declaration in a
    claim is an error rather than a silent retyping of the request. A Request with no wrt."""
    req = parse_request(text)
    if req.wrt:
        raise McalcError("a claim is an expression, not a derivative request", 1)
    if req.decls:
        d = req.decls[0]
        raise McalcError(f"a claim's where holds definitions only: declare "
                         f"{', '.join(d.names)} in the request (or with -t)", d.column)
    return req


def parse_decls(text: str) -> tuple[Decl, ...]:
    """Parse a -t/--type option such as 'w, x: vector(n); b: scalar'."""
    return _parse(text, "decls")


def parse_expression(text: str) -> Syntax:
    return parse_claim(text).body
