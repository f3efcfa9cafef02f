"""A derivation frees itself: it makes no reference cycles, so reference counting returns
its memory (the simplifier's memo tables, the steps) as soon as the result is printed —
a batch's memory stays flat without waiting for the cycle collector, and the collector
has nothing of a request's to trace (it costs a batch time when it does).

The cycle collector is the judge: with it off, a request is derived and printed by every
printer and method, and gc.collect() must find nothing unreachable. (The definition
method is left out: it runs SymPy, whose caches and closures are SymPy's own.)"""
import gc
import io
from pathlib import Path

import pytest
from rich.console import Console

from mcalc.checker import check
from mcalc.pipeline import derive
from mcalc.printing import html, json_out, latex, markdown, numpy_code, plain, rich_view
from mcalc.printing.text import to_text
from test_classics import CLASSICS

MIX = Path(__file__).resolve().parents[1] / "benchmarks" / "mix.txt"
REQUESTS = [line.strip() for line in MIX.read_text().splitlines()
            if line.strip() and not line.startswith("#")][::5] + \
    [request for request, *_ in CLASSICS]


def _rich(d):
    rich_view.render(d, Console(file=io.StringIO(), width=100, color_system=None))


PRINTERS = {
    "plain": plain.render, "json": json_out.render, "latex": latex.derivation_to_latex,
    "markdown": markdown.render, "html": html.render, "rich": _rich,
    "numpy": lambda d: numpy_code.to_numpy(d.result, d.dims, {e: n for n, e in d.where}),
}


def _garbage_left(work) -> list:
    """The objects `work` left in reference cycles (gc.collect finds them unreachable)."""
    work()                                  # first-call costs: imports, module caches
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)          # keep what it finds, to name it on failure
    try:
        work()
        gc.collect()
        return [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


@pytest.mark.parametrize("printer", PRINTERS)
def test_derive_and_print_make_no_cycles(printer):
    show = PRINTERS[printer]
    assert _garbage_left(lambda: [show(derive(r)) for r in REQUESTS]) == []


@pytest.mark.parametrize("method", ["chain", "differential"])
def test_each_method_makes_no_cycles(method):
    assert _garbage_left(
        lambda: [plain.render(derive(r, (), "numerator", method)) for r in REQUESTS]) == []


def test_check_of_a_result_makes_no_cycles():
    claims = [(r, to_text(derive(r).result)) for r in REQUESTS[:40]]
    assert _garbage_left(lambda: [check(r, c) for r, c in claims]) == []
