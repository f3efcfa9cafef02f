"""Build lark's standalone parser module (mcalc/_lark_parser.py) and the parse tables
mcalc/parser.py runs (mcalc/_parse_table.py, generate_tables) from grammar/mcalc.lark.

Run `python -m mcalc.grammar_build` after editing the grammar; tests/test_parser_sync.py
fails while they are out of sync.

The module lark generates is post-processed so that importing it is cheap — a request
with a syntax error imports it for lark's message, and should still feel instant (issue
#6). The parser itself (tables, lexer, tree building) is lark's, unchanged:

* `from __future__ import annotations`: the annotations of lark's ~600 functions are no
  longer evaluated at import (subscripting typing generics was half of the import time);
  nothing in the module reads annotations at run time.
* lark's `logger` and the `pickle`, `zlib`, `base64` modules are imported on first use
  instead of at import. The standalone parser never logs on the paths mcalc uses (the
  logger is set to CRITICAL and only debug/info/warning calls exist) and never pickles
  (that is Lark.save/load and the grammar cache).
* the optional `regex` package is never tried: plain `re` suffices for this grammar.
* the parse table is numbered canonically (tokens by name, states in breadth-first order
  from the start states): lark numbers them in an order that changes from run to run, and
  the module must be reproducible for the sync test and for readable diffs.

Each rewrite must match exactly once; a lark version that generates something else makes
the build fail loudly instead of producing a silently different module.
"""
from __future__ import annotations

import re
from pathlib import Path

GRAMMAR_IN_SOURCE = Path(__file__).resolve().parent.parent / "grammar" / "mcalc.lark"
TARGET = Path(__file__).with_name("_lark_parser.py")
TABLES = Path(__file__).with_name("_parse_table.py")

_LAZY_LOGGER = '''\
class _LazyLogger:
    """lark's logger, set up on first use (mcalc: importing logging slows every call)."""
    _real = None

    def __getattr__(self, name):
        if _LazyLogger._real is None:
            import logging
            real = logging.getLogger("lark")
            real.addHandler(logging.StreamHandler())
            real.setLevel(logging.CRITICAL)
            _LazyLogger._real = real
        return getattr(_LazyLogger._real, name)


logger = _LazyLogger()
'''

_LAZY_MODULES = '''\
class _LazyModule:
    """A module imported on first attribute access (mcalc: only Lark.save/load use these)."""

    def __init__(self, name):
        self._lazy_name = name

    def __getattr__(self, attr):
        import importlib
        return getattr(importlib.import_module(self._lazy_name), attr)


pickle, zlib, base64 = _LazyModule("pickle"), _LazyModule("zlib"), _LazyModule("base64")
'''

# (what, pattern, replacement): applied in order, each must match exactly once
REWRITES = (
    ("annotations are not evaluated",
     r'(?m)^__version__ = ', 'from __future__ import annotations\n__version__ = '),
    ("no optional regex package", r"(?m)^(\s*)import regex$", r"\1raise ImportError"),
    ("logging imported lazily", r"(?m)^import logging\n", ""),
    ("lark's logger created lazily",
     r'(?ms)^logger: logging\.Logger = logging\.getLogger\("lark"\)\n'
     r'logger\.addHandler\(logging\.StreamHandler\(\)\)\n.*?'
     r'^logger\.setLevel\(logging\.CRITICAL\)\n', _LAZY_LOGGER),
    ("pickle, zlib, base64 imported lazily", r"(?m)^import pickle, zlib, base64\n",
     _LAZY_MODULES),
)


def state_order(states: dict, start_states: dict) -> dict:
    """{lark's state number: canonical number}: breadth-first from the start states (by
    start name), shifts followed in symbol-name order. `states`: state -> {symbol name:
    (kind, arg)}, kind 0 a shift (or goto) to state arg."""
    order: dict[int, int] = {}
    queue = [start_states[s] for s in sorted(start_states)]
    while queue:
        nxt = []
        for st in queue:
            if st in order:
                continue
            order[st] = len(order)
            for sym in sorted(states[st]):
                kind, arg = states[st][sym]
                if kind == 0 and arg not in order:
                    nxt.append(arg)
        queue = nxt
    if len(order) != len(states):
        raise RuntimeError("grammar_build: parse-table states unreachable from the start")
    return order


