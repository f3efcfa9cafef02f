"""Name the repeated subexpressions of a large result (t1, t2, …), as matrixcalculus.org
does with its `where` lists, so a deep network's gradient prints in linear size.

Only results whose written-out form would be large get names; textbook-sized results are
printed whole. Repetitions are counted in the tree as it is written: `a - b` writes b,
not the -b it stores, and `a/b` writes b, not b^-1, so a name is given only to what the
result (or another name) will actually show — every name is used.
"""
from __future__ import annotations

from mcalc.expr import LEAVES, Expr, dimension_names

MIN_EXPANDED = 60        # tree size above which naming starts
MIN_SHARED = 6           # a repeated subexpression smaller than this is written out


def written_args(node: Expr) -> tuple:
    """The operands of node as the text printer writes them."""
    from mcalc.printing.text import _negated, split_product
    if node.op == "add":
        return (node.args[0],) + tuple(_negated(t) or t for t in node.args[1:])
    if node.op == "mul":
        _, num, den = split_product(node)
        return tuple(num) + tuple(den)
    if node.op == "pow" and node.args[1].op == "num" and node.args[1].value < 0:
        _, _, den = split_product(Expr("mul", (node,), node.shape))
        return tuple(den)
    return node.args


def shared_names(*roots: Expr, taken=()) -> tuple[tuple[str, Expr], ...]:
    """(name, subexpression) pairs, children before parents; `taken` (the request's own
    `where` names) are never used."""
    for r in roots:            # (a loop: the usual answer, too small, without a generator)
        if r.size > MIN_EXPANDED:
            break
    else:
        return ()              # the written form is never larger than the tree: too small
    refs: dict[Expr, int] = {}
    order: list[Expr] = []
    expanded: dict[Expr, int] = {}
    stack = [(r, False) for r in roots]
    seen: set = set()
    kids: dict[Expr, tuple] = {}
    while stack:
        node, ready = stack.pop()
        if ready:
            expanded[node] = 1 + sum(expanded[a] for a in kids[node])
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        kids[node] = written_args(node)
        for a in kids[node]:
            refs[a] = refs.get(a, 0) + 1
            if a not in seen:
                stack.append((a, False))
    if max(expanded[r] for r in roots) <= MIN_EXPANDED:
        return ()
    out = []
    # a name is never a variable's or a dimension's (a user's t1 stays the user's)
    taken = set(taken) | {n.name for n in order if n.op in ("var", "dim")} | \
        dimension_names(*roots)
    k = 0
    for node in order:                                   # post-order: children first
        if refs.get(node, 0) >= 2 and node.op not in LEAVES and node.size >= MIN_SHARED \
                and node not in roots:
            k += 1
            while f"t{k}" in taken:
                k += 1
            out.append((f"t{k}", node))
    return tuple(out)
