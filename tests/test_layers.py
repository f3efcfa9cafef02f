"""Imports only go down: the typed expression tree never imports a printer, and the
shape/type module never imports the builder that sits on top of it (not even lazily)."""
import ast
from pathlib import Path

import mcalc

ROOT = Path(mcalc.__file__).parent


def _imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / f"{module}.py").read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_expr_imports_no_printer():
    assert not {m for m in _imports("expr") if m.startswith("mcalc.printing")}


def test_types_imports_neither_expr_nor_build():
    assert not {m for m in _imports("types") if m.split(".")[:2] in (["mcalc", "build"],
                                                                      ["mcalc", "expr"])}


def test_repr_is_readable():
    from mcalc import expr as E
    import mcalc.printing.text  # noqa: F401  (registers the printer)
    x = E.var("x", ("n", "1"))
    assert repr(E.make("add", x, E.make("mul", E.num(2), x))) == "Expr('x + 2*x', ('n', '1'))"
