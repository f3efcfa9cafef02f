"""Text -> mcalc.syntax, through lark's LALR automaton for grammar/mcalc.lark.

`python -m mcalc.grammar_build` generates two modules from the grammar: lark's standalone
parser (mcalc/_lark_parser.py) and its tables as plain data (mcalc/_parse_table.py).
A request is parsed by the short driver below, which runs those tables — contextual lexer,
shifts and reductions, syntax built at each reduction — without lark's objects: importing
and stepping through them was most of a request's parse time and a tenth of a cold call.
Input the tables reject is parsed again by the standalone module, whose error (the same
automaton, so the same position) becomes the one-line message; tests keep both modules in
sync with the grammar and check that the driver and lark agree.
"""
from __future__ import annotations

import re
from operator import itemgetter

from mcalc import _parse_table as table
from mcalc.errors import McalcError
from mcalc.syntax import Decl, Definition, Request, Syntax, syntax

MAX_LENGTH = 100_000          # characters in one request
MAX_DEPTH = 10_000            # nesting of the syntax tree (every walk is iterative)
MAX_ORDER = 10_000            # k in d^k/dx^k: k nested prefixes, as many as the depth allows


class ToSyntax:
    """The callback of each rule that has one (by alias, as in lark's calc example), called
    with the rule's kept children; a token is (text, column)."""

    def number(self, c):
        return syntax("number", (), c[0][0], c[0][1])

    def name(self, c):
        return syntax("name", (), c[0][0], c[0][1])

    def call(self, c):
        return syntax("call", tuple(c[1:]), c[0][0], c[0][1])

    def bracket(self, c):
        return syntax("list", tuple(c[1:]), "", c[0][1])

    def _binary(op):
        def build(self, c):
            return syntax(op, (c[0], c[2]), c[1][0], c[1][1])
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
        return syntax("neg", (c[1],), "-", c[0][1])

    def pos(self, c):
        return c[1]

    def transpose(self, c):
        return syntax("T", (c[0],), c[1][0], c[1][1])

    # derivative prefixes: (names, column)
    def d_by(self, c):
        return ((c[1][0],), c[1][1])

    def d_by_stacked(self, c):
        return (tuple(t[0] for t in c[1:]), c[1][1])

    def dk_by(self, c):
        return self._dk(c[0], (c[1][0],), c[1], c[2])

    def dk_by_stacked(self, c):
        return self._dk(c[0], tuple(t[0] for t in c[1:-1]), c[1], c[-1])

    @staticmethod
    def _dk(deriv, names, first, power):
        """d^k/dx^k: k nested prefixes (parse_request checks the two k)."""
        k = int(deriv[0][2:].partition("/")[0])
        return ("dk", k, names, first[1], int(power[0][1:]), power[1])

    # declarations: a type is (kind, its dimensions, their columns)
    def scalar_type(self, c):
        return ("scalar", (), ())

    def vector_type(self, c):
        return ("vector", (c[0][0],), (c[0][1],))

    def matrix_type(self, c):
        return ("matrix", (c[0][0], c[1][0]), (c[0][1], c[1][1]))

    def symmetric_type(self, c):
        return ("symmetric", (c[0][0],), (c[0][1],))

    def dim_product(self, c):
        """m*n in a declaration (the size a vec or kron gives): the dimensions' product."""
        left, op, right = c
        if op[0] != "*":
            raise McalcError(f"a product of dimensions is written with '*', not {op[0]!r}",
                             op[1])
        return (f"{left[0]}*{right[0]}", left[1])

    def decl(self, c):
        kind, dims, dim_columns = c[-1]
        names, columns = zip(*c[:-1])
        return Decl(names, kind, dims, columns[0], columns, dim_columns)

    def decls(self, c):
        return tuple(c)

    items = decls

    def definition(self, c):
        return Definition(c[0][0], c[1], c[0][1])

    def where_clause(self, c):
        return c[0]


def _reduction(keep, callback, inline):
    """The value of a rule from the values it reduces: lark's child filter (punctuation
    dropped, helper rules spliced), then the callback (a ?rule with one child is that
    child)."""
    if keep is None and not inline:
        return callback
    if keep and not any(splice for _, splice in keep):     # punctuation dropped only:
        at = [i for i, _ in keep]                           # the kept at one C call
        if inline and len(at) == 1:                         # "(" expr ")": the expr
            return itemgetter(at[0])
        pick = itemgetter(*at) if len(at) > 1 else itemgetter(slice(at[0], at[0] + 1))
        return lambda children: callback(pick(children))

    def reduce(children):
        if keep is not None:
            kept = []
            for i, splice in keep:
                if splice:
                    kept += children[i]
                else:
                    kept.append(children[i])
            children = kept
        if inline and len(children) == 1:
            return children[0]
        return callback(children)
    return reduce


