"""Walks that stay iterative and memoised at any depth (issue #16): the LaTeX printer,
canonical forms and check's rewriting, the rich view. Each runs under a recursion limit far
below the depth of its tree, so any recursive walk fails."""
from __future__ import annotations

from mcalc import expr as E
from mcalc.canonical import canonical
from mcalc.checker import _nodes_with_paths, _replace_at
from mcalc.printing.latex import expr_to_latex
from mcalc.types import SCALAR

N = 5000


def test_latex_printer_is_iterative(shallow_stack):
    x = E.var("x", SCALAR)
    e = x
    for _ in range(N):
        e = E.Expr("sin", (e,), SCALAR)
    assert expr_to_latex(e) == r"\sin\left(" * N + "x" + r"\right)" * N
    s = x
    for k in range(2, N):
        s = E.Expr("add", (s, E.Expr("mul", (E.num(-k), x), SCALAR)), SCALAR)
    assert expr_to_latex(s) == "x" + "".join(f" - {k} x" for k in range(2, N))


def test_latex_products_keep_their_spacing_deep(shallow_stack):
    # juxtaposition: \, next to a multi-letter name anywhere in a factor, \cdot before a digit
    lam, x = E.var("lam", SCALAR), E.var("x", SCALAR)
    e = x
    for _ in range(N):
        e = E.Expr("exp", (e,), SCALAR)
    prod = E.Expr("mul", (lam, e), SCALAR)
    assert expr_to_latex(prod) == r"\mathit{lam} \, " + r"\exp\left(" * N + "x" + r"\right)" * N
    deep_sum = E.Expr("add", (x, E.num(1)), SCALAR)
    for _ in range(N):
        deep_sum = E.Expr("sin", (deep_sum,), SCALAR)
    assert expr_to_latex(E.Expr("mul", (x, deep_sum), SCALAR)) == \
        "x " + r"\sin\left(" * N + "x + 1" + r"\right)" * N


def _network(depth):
    x, W = E.var("x", ("n", "1")), E.var("W", ("n", "n"))
    e = x
    for _ in range(depth):
        e = E.Expr("tanh", (E.Expr("matmul", (W, e), ("n", "1")),), ("n", "1"))
    return e


def test_canonical_forms_are_iterative(shallow_stack):
    s = E.var("s", SCALAR)
    f = s
    for _ in range(N):
        f = E.Expr("sin", (f,), SCALAR)
    assert canonical(f) is f
    e = _network(2000)
    t = canonical(E.Expr("T", (e,), ("1", "n")))
    assert t.op == "tanh" and t.shape == ("1", "n")      # the transpose pushed inside
    assert canonical(E.Expr("T", (t,), ("n", "1"))) is canonical(e)
    diff = E.Expr("add", (e, E.Expr("mul", (E.num(-1), e), e.shape)), e.shape)
    assert canonical(diff).op == "zeros"


def test_check_paths_walk_each_node_once(shallow_stack):
    # 60 levels of a + a over one shared node: 2^60 paths, 61 distinct nodes
    x = E.var("x", SCALAR)
    e = x
    for _ in range(60):
        e = E.Expr("add", (e, e), SCALAR)
    walked = list(_nodes_with_paths(e))
    assert len(walked) == 61
    deep = _network(N)
    nodes = list(_nodes_with_paths(deep))
    path, leaf = next((p, n) for p, n in nodes if n.op == "var" and n.name == "x")
    y = E.var("y", ("n", "1"))
    replaced = _replace_at(deep, path, y)
    m = replaced
    for _ in range(N):
        m = m.args[0].args[1]
    assert m is y and replaced is not deep
    assert not nodes[0][0] and all(p for p, _ in nodes[1:])


def test_rich_dataflow_is_iterative(shallow_stack):
    from types import SimpleNamespace

    from rich.text import Text

    from mcalc.derivation import Step
    from mcalc.printing.rich_view import _dataflow
    x = E.var("x", SCALAR)
    defines, prev = [], x
    for k in range(1, N + 1):
        defines.append(Step("define", f"t{k}", E.Expr("sin", (prev,), SCALAR)))
        prev = E.var(f"t{k}", SCALAR)
    d = SimpleNamespace(of=f"t{N}", wrt=("x",), types={"x": "scalar"})
    node = _dataflow(defines, d, Text)
    for k in range(N, 0, -1):                      # t5000 -> t4999 -> ... -> t1 -> x
        assert str(node.label).startswith(f"t{k} = sin(")
        (node,) = node.children
    assert str(node.label).startswith("x") and not node.children


def test_typing_is_iterative(shallow_stack):
    # settle and force_array followed every operand of an unknown type by recursion: the
    # Python API failed on a long sum inside sum() (the CLI raises the recursion limit)
    from mcalc.pipeline import typed
    _, body, _, typing = typed("d/dx sum(" + " + ".join(["x"] * 2000) + ")")
    assert typing.as_strings() == {"x": "vector(n)"}
    _, body, _, typing = typed("d/dx -(-(" * 300 + "x" + "))" * 300 + "'@A")
    assert typing.as_strings()["x"] == "vector(n)"
    _, body, _, _ = typed("d/dx ones(" + "*".join(["n"] * 2000) + ")'@x")
    assert body.args[0].shape == ("1", "*".join(["n"] * 2000))