def canonical_table(table: dict) -> dict:
    """lark's serialized IntParseTable with tokens numbered by name and states in
    breadth-first order from the start states (state_order)."""
    names = table["tokens"]                                  # number -> token name
    states = table["states"]                                 # state -> {token: action}
    token_no = {name: k for k, name in enumerate(sorted(names.values()))}
    order = state_order({st: {names[t]: a for t, a in acts.items()}
                         for st, acts in states.items()}, table["start_states"])

    def action(a):
        kind, arg = a
        return (kind, order[arg]) if kind == 0 else (kind, arg)

    return {
        "tokens": {token_no[n]: n for n in sorted(names.values())},
        "states": {order[st]: {token_no[names[t]]: action(a)
                               for t, a in sorted(acts.items(), key=lambda ta: names[ta[0]])}
                   for st, acts in sorted(states.items(), key=lambda sa: order[sa[0]])},
        "start_states": {k: order[v] for k, v in sorted(table["start_states"].items())},
        "end_states": {k: order[v] for k, v in sorted(table["end_states"].items())},
    }


def canonical_data(source: str) -> str:
    """Rewrite the DATA literal of the generated module with canonical_table."""
    import ast
    m = re.search(r"(?ms)^DATA = \(\n(.*?)\n\)\nMEMO = \(\n", source)
    if not m:
        raise RuntimeError("grammar_build: no DATA literal in the generated module")
    data = ast.literal_eval(m.group(1))
    front = data["parser"]
    if set(front["parser"]) != {"tokens", "states", "start_states", "end_states"}:
        raise RuntimeError("grammar_build: unexpected parse-table layout (a different lark?)")
    front["parser"] = canonical_table(front["parser"])
    return source[:m.start(1)] + repr(data) + source[m.end(1):]


def grammar_path() -> Path:
    """grammar/mcalc.lark: beside the package in a checkout, inside it in a wheel."""
    shipped = Path(__file__).resolve().parent / "grammar" / "mcalc.lark"
    return shipped if shipped.exists() else GRAMMAR_IN_SOURCE


def post_process(source: str) -> str:
    """Apply REWRITES to lark's generated module; each must match exactly once."""
    for what, pattern, replacement in REWRITES:
        source, n = re.subn(pattern, lambda m, r=replacement: m.expand(r), source)
        if n != 1:
            raise RuntimeError(f"grammar_build: rewrite '{what}' matched {n} times "
                               "(a different lark version?); update mcalc/grammar_build.py")
    leftover = re.findall(r"(?m)^(?:import (?:logging|pickle)\b|logging\.)", source)
    if leftover:
        raise RuntimeError(f"grammar_build: module still uses {leftover[0].strip()!r}")
    return source


def _lark_instance(grammar: Path):
    from lark import Lark
    return Lark(grammar.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                start=["request", "decls"])


def generate_standalone(grammar: Path) -> str:
    """Source of the standalone parser module for `grammar` (needs lark installed)."""
    import io
    from lark.tools.standalone import gen_standalone

    out = io.StringIO()
    gen_standalone(_lark_instance(grammar), out=out)
    return post_process(canonical_data(out.getvalue()))


_TABLES_HEAD = '''"""The parse tables of grammar/mcalc.lark, as data for the driver in mcalc/parser.py.

Generated by `python -m mcalc.grammar_build` from lark's own LALR analysis and contextual
lexer (the ones in mcalc/_lark_parser.py): do not edit.

LEXERS   the regular expression of each contextual lexer: one named group per terminal
         the state accepts, in lark's priority order (the first alternative that matches
         is the token, as in lark's scanner); NAME's written without look-aheads
IGNORE   terminals that are skipped (white space)
STATES   per parse state: (its lexer, {symbol: action}); an action >= 0 shifts (or goes
         to) that state, an action < 0 reduces by rule ~action
RULES    (symbol, length, children kept or None for all, callback, inline one child):
         children kept are (index, splice) pairs, splice for lark's helper rules (x*),
         whose children join their parent's; the callback is mcalc.parser.ToSyntax's
         method of that name, or a plain list when it has none
START, END  the first and the accepting state of each start symbol
"""
'''