_rules = None                 # per rule: (symbol, length, reduce or None to pass one child on)
_lexers = [None] * len(table.LEXERS)     # compiled on first use: a request needs a few


def _rule_table():
    global _rules
    if _rules is None:
        builder = ToSyntax()
        _rules = [(symbol, size,
                   None if keep is None and inline and size == 1 else
                   _reduction(keep, getattr(builder, name, list), inline))
                  for symbol, size, keep, name, inline in table.RULES]
    return _rules


def _drive(text: str, start: str):
    """The value of the start symbol for `text`, or None if lark's parser rejects it.

    lark's contextual lexer: each token is matched by the lexer of the state the parser
    is in; columns count from the last line break, as lark's do."""
    states, ignore, rules, lexers = table.STATES, table.IGNORE, _rules or _rule_table(), _lexers
    singles = _singles
    state = table.START[start]
    stack, values = [state], []
    end = table.END[start]
    pos, n = 0, len(text)
    line_start = 0
    multiline = "\n" in text
    while True:
        lexer, actions = states[state]
        while pos < n:
            char = text[pos]
            if char == " ":                           # ignored, as every lexer's %ignore
                pos += 1                              # does: a space is skipped without
                continue                              # a regex match (most whitespace)
            scan = lexers[lexer] or _compile(lexer)
            kind = singles[lexer].get(char)
            if kind is not None:                      # a one-character token, no match
                token = (char, pos - line_start + 1)
                pos += 1
                break
            match = scan(text, pos)
            if match is None:
                return None
            kind, got = match.lastgroup, match[0]     # (a subscript: no call)
            if multiline and "\n" in got:
                line_start = text.rindex("\n", pos, match.end()) + 1
            if kind not in ignore:
                token = (got, pos - line_start + 1)
                pos = match.end()
                break
            pos = match.end()
        else:
            kind, token = "$END", None
        while True:                                   # reduce, until the token shifts
            action = actions.get(kind)
            if action is None:                        # (the accepting state has none)
                return values[-1] if state == end and token is None else None
            if action >= 0:
                stack.append(action)
                values.append(token)
                state = action
                break
            symbol, size, reduce = rules[~action]
            if reduce is None:                        # ?rules passing their one child on
                key = (stack[-2], state, kind)
                state = stack[-1] = _chains.get(key) or _chain(key)
            else:
                children = values[-size:]
                del stack[-size:], values[-size:]
                key = (stack[-1], symbol, kind)
                state = _gotos.get(key) or _goto(key)
                stack.append(state)
                values.append(reduce(children))
            actions = states[state][1]


# (state below, state, lookahead) -> the state after the chain of ?rule reductions there:
# 19 of a typical request's 29 reductions are such links (sum: product, product: unary...),
# and what they do depends on those three alone. Bounded by the grammar, not the input.
# Most chains follow a reduction and are taken with its goto (_gotos); these are the few
# right after a shift (a size in a declaration).
_chains: dict[tuple[int, int, str], int] = {}


def _chain(key) -> int:
    below, state, kind = key
    _chains[key] = state = _links(below, table.STATES[below][1][_rule_of(state, kind)], kind)
    return state


# (state below, symbol reduced, lookahead) -> the state after the goto and the chain of
# ?rule reductions that follows it there (the chain is most often right after a reduction).
_gotos: dict[tuple[int, str, str], int] = {}


def _goto(key) -> int:
    below, symbol, kind = key
    _gotos[key] = state = _links(below, table.STATES[below][1][symbol], kind)
    return state


def _links(below: int, state: int, kind: str) -> int:
    """The state after the ?rule reductions that `state` makes on `kind`, if any."""
    while True:
        action = table.STATES[state][1].get(kind)      # none in an accepting state
        if action is None or action >= 0 or _rules[~action][2] is not None:
            return state
        state = table.STATES[below][1][_rule_of(state, kind)]


def _rule_of(state: int, kind: str) -> str:
    """The symbol of the rule `state` reduces by on `kind`."""
    return _rules[~table.STATES[state][1][kind]][0]


# Characters that start no terminal longer than themselves (tests/test_parser_driver.py
# checks it for every lexer): where a lexer takes one as a token, it is read without a
# regex match (most punctuation of a request).
ONE_CHARACTER_TOKENS = "()[],;:=@+-'ᵀ⊗⊙⊘"
_singles: list[dict[str, str]] = [{} for _ in table.LEXERS]     # lexer -> char -> terminal


