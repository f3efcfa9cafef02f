"""Build lark's standalone parser module (mcalc/_lark_parser.py) from grammar/mcalc.lark.

Run `python -m mcalc.grammar_build` after editing the grammar; tests/test_parser_sync.py
fails while the two are out of sync.

The module lark generates is post-processed so that importing it is cheap — every call of
`mcalc` imports it, and a cold call should feel instant (issue #6). The parser itself
(tables, lexer, tree building) is lark's, unchanged:

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


def canonical_table(table: dict) -> dict:
    """lark's serialized IntParseTable with tokens numbered by name and states in
    breadth-first order from the start states (shifts followed in token-name order)."""
    names = table["tokens"]                                  # number -> token name
    states = table["states"]                                 # state -> {token: action}
    token_no = {name: k for k, name in enumerate(sorted(names.values()))}
    order: dict[int, int] = {}
    queue = [table["start_states"][s] for s in sorted(table["start_states"])]
    while queue:
        nxt = []
        for st in queue:
            if st in order:
                continue
            order[st] = len(order)
            for tok in sorted(states[st], key=lambda t: names[t]):
                kind, arg = states[st][tok]
                if kind == 0 and arg not in order:          # a shift (goto): a state
                    nxt.append(arg)
        queue = nxt
    if len(order) != len(states):
        raise RuntimeError("grammar_build: parse-table states unreachable from the start")

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


def generate_standalone(grammar: Path) -> str:
    """Source of the standalone parser module for `grammar` (needs lark installed)."""
    import io
    from lark import Lark
    from lark.tools.standalone import gen_standalone

    lark_inst = Lark(grammar.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                     start=["request", "decls"])
    out = io.StringIO()
    gen_standalone(lark_inst, out=out)
    return post_process(canonical_data(out.getvalue()))


if __name__ == "__main__":
    TARGET.write_text(generate_standalone(grammar_path()), encoding="utf-8")
    print(f"wrote {TARGET}")