# NAME as the grammar writes it (ᵀ excluded by a look-ahead at every character) and the
# same set of strings as character classes, which Python's re matches about twice as fast
# (names are a third of a request's tokens); lark's module keeps the grammar's own.
_NAME_LOOKAHEAD = r"(?!ᵀ)[^\W\d](?:(?!ᵀ)\w)*"
_NAME_CLASSES = r"[^\W\dᵀ][^\Wᵀ]*"


def _without_lookaheads(pattern: str) -> str:
    return pattern.replace(f"(?P<NAME>{_NAME_LOOKAHEAD})", f"(?P<NAME>{_NAME_CLASSES})")


def generate_tables(grammar: Path) -> str:
    """Source of mcalc/_parse_table.py for `grammar` (needs lark installed).

    lark builds its lexers and tables when the grammar is loaded; mcalc/parser.py runs
    the same automaton from plain data, which is cheaper to import and to step through
    than the standalone module's objects. Anything this data cannot express (keyword
    callbacks, placeholders, kept punctuation) makes the build fail loudly."""
    lark_inst = _lark_instance(grammar)
    table = lark_inst.parser.parser.parser.parse_table
    states = {st: {sym: (0 if act.name == "Shift" else 1, arg)
                   for sym, (act, arg) in acts.items()}
              for st, acts in table.states.items()}
    order = state_order(states, table.start_states)
    rule_no = {rule: k for k, rule in enumerate(lark_inst.rules)}
    lexers: dict[str, int] = {}
    ignore = set()
    state_rows = [None] * len(order)
    for st, acts in sorted(states.items(), key=lambda sa: order[sa[0]]):
        lexer = lark_inst.parser.lexer.lexers[st]
        scanner = lexer.scanner
        if lexer.callback or len(scanner._mres) != 1:
            raise RuntimeError("grammar_build: a lexer needs keyword callbacks or several "
                               "regular expressions; mcalc/parser.py's driver has neither")
        ignore |= lexer.ignore_types
        pattern = _without_lookaheads(scanner._mres[0].pattern)
        row = {str(sym): order[arg] if kind == 0 else ~rule_no[arg]
               for sym, (kind, arg) in sorted(acts.items())}
        state_rows[order[st]] = (lexers.setdefault(pattern, len(lexers)), row)
    rules = []
    for rule in lark_inst.rules:
        o = rule.options
        if o.keep_all_tokens or o.empty_indices or o.template_source:
            raise RuntimeError(f"grammar_build: rule {rule} needs lark options the driver "
                               "does not have")
        keep = tuple((i, not sym.is_term and sym.name.startswith("_"))
                     for i, sym in enumerate(rule.expansion)
                     if not (sym.is_term and sym.filter_out))
        whole = len(keep) == len(rule.expansion) and not any(s for _, s in keep)
        rules.append((str(rule.origin.name), len(rule.expansion), None if whole else keep,
                      str(rule.alias or rule.origin.name), bool(o.expand1 and not rule.alias)))
    lines = [_TABLES_HEAD, "LEXERS = ("]
    lines += [f"    {p!r}," for p in lexers]
    lines += [")", f"IGNORE = frozenset({sorted(ignore)!r})", "STATES = ("]
    lines += [f"    {r!r},  # {k}" for k, r in enumerate(state_rows)]
    lines += [")", "RULES = ("]
    lines += [f"    {r!r},  # {k}" for k, r in enumerate(rules)]
    lines += [")",
              f"START = {({k: order[v] for k, v in sorted(table.start_states.items())})!r}",
              f"END = {({k: order[v] for k, v in sorted(table.end_states.items())})!r}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.write_text(generate_standalone(grammar_path()), encoding="utf-8")
    print(f"wrote {TARGET}")
    TABLES.write_text(generate_tables(grammar_path()), encoding="utf-8")
    print(f"wrote {TABLES}")
