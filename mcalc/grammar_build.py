"""Build lark's standalone parser module (mcalc/_lark_parser.py) from grammar/mcalc.lark.

Run `python -m mcalc.grammar_build` after editing the grammar; a test fails while the
two are out of sync.
"""
from __future__ import annotations

import re
from pathlib import Path

GRAMMAR_IN_SOURCE = Path(__file__).resolve().parent.parent / "grammar" / "mcalc.lark"


def grammar_path() -> Path:
    """grammar/mcalc.lark: beside the package in a checkout, inside it in a wheel."""
    shipped = Path(__file__).resolve().parent / "grammar" / "mcalc.lark"
    return shipped if shipped.exists() else GRAMMAR_IN_SOURCE


def generate_standalone(grammar: Path) -> str:
    """Source of the standalone parser module for `grammar` (needs lark installed)."""
    import io
    from lark import Lark
    from lark.tools.standalone import gen_standalone

    lark_inst = Lark(grammar.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                     start=["request", "decls"])
    out = io.StringIO()
    gen_standalone(lark_inst, out=out)
    # lark's standalone module tries the optional `regex` package first; plain `re`
    # suffices for this grammar and keeps a cold call from paying for the import.
    return re.sub(r"(?m)^(\s*)import regex$", r"\1raise ImportError", out.getvalue())


if __name__ == "__main__":
    target = Path(__file__).with_name("_lark_parser.py")
    target.write_text(generate_standalone(grammar_path()), encoding="utf-8")
    print(f"wrote {target}")
