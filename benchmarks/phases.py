"""Where a batch request's time goes: benchmarks/mix.txt in one process, phase by phase.

    python benchmarks/phases.py                 # ms/request of each phase (least of 5 runs)
    python benchmarks/phases.py --profile json  # cProfile of one phase (parse, derive,
                                                #   plain, json, pipeline), top 40 by own time

Phases: parse (text -> typed expression), derive (the method, from the typed request),
plain (`diff -` plain line) and json (`diff --format json`), and `pipeline`, all of it
for one line after another (text -> JSON line), which is what a batch pays: the phases
alone reuse each other's live results (interned nodes), so they add up to less. CPU time,
after one warm-up pass; benchmarks/run.py measures the same through the installed command.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from mcalc.pipeline import derive_typed, typed
from mcalc.printing.json_out import render as json_render
from mcalc.printing.plain import one_line

MIX = Path(__file__).resolve().parent / "mix.txt"


def requests() -> list[str]:
    return [line.strip() for line in MIX.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def phases(lines: list[str]) -> dict:
    parsed = [typed(line) for line in lines]
    derived = [derive_typed(req, body, typing, "numerator", None)
               for req, body, _, typing in parsed]
    return {
        "parse": lambda: [typed(line) for line in lines],
        "derive": lambda: [derive_typed(req, body, typing, "numerator", None)
                           for req, body, _, typing in parsed],
        "plain": lambda: [one_line(d) for d in derived],
        "json": lambda: [json_render(d) for d in derived],
        "pipeline": lambda: [json_render(derive_typed(req, body, typing, "numerator", None))
                             for req, body, _, typing in map(typed, lines)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=("parse", "derive", "plain", "json", "pipeline"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    lines = requests()
    work = phases(lines)
    if args.profile:
        work[args.profile]()
        prof = cProfile.Profile()
        prof.runcall(work[args.profile])
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        return
    for name, run in work.items():
        run()
        best = float("inf")
        for _ in range(args.runs):
            t = time.process_time()
            run()
            best = min(best, time.process_time() - t)
        print(f"{name:8s} {1000 * best / len(lines):6.3f} ms/request")


if __name__ == "__main__":
    main()
