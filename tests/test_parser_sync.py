"""mcalc/_lark_parser.py and mcalc/_parse_table.py are exactly what `python -m
mcalc.grammar_build` generates from grammar/mcalc.lark (the parser never drifts from the
grammar), the generation is reproducible, and the speed-ups applied to lark's module keep
it working."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lark")

from mcalc import grammar_build  # noqa: E402

COMMITTED = Path(grammar_build.__file__).with_name("_lark_parser.py")
TABLES = Path(grammar_build.__file__).with_name("_parse_table.py")
REGENERATE = "python -m mcalc.grammar_build"


def _generate(seed: str, what: str = "generate_standalone") -> str:
    """A generated module, in a fresh interpreter with the given hash seed."""
    code = (f"import sys; from mcalc.grammar_build import {what}, grammar_path; "
            f"sys.stdout.buffer.write({what}(grammar_path()).encode('utf-8'))")
    env = dict(os.environ, PYTHONHASHSEED=seed)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True)
    return p.stdout.decode("utf-8")


def test_committed_parser_matches_the_grammar():
    fresh = grammar_build.generate_standalone(grammar_build.grammar_path())
    committed = COMMITTED.read_text(encoding="utf-8")
    assert fresh == committed, (f"mcalc/_lark_parser.py is out of date with "
                                f"{grammar_build.grammar_path()}: run `{REGENERATE}`")


def test_committed_tables_match_the_grammar():
    fresh = grammar_build.generate_tables(grammar_build.grammar_path())
    assert fresh == TABLES.read_text(encoding="utf-8"), (
        f"mcalc/_parse_table.py is out of date with {grammar_build.grammar_path()}: "
        f"run `{REGENERATE}`")


def test_generation_is_reproducible():
    """lark numbers parse states differently from run to run; grammar_build renumbers them."""
    assert _generate("1") == _generate("2") == _generate("random")
    tables = "generate_tables"
    assert _generate("1", tables) == _generate("2", tables) == _generate("random", tables)


def test_import_pulls_in_no_logging_or_pickle():
    code = ("import sys; before = set(sys.modules); import mcalc._lark_parser; "
            "print(sorted(m for m in ('logging', 'pickle', 'zlib', 'base64') "
            "if m in sys.modules and m not in before))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_lazy_logger_and_pickle_still_work():
    import pickle
    from mcalc import _lark_parser as lk
    lk.logger.debug("not shown")                     # creates lark's logger on first use
    assert lk.logger.getEffectiveLevel() >= 50       # CRITICAL, as lark sets it
    assert lk.pickle.dumps is pickle.dumps           # the module, imported on first use
    saved = io.BytesIO(pickle.dumps({"data": lk.DATA, "memo": lk.MEMO}))
    loaded = lk.Lark.load(saved)                     # Lark.load unpickles through the proxy
    text = "d/dx sin(x^2)"
    assert loaded.parse(text, start="request") == lk.Lark_StandAlone().parse(text,
                                                                            start="request")


def _plain(tree):
    """A parse tree as nested tuples (lark and the standalone module have distinct classes)."""
    if hasattr(tree, "children"):
        return (str(tree.data), tuple(_plain(c) for c in tree.children))
    return (tree.type, str(tree))


def test_canonical_table_is_a_renumbering():
    """Same automaton as lark's own table: both parse a few requests to the same tree."""
    from lark import Lark
    from mcalc import _lark_parser as lk
    ours = lk.Lark_StandAlone()
    theirs = Lark(grammar_build.grammar_path().read_text(encoding="utf-8"), parser="lalr",
                  lexer="contextual", start=["request", "decls"])
    for text in ["d/dx sin(x^2)", "d/dw sum(w*x) + b where w, x: vector(n); b: scalar",
                 "d^2/dx^2 x'@A@x", "d/d(x, y) [x*y, x^T]", "grad_θ -θ.T@θ ᵀ",
                 "[[a, b], [c, d]] >= 0", "∂/∂x x ./ (1 + x**2) .* exp(-x)"]:
        assert _plain(ours.parse(text, start="request")) == \
            _plain(theirs.parse(text, start="request"))
    decls = "x, y: vector(n); A: matrix(m, n); S: symmetric(3); b: scalar"
    assert _plain(ours.parse(decls, start="decls")) == _plain(theirs.parse(decls, start="decls"))