def _compile(lexer: int):
    _lexers[lexer] = scan = re.compile(table.LEXERS[lexer]).match
    for char in ONE_CHARACTER_TOKENS:
        match = scan(char)
        if match is not None and match.lastgroup not in table.IGNORE:
            _singles[lexer][char] = match.lastgroup
    return scan


_standalone = None


def _lark_error(text: str, start: str) -> McalcError:
    """The error lark's standalone parser reports for text the tables rejected."""
    from mcalc import _lark_parser as lk
    global _standalone
    if _standalone is None:
        _standalone = lk.Lark_StandAlone()
    bad = _SURROGATE.search(text)     # an undecodable byte of a command-line argument, as
    if bad:                           # a batch line's (mcalc.batch) is reported
        code = ord(bad[0])
        byte = f"byte 0x{code - 0xdc00:02x}" if 0xdc80 <= code <= 0xdcff else f"U+{code:04X}"
        return McalcError(f"not valid UTF-8 ({byte})", _column(text, bad.start()))
    try:
        _standalone.parse(text, start=start)
    except lk.UnexpectedCharacters as e:
        return _near_miss(text, e.pos_in_stream) or \
            McalcError(f"unexpected character {text[e.pos_in_stream]!r}", e.column)
    except lk.UnexpectedEOF:
        return McalcError("unexpected end of input" if text.strip() else "empty request",
                          len(text) + 1)
    except lk.UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            return McalcError("unexpected end of input" if text.strip() else "empty request",
                              len(text) + 1)
        return _near_miss(text, tok.start_pos) or \
            McalcError(f"unexpected {str(tok)!r}", getattr(tok, "column", 0) or 0)
    except lk.LarkError as e:                       # anything else lark reports
        return McalcError(str(e).splitlines()[0])
    raise RuntimeError("mcalc/_parse_table.py accepts less than mcalc/_lark_parser.py: "
                       "run `python -m mcalc.grammar_build`")


# Derivative prefixes almost written right, which lark reads as a division (d / dx) or as
# names (d²/dx²) until the body's first token: `d / dx` is a division of two variables
# where an expression may follow (d / dx - x), so neither is accepted as a prefix.
_SPACED_PREFIX = re.compile(r"(?<![\w.])([d∂])(\s*)/(\s*)([d∂])\s*(\w+|\([^()]*\))")
_SUPERSCRIPT_PREFIX = re.compile(
    r"(?<![\w.])([d∂])([⁰¹²³⁴⁵⁶⁷⁸⁹]+)\s*/\s*([d∂])\s*(\w+?|\(.*?\))([⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _near_miss(text: str, pos: int) -> McalcError | None:
    """The message for a parse error at `pos` right after a near-miss prefix, else None."""
    for m in _SUPERSCRIPT_PREFIX.finditer(text):
        if m.start() > pos:
            break
        if _next_token_at(text, m.end()) >= pos:
            k = m[2].translate(_DIGITS)
            return McalcError(f"write a derivative of order {k} as {m[1]}^{k}/{m[3]}{m[4]}^{k} "
                              "(superscripts are not powers)", _column(text, m.start()))
    for m in _SPACED_PREFIX.finditer(text):
        if m.start() > pos:
            break
        if (m[2] or m[3]) and _next_token_at(text, m.end()) >= pos:
            return McalcError(f"write the derivative prefix as {m[1]}/{m[4]}{m[5]}, without "
                              "spaces around '/'", _column(text, m.start()))
    return None


def _next_token_at(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _column(text: str, i: int) -> int:
    return i - text.rfind("\n", 0, i)


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
    tree = _drive(text, start)
    if tree is None:
        raise _lark_error(text, start)
    # every syntax node has a token of its own (an operator, a name, a bracket), so a
    # request no longer than MAX_DEPTH characters cannot nest deeper
    if start != "request" or len(text) <= MAX_DEPTH:
        return tree
    for item in tree:
        if isinstance(item, Syntax):
            _check_depth(item)
        elif isinstance(item, tuple):                # where: definitions have bodies
            for d in item:
                if isinstance(d, Definition):
                    _check_depth(d.body)
    return tree


def parse_request(text: str, extra_decls: tuple[Decl, ...] = ()) -> Request:
    """Parse one request line; `extra_decls` come from -t/--type."""
    prefixes = _parse(text, "request")          # the grammar's order: prefixes, body, where
    where = () if isinstance(prefixes[-1], Syntax) else prefixes.pop()
    body = prefixes.pop()
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
    decls = tuple(w for w in where if isinstance(w, Decl)) if where else ()
    defs = tuple(w for w in where if isinstance(w, Definition)) if where else ()
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
