"""Time per claim of `mcalc check --batch` on benchmarks/check_mix.txt, and the verdicts.

    python benchmarks/check_bench.py [--repeat N]

The mix holds about 200 `REQUEST ;; CLAIM` lines: those under '# holds' must hold, those
under '# does not hold' must not. The figure is (CPU time of the batch − CPU time of a
one-line batch) / (number of claims − 1), the best of N runs, so interpreter start-up is
not counted. Run it with PYTHONDONTWRITEBYTECODE unset (byte-compiled modules).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import time
import sys
import tempfile
from pathlib import Path

MIX = Path(__file__).with_name("check_mix.txt")


def expected(path: Path):
    out, want = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() == "# holds":
            want = True
        elif line.strip() == "# does not hold":
            want = False
        elif line.strip() and not line.lstrip().startswith("#"):
            out.append(want)
    return out


def run(exe, path) -> tuple[float, float, str]:
    """(CPU seconds of the child, user + system: other load on the machine does not
    count; wall-clock seconds; its output)."""
    before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    p = subprocess.run([exe, "check", "--batch", str(path), "--format", "json"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall, p.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("mcalc") or str(Path(sys.executable).with_name("mcalc"))
    want = expected(MIX)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("d/dx x^2 ;; 2*x\n")
        one = Path(f.name)
    base = [min(x) for x in zip(*(run(exe, one)[:2] for _ in range(args.repeat)))]
    best, out = None, ""
    for _ in range(args.repeat):
        cpu, wall, out = run(exe, MIX)
        best = [cpu, wall] if best is None else [min(best[0], cpu), min(best[1], wall)]
    got = [json.loads(line) for line in out.splitlines()]
    wrong = [(g["request"], g["claim"], g.get("error")) for g, w in zip(got, want)
             if g["holds"] is not w]
    by: dict = {}
    for g in got:
        by[g.get("decided_by", "error")] = by.get(g.get("decided_by", "error"), 0) + 1
    cpu, wall = ((b - a) / max(1, len(want) - 1) * 1000 for a, b in zip(base, best))
    print(f"{len(want)} claims ({want.count(True)} hold, {want.count(False)} do not): "
          f"{cpu:.2f} ms CPU per claim ({wall:.2f} ms wall-clock); decided by {by}")
    for w in wrong:
        print("WRONG VERDICT:", *w)
    return 1 if wrong or len(got) != len(want) else 0


if __name__ == "__main__":
    sys.exit(main())
