"""Imports only go down: the module graph of mcalc/ (every import, also those inside
functions) has no cycle."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mcalc"

def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        if name == "mcalc":
            continue            # re-exports the API lazily (PEP 562 __getattr__): no edge
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from mcalc import expr` is an edge to mcalc.expr, not to the package
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None (iterative depth-first search)."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                colour[node] = 2
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_no_import_cycle():
    assert find_cycle(imports_graph()) is None


def test_the_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# the typed expression tree never imports a printer, nor types the builder on top of it
def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
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
