"""No text is ever evaluated: mcalc builds numpy and SymPy values from the typed tree.

Every .py file under mcalc/ is parsed with the ast module and searched for calls of
eval, exec, sympify and parse_expr (as plain names or as attributes: sympy.sympify,
builtins.eval). The test fails, naming file and line, if any exists.
"""
from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"eval", "exec", "sympify", "parse_expr"}
PACKAGE = Path(__file__).resolve().parent.parent / "mcalc"


def forbidden_calls(source: str, filename: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name in FORBIDDEN:
            found.append(f"{filename}:{node.lineno}: {name}(")
    return found


def test_the_scanner_finds_each_forbidden_call():
    source = ("eval('1')\nexec('x = 1')\nimport sympy\nsympy.sympify('x')\n"
              "from sympy.parsing.sympy_parser import parse_expr\nparse_expr('x')\n"
              "import builtins\nbuiltins.eval('2')\n")
    assert len(forbidden_calls(source)) == 5
    assert forbidden_calls("import ast\nast.literal_eval('1')\nx.evalf()\n") == []


def test_no_eval_exec_sympify_or_parse_expr_in_mcalc():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files and any(f.name == "definition.py" for f in files)
    found = []
    for f in files:
        found += forbidden_calls(f.read_text(encoding="utf-8"), str(f.relative_to(PACKAGE.parent)))
    assert not found, "text evaluated in mcalc/:\n" + "\n".join(found)
