"""mcalc benchmarks (issues #6 and #16): cost growth, per-request time, memory, cold call.

    python benchmarks/run.py            # everything, about 10 minutes on 2 cores
    python benchmarks/run.py --quick    # fewer repetitions and smaller sizes (a smoke test)
    python benchmarks/run.py --only families|mix|memory|cold|check|depth

Everything is measured side by side in one run and printed with its target and whether
it is met. The targets (issue #16):

  families  derive and every printer (plain, rich, latex, json, numpy) grow linearly:
            log-log slope <= 1.15 over the sizes, for an L-layer tanh network by W1
            (up to 256 layers), a balanced sum of quadratic forms (up to 1000 terms),
            sin(sin(...x)) (depth up to 1000) and sum(A1@...@An@x) (n up to 500); and
            `check` of mcalc's own result for 8/16/32-layer networks. Each (family, size)
            runs in a fresh interpreter after a warm-up call; times are CPU seconds of that
            process (a printer: the least of five runs), at the sizes the issue names.
            A size that takes longer than the
            time budget stops its family (reported, and the slope is over what finished).
  mix       benchmarks/mix.txt (300 realistic requests, benchmarks/make_mix.py) through
            `mcalc diff - --format json` (<= 1 ms per request) and plain (<= 0.5 ms);
            start-up excluded: (t(300 requests) - t(first request alone)) / 299, in
            CPU time (wall time printed beside it).
  memory    peak RSS of `mcalc diff -` over 10,000 distinct requests <= 25 MiB.
  cold      median wall time of `mcalc diff "d/dx sin(x^2)" --format plain` divided by
            that of `python -c "import sympy"` <= 0.2.
  check     `mcalc check --batch -` on benchmarks/check_mix.txt, in ms per claim
            (measured when the file exists).
  depth     (issue #6) t(32)/t(8) <= 5 for the tanh network, size(32)/size(8) <= 5,
            and its numpy form evaluates and matches central differences.

The mcalc package is byte-compiled first (installed wheels are; an editable checkout
under PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every call).
Times are medians over several runs where cheap; the spread printed next to each (the
inter-quartile range as a percentage of the median) tells how noisy the machine was.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLD_REQUEST = "d/dx sin(x^2)"
DEPTHS = (8, 16, 32, 64)


# ---- helpers ---------------------------------------------------------------------------

def mcalc_executable() -> str:
    beside = Path(sys.executable).parent / "mcalc"
    if beside.exists():
        return str(beside)
    found = shutil.which("mcalc")
    if not found:
        sys.exit("mcalc is not installed (pip install -e .)")
    return found


def child_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # let the interpreters use (and write) .pyc
    env["NO_COLOR"] = "1"
    return env


def byte_compile() -> str:
    import mcalc
    pkg = Path(mcalc.__file__).resolve().parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg)], env=child_env(),
                   check=False, stdout=subprocess.DEVNULL)
    return str(pkg)


def run(cmd, stdin_path=None, timeout=600):
    """(wall seconds, cpu seconds, max RSS KiB, exit code, stdout) of one child process."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=child_env())
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
    finally:
        if stdin_path:
            stdin.close()
    text = out.decode("utf-8", "replace")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode, text


def peak_rss_kib(cmd, stdin_path=None) -> int:
    """Peak memory of `cmd` the way the issue asks: ru_maxrss of RUSAGE_CHILDREN, read in a
    fresh wrapper process whose only child is `cmd`."""
    wrapper = ("import resource, subprocess, sys\n"
               "i = sys.argv.index('--')\n"
               "stdin = open(sys.argv[1], 'rb') if sys.argv[1] else subprocess.DEVNULL\n"
               "subprocess.run(sys.argv[i + 1:], stdin=stdin, stdout=subprocess.DEVNULL,"
               " stderr=subprocess.DEVNULL)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", wrapper, stdin_path or "", "--", *cmd],
                         capture_output=True, text=True, env=child_env())
    return int(out.stdout.strip())


def med(xs):
    return statistics.median(xs)


def spread(xs) -> str:
    """Inter-quartile range as a percentage of the median."""
    if len(xs) < 4:
        return "  n/a"
    q = statistics.quantiles(xs, n=4)
    return f"{100 * (q[2] - q[0]) / med(xs):4.0f}%"


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = ["?"]
    return (f"machine: nproc {os.cpu_count()}, {cpu}; python {platform.python_version()} "
            f"({sys.executable}); load average {' '.join(load)}")


# ---- the requests ----------------------------------------------------------------------

def network(L: int) -> str:
    e = "x"
    for k in range(1, L + 1):
        e = f"tanh(W{k}@{e} + b{k})"
    return f"d/dW1 sum(({e} - y)^2)"


MIXED = [
    "d/dx sin(x^2)", "d/dw sum(w*x) + b", "d/dx x'@A@x",
    "d/dx x'@A@x where x: vector(n); A: matrix(n, n)", "d/dX tr(A@X@B)", "d/dX det(X)",
    "d/dX logdet(X)", "d/dx norm(x)", "d/dx softmax(x)", "d/dx logsumexp(x)",
    "d/dw sum((X@w - y)^2)", "d/dw norm(X@w - y)^2 + lam*norm(w)^2", "d/dx exp(x)*log(x)",
    "d/dx tanh(A@x + b)", "d/dW sum(sigmoid(W@x))", "d/dx sum(relu(x))",
    "d^2/dx^2 x'@A@x", "d/dx d/dy x^2*y^3", "d/d(x, y) x^2 + x*y", "d/dx A@x",
    "d/dX A@X@B", "d/dx dot(a, x)", "d/dx mean(x)", "d/dx sqrt(x'@x)", "d/dx 1/x",
    "d/dx x/(1 + x^2)", "d/dtheta sum(log(sigmoid(X@theta)))", "d/dx inv(A)@x",
    "d/dx max(x, 0)", "d/dx sum(abs(x))", "d/dx [x^2, sin(x)]", "d/dx x'@x",
    "A@x", "d/dx " + network(3)[6:].replace("W1", "V"),
]
BAD = ["d/dx sin(x", "d/dx A*x where A: matrix(m, n); x: vector(n)", "d/dx )", "d/dq x^2",
       "d/dx foo(x)"]


def batch_file(path: Path, n: int = 1000, seed: int = 6) -> int:
    """n mixed requests, about 5% of them bad input; returns the number of bad lines."""
    rnd = random.Random(seed)
    lines, bad = [], 0
    for _ in range(n):
        if rnd.random() < 0.05:
            lines.append(rnd.choice(BAD))
            bad += 1
        else:
            lines.append(rnd.choice(MIXED))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


# ---- the depth driver (runs in a fresh interpreter per measurement) ----------------------

DEPTH_DRIVER = r'''
import json, sys, time
import numpy as np
from mcalc.pipeline import derive
from mcalc.printing import plain
from mcalc.printing.numpy_code import to_numpy
from mcalc.printing.text import where_texts

request, check_numpy = sys.argv[1], sys.argv[2] == "1"
plain.render(derive("d/dx sin(x^2)"))                      # warm up (first-call costs)
t0 = time.perf_counter()
d = derive(request)
text = plain.render(d)
elapsed = time.perf_counter() - t0
size = len(plain.result_line(d)) + sum(
    len(f"{n} = {t}") for n, t in where_texts(d.where))
out = {"time": elapsed, "size": size, "where": len(d.where), "lines": text.count("\n")}
if check_numpy:
    names = {e: n for n, e in d.where}
    code = to_numpy(d.result, d.dims, names)
    rng = np.random.default_rng(0)
    sizes = {}
    def size_of(dim):
        if dim.isdigit():
            return int(dim)
        return sizes.setdefault(dim, int(rng.integers(2, 6)))
    env = {}
    for name, t in d.types.items():
        if t == "scalar":
            env[name] = float(rng.normal())
        elif t.startswith("vector("):
            env[name] = rng.normal(size=size_of(t[7:-1])) * 0.5
        else:
            r, c = [s.strip() for s in t[t.index("(") + 1:-1].split(",")]
            env[name] = rng.normal(size=(size_of(r), size_of(c))) * 0.5
    compile(code, "<numpy>", "eval")                       # one expression
    value = eval(code, {"np": np}, dict(env))
    W1 = env["W1"]
    ok_shape = np.shape(value) == W1.T.shape               # numerator layout: the transpose
    # central differences on a few entries of W1
    def loss(W):
        h = env["x"]
        for k in range(1, 10_000):
            if f"W{k}" not in env:
                break
            h = np.tanh((W if k == 1 else env[f"W{k}"]) @ h + env[f"b{k}"])
        return float(np.sum((h - env["y"]) ** 2))
    worst = 0.0
    for i, j in [(0, 0), (W1.shape[0] - 1, W1.shape[1] - 1), (1, 0)]:
        E = np.zeros_like(W1); E[i, j] = 1e-6
        fd = (loss(W1 + E) - loss(W1 - E)) / 2e-6
        worst = max(worst, abs(fd - value[j, i]) / max(1.0, abs(fd)))
    out.update(numpy_chars=len(code), numpy_shape_ok=bool(ok_shape), numpy_error=worst)
print(json.dumps(out))
'''


def depth_run(L: int, check_numpy: bool) -> dict:
    flag = "1" if check_numpy else "0"
    p = subprocess.run([sys.executable, "-c", DEPTH_DRIVER, network(L), flag],
                       capture_output=True, text=True, env=child_env(), timeout=600)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout)


# ---- the families (issue #16): growth of derive and of each printer ----------------------

def quadratic_forms(n: int) -> str:
    """(x'@A1@x + x'@A2@x) + (x'@A3@x + x'@A4@x) + ...: a balanced sum of n terms."""
    terms = [f"x'@A{k}@x" for k in range(1, n + 1)]
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return "d/dx " + terms[0]


def nested_sin(n: int) -> str:
    return "d/dx " + "sin(" * n + "x" + ")" * n


def matrix_chain(n: int) -> str:
    return "d/dx sum(" + "@".join(f"A{k}" for k in range(1, n + 1)) + "@x)"


# name -> (request builder, sizes, --quick sizes)
FAMILIES = {
    "tanh network by W1 (layers)": (network, (16, 32, 64, 128, 256), (8, 16, 32)),
    "sum of quadratic forms (terms)": (quadratic_forms, (125, 250, 500, 1000),
                                       (16, 32, 64)),
    "nested sin (depth)": (nested_sin, (125, 250, 500, 1000), (16, 32, 64)),
    "sum(A1@...@An@x) (n)": (matrix_chain, (63, 125, 250, 500), (16, 32, 64)),
}
PRINTERS = ("plain", "rich", "latex", "json", "numpy")
SLOPE_TARGET = 1.15

FAMILY_DRIVER = r'''
import io, json, sys, time
sys.setrecursionlimit(100_000)        # what `mcalc` itself allows
from mcalc.pipeline import derive
from mcalc.printing import plain, json_out, latex, numpy_code, rich_view
from rich.console import Console

def rich(d):
    rich_view.render(d, Console(file=io.StringIO(), width=120, color_system=None))

def numpy(d):
    names = {e: n for n, e in d.where}
    return numpy_code.to_numpy(d.result, d.dims, names)

printers = {"plain": plain.render, "rich": rich, "latex": latex.derivation_to_latex,
            "json": json_out.render, "numpy": numpy}
warm = derive("d/dx sin(x^2) + x'@A@x")                     # first-call costs
for p in printers.values():
    p(warm)
# CPU time of this process: other processes on a busy machine barely change it
clock = time.process_time
out = {}
t0 = clock()
d = derive(sys.argv[1])
out["derive"] = clock() - t0
for name in sys.argv[2].split(","):
    best = None
    for _ in range(5):                                  # pure: the least of five runs
        t0 = clock()
        printers[name](d)
        t = clock() - t0
        best = t if best is None else min(best, t)
        if t > 1.0:
            break
    out[name] = best
print(json.dumps(out))
'''


def slope(points: dict) -> float | None:
    """Least-squares slope of log(time) against log(size)."""
    import math
    pts = [(math.log(n), math.log(t)) for n, t in points.items() if t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def family_run(request: str, printers, timeout: float) -> dict:
    try:
        p = subprocess.run([sys.executable, "-c", FAMILY_DRIVER, request, ",".join(printers)],
                           capture_output=True, text=True, env=child_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over the {timeout:.0f} s budget"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(p.stdout)


def families(sizes_key: int, budget: float, goals: list) -> None:
    print(f"families: CPU seconds of derive and of each printer (least of 5 runs), one fresh "
          f"process per size (budget {budget:.0f} s a size); slope = log-log growth, "
          f"target <= {SLOPE_TARGET}")
    cols = ("derive",) + PRINTERS
    for fam, spec in FAMILIES.items():
        build, sizes = spec[0], spec[sizes_key]
        print(f"  {fam}")
        print("    " + f"{'size':>6}" + "".join(f"{c:>10}" for c in cols))
        series = {c: {} for c in cols}
        stopped = ""
        for n in sizes:
            r = family_run(build(n), PRINTERS, budget)
            if "error" in r:
                stopped = f"{n}: {r['error']}"
                print(f"    {n:6d}  stopped: {r['error']}")
                break
            for c in cols:
                series[c][n] = r[c]
            print("    " + f"{n:6d}" + "".join(f"{r[c]:10.4f}" for c in cols))
        slopes = {c: slope(series[c]) for c in cols}
        print("    " + f"{'slope':>6}" + "".join(
            f"{s:10.2f}" if s is not None else f"{'-':>10}" for s in slopes.values()))
        for c in cols:
            s = slopes[c]
            ok = s is not None and s <= SLOPE_TARGET and not stopped
            top = max(series[c]) if series[c] else 0
            goals.append((f"slope {fam.split(' (')[0]}, {c} (to {top})", ok,
                          f"{s:.2f}" if s is not None else "n/a"))
    print()


CHECK_DRIVER = r'''
import json, sys, time
sys.setrecursionlimit(100_000)
from mcalc.checker import check
from mcalc.pipeline import derive
from mcalc.printing.text import to_text, where_texts
check("d/dx sin(x^2)", "2*x*cos(x^2)")                        # first-call costs
request = sys.argv[1]
d = derive(request)
names = {e: n for n, e in d.where}
claim = to_text(d.result, names)
if d.where:                                                  # where t1 = ...; t2 = ...
    claim += " where " + "; ".join(f"{n} = {t}" for n, t in where_texts(d.where))
form = "where"
try:
    t0 = time.perf_counter()
    r = check(request, claim)
    elapsed = time.perf_counter() - t0
except Exception:                                            # no `where` definitions
    claim, form = to_text(d.result), "written out"
    t0 = time.perf_counter()
    r = check(request, claim)
    elapsed = time.perf_counter() - t0
print(json.dumps({"time": elapsed, "holds": bool(r.holds), "chars": len(claim), "form": form}))
'''


def check_own(budget: float, goals: list) -> None:
    print("check of mcalc's own result for an L-layer network (fresh process per L)")
    times = {}
    for L in (8, 16, 32):
        try:
            p = subprocess.run([sys.executable, "-c", CHECK_DRIVER, network(L)],
                               capture_output=True, text=True, env=child_env(), timeout=budget)
        except subprocess.TimeoutExpired:
            print(f"  {L:4d}  over the {budget:.0f} s budget")
            break
        if p.returncode != 0:
            print(f"  {L:4d}  failed: {(p.stderr.strip().splitlines() or ['?'])[-1][:150]}")
            break
        r = json.loads(p.stdout)
        times[L] = r["time"]
        print(f"  {L:4d} {1000 * r['time']:9.1f} ms  holds: {r['holds']}  claim: {r['chars']} "
              f"characters ({r['form']})")
    s = slope(times)
    print(f"  slope {s:.2f}" if s is not None else "  slope n/a")
    goals.append(("slope check of own result (to 32 layers)",
                  s is not None and s <= SLOPE_TARGET and len(times) == 3,
                  f"{s:.2f}" if s is not None else "n/a"))
    print()


# ---- the request mix, memory over distinct requests, check --batch ---------------------

MIX = HERE / "mix.txt"
CHECK_MIX = HERE / "check_mix.txt"


def per_request_ms(cmd, lines: list[str], runs: int) -> tuple[float, str, float]:
    """(CPU ms per request, its spread, wall ms per request), start-up excluded:
    t(all) - t(the first alone). The process is single-threaded, so its CPU time is its
    wall time on an idle machine, and it barely moves when other processes compete."""
    with tempfile.TemporaryDirectory() as tmp:
        one, full = Path(tmp) / "one.txt", Path(tmp) / "all.txt"
        one.write_text(lines[0] + "\n", encoding="utf-8")
        full.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cpu, wall = [], []
        for _ in range(runs):                                 # interleaved: same load
            w1, c1 = run(cmd, str(one))[:2]
            wn, cn = run(cmd, str(full))[:2]
            cpu.append(1000 * (cn - c1) / (len(lines) - 1))
            wall.append(1000 * (wn - w1) / (len(lines) - 1))
    return med(cpu), spread(cpu), med(wall)


def mix(exe: str, runs: int, goals: list) -> None:
    lines = [ln for ln in MIX.read_text(encoding="utf-8").splitlines() if ln.strip()]
    print(f"mix: {len(lines)} requests of {MIX.name} ({runs} runs; start-up excluded)")
    for fmt, target in (("json", 1.0), ("plain", 0.5)):
        ms, sp, wall = per_request_ms([exe, "diff", "-", "--format", fmt], lines, runs)
        print(f"  mcalc diff - --format {fmt:<6} {ms:7.3f} ms/request CPU (spread {sp}); "
              f"wall {wall:.3f}")
        goals.append((f"mix --format {fmt} ms/request <= {target}", ms <= target, f"{ms:.3f}"))
    print()


MEMORY_FORMS = ["d/dx sin({a}*x^2) + {b}*x", "d/dx {a}*x'@A@x + {b}*sum(x)",
                "d/dw sum((X@w - y)^2)*{a} + {b}*norm(w)^2", "d/dW tr(A@W@B)*{a} + {b}*det(W)",
                "d/dx tanh({a}*A@x + {b}*c)", "d^2/dx^2 {a}*logsumexp(x) + {b}*x'@x",
                "d/dx exp(-{a}*x)*cos({b}*x)", "d/dw sum(log(sigmoid({a}*X@w + {b})))"]


def distinct_requests(n: int) -> list[str]:
    """n distinct requests (the constants differ), so no cache can answer a repeat."""
    out = []
    for k in range(n):
        form = MEMORY_FORMS[k % len(MEMORY_FORMS)]
        out.append(form.format(a=2 + k // len(MEMORY_FORMS), b=3 + k % 97))
    return out


def memory(exe: str, n: int, goals: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "distinct.txt"
        path.write_text("\n".join(distinct_requests(n)) + "\n", encoding="utf-8")
        one = Path(tmp) / "one.txt"
        one.write_text(distinct_requests(1)[0] + "\n", encoding="utf-8")
        base = peak_rss_kib([exe, "diff", "-"], str(one)) / 1024
        peak = peak_rss_kib([exe, "diff", "-"], str(path)) / 1024
    print(f"memory: peak RSS of `mcalc diff -` (ru_maxrss)")
    print(f"  one request        {base:7.1f} MiB")
    print(f"  {n} distinct     {peak:7.1f} MiB  ({1024 * (peak - base) / max(n - 1, 1):.2f} KiB "
          f"per request above one)")
    goals.append((f"memory over {n} distinct requests <= 25 MiB", peak <= 25, f"{peak:.1f}"))
    print()


def check_batch_mix(exe: str, runs: int, goals: list) -> None:
    if not CHECK_MIX.exists():
        print(f"check --batch: {CHECK_MIX.name} does not exist (not measured)\n")
        goals.append(("check --batch ms/claim", None, "n/a"))
        return
    lines = [ln for ln in CHECK_MIX.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    ms, sp, wall = per_request_ms([exe, "check", "--batch", "-"], lines, runs)
    print(f"check --batch: {len(lines)} claims of {CHECK_MIX.name}: {ms:.2f} ms/claim CPU "
          f"(spread {sp}; wall {wall:.2f}; start-up excluded)\n")
    goals.append(("check --batch ms/claim", None, f"{ms:.2f}"))


# ---- the parts -----------------------------------------------------------------------------

def cold(exe: str, runs: int, goals: list) -> None:
    py = sys.executable
    cmds = {
        "mcalc": [exe, "diff", COLD_REQUEST, "--format", "plain"],
        "sympy": [py, "-c", "import sympy"],
        "python": [py, "-c", "pass"],
    }
    for c in cmds.values():                                 # warm the file cache
        run(c)
    wall = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    for _ in range(runs):                                   # interleaved: same load for all
        for k, c in cmds.items():
            w, u, _, rc, out = run(c)
            if rc != 0:
                raise SystemExit(f"{k} failed: {out.strip()[:300]}")
            wall[k].append(w)
            cpu[k].append(u)
    ratio = med(wall["mcalc"]) / med(wall["sympy"])
    cpu_ratio = med(cpu["mcalc"]) / med(cpu["sympy"])
    paired = med([a / b for a, b in zip(wall["mcalc"], wall["sympy"])])
    print(f"cold call ({runs} interleaved runs each)        wall median  spread   cpu median")
    for k, label in (("mcalc", f"mcalc diff {COLD_REQUEST!r} --format plain"),
                     ("sympy", "python -c 'import sympy'"),
                     ("python", "python -c pass (interpreter start)")):
        print(f"  {label:<44} {1000 * med(wall[k]):7.1f} ms  {spread(wall[k])}  "
              f"{1000 * med(cpu[k]):7.1f} ms")
    print(f"  ratio mcalc/sympy: wall {ratio:.3f} (median of paired ratios {paired:.3f}), "
          f"cpu {cpu_ratio:.3f}")
    goals.append(("cold call ratio <= 0.2 (wall)", ratio <= 0.2, f"{ratio:.3f}"))
    print()


def depth(exe: str, runs: int, goals: list) -> None:
    print(f"depth: d/dW1 of an L-layer tanh network ({runs} fresh processes per L; "
          "time = derive + plain render, after a warm-up call)")
    print("     L     time   spread    size  where  numpy (chars, evaluates, max rel. error)")
    times, sizes, numpy_ok = {}, {}, True
    for L in DEPTHS:
        rs = [depth_run(L, check_numpy=(i == 0)) for i in range(runs)]
        errs = [r["error"] for r in rs if "error" in r]
        if errs:
            print(f"  {L:4d}  failed: {errs[0]}")
            numpy_ok = False
            continue
        ts = [r["time"] for r in rs]
        times[L], sizes[L] = med(ts), rs[0]["size"]
        r0 = rs[0]
        good = r0["numpy_shape_ok"] and r0["numpy_error"] < 1e-5
        numpy_ok &= good
        print(f"  {L:4d} {1000 * times[L]:7.1f} ms {spread(ts)} {sizes[L]:7d} {r0['where']:6d}"
              f"  {r0['numpy_chars']} chars, {'yes' if good else 'NO'}, {r0['numpy_error']:.1e}")
    if 8 in times and 32 in times:
        tr, sr = times[32] / times[8], sizes[32] / sizes[8]
        extra = f", t(64)/t(32) = {times[64] / times[32]:.2f}" if 64 in times else ""
        print(f"  t(32)/t(8) = {tr:.2f}, size(32)/size(8) = {sr:.2f}{extra}")
        goals.append(("depth t(32)/t(8) <= 5", tr <= 5, f"{tr:.2f}"))
        goals.append(("depth size(32)/size(8) <= 5", sr <= 5, f"{sr:.2f}"))
    else:
        goals.append(("depth", False, "failed"))
    goals.append(("depth numpy form evaluates (and matches differences)", numpy_ok,
                  "yes" if numpy_ok else "no"))
    w64 = run([exe, "diff", network(64), "--format", "plain"])
    print(f"  whole CLI call at L = 64: {1000 * w64[0]:.0f} ms wall, exit {w64[3]}, "
          f"{len(w64[4])} characters of output")
    print()


def batch_and_memory(exe: str, runs: int, goals: list) -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        diff_in = Path(tmp) / "diff.txt"
        n_bad = batch_file(diff_in)
        n = sum(1 for _ in diff_in.open(encoding="utf-8"))
        print(f"batch: {n} mixed requests ({n_bad} of them bad input), {runs} run(s)")
        ws = []
        for _ in range(runs):
            w, _, _, rc, out = run([exe, "diff", "-", "--format", "plain"], diff_in)
            ws.append(w)
        lines = out.rstrip("\n").split("\n")
        errors = sum(" =>  error" in ln for ln in lines)
        print(f"  mcalc diff -            {n / med(ws):8.0f} req/s  ({1000 * med(ws):.0f} ms; "
              f"{len(lines)} output lines, {errors} errors, exit {rc})")
        goals.append(("batch diff: one line per request, exit 2 with bad lines",
                      len(lines) == n and errors == n_bad and rc == 2,
                      f"{len(lines)} lines, {errors} errors, exit {rc}"))
        goals.append(("batch diff req/s", None, f"{n / med(ws):.0f}"))

        probe = run([exe, "check", "--help"])
        if probe[3] == 0 and "mcalc check" in probe[4]:
            # claims: mcalc's own results (they hold) and twice them (they do not)
            js = run([exe, "diff", "-", "--format", "json"], diff_in)[4].splitlines()
            check_in = Path(tmp) / "check.txt"
            rows, rnd = [], random.Random(7)
            for ln in js:
                try:
                    o = json.loads(ln)
                except ValueError:
                    continue
                if "error" in o or "result" not in o or o.get("where") or not o.get("wrt"):
                    continue
                claim = o["result"] if rnd.random() < 0.7 else f"2*({o['result']})"
                rows.append(f"{o['request']} ;; {claim}")
            check_in.write_text("\n".join(rows) + "\n", encoding="utf-8")
            ws = []
            for _ in range(runs):
                w, _, _, rc_c, out_c = run([exe, "check", "--batch", "-"], check_in)
                ws.append(w)
            n_out = len(out_c.rstrip("\n").split("\n"))
            print(f"  mcalc check --batch -   {len(rows) / med(ws):8.0f} req/s  "
                  f"({1000 * med(ws):.0f} ms for {len(rows)} requests; {n_out} output lines, "
                  f"exit {rc_c})")
            if n_out != len(rows):
                print(f"    first output line: {out_c.splitlines()[0][:200] if out_c else ''}")
            goals.append(("batch check req/s", None, f"{len(rows) / med(ws):.0f}"))
        else:
            print("  mcalc check --batch -        n/a  (mcalc check is not available)")
            goals.append(("batch check req/s", None, "n/a"))
        print()

        print("peak memory (ru_maxrss of RUSAGE_CHILDREN, one fresh wrapper per command)")
        mems = {
            "python -c pass": peak_rss_kib([py, "-c", "pass"]),
            f"mcalc diff {COLD_REQUEST!r} --format plain":
                peak_rss_kib([exe, "diff", COLD_REQUEST, "--format", "plain"]),
            "mcalc diff <64-layer network> --format plain":
                peak_rss_kib([exe, "diff", network(64), "--format", "plain"]),
            f"mcalc diff - < {n} mixed requests": peak_rss_kib([exe, "diff", "-"], str(diff_in)),
        }
        for k, v in mems.items():
            print(f"  {k:<50} {v / 1024:7.1f} MiB")
        goals.append(("peak memory of one call (MiB)", None,
                      f"{mems[f'mcalc diff {COLD_REQUEST!r} --format plain'] / 1024:.1f}"))
        print()


# ---- main --------------------------------------------------------------------------------

PARTS = ("families", "check", "mix", "memory", "cold", "depth", "batch")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds one (family, size) may take before its family stops")
    ap.add_argument("--runs", type=int, default=None, help="cold-call runs of each command")
    ap.add_argument("--only", choices=PARTS, action="append", default=None,
                    help="run these parts only (repeatable; batch includes memory of one call)")
    ap.add_argument("--executable", default=None,
                    help="the mcalc to measure (default: the one installed beside python); "
                         "set PYTHONPATH too to measure another checkout")
    args = ap.parse_args()

    pkg = byte_compile()
    exe = args.executable or mcalc_executable()
    print(machine())
    print(f"mcalc: {exe} (package {pkg}, byte-compiled first)")
    print()
    parts = args.only or PARTS
    sizes_key = 2 if args.quick else 1
    budget = args.budget or 120.0
    goals: list[tuple[str, bool | None, str]] = []
    if "families" in parts:
        families(sizes_key, budget, goals)
    if "check" in parts:
        check_own(budget, goals)
    if "mix" in parts:
        mix(exe, 3 if args.quick else 5, goals)
    if "memory" in parts:
        memory(exe, 2_000 if args.quick else 10_000, goals)
    if "cold" in parts:
        cold(exe, args.runs or (7 if args.quick else 15), goals)
    if "depth" in parts:
        depth(exe, 2 if args.quick else 3, goals)
    if "batch" in parts:
        batch_and_memory(exe, 1, goals)
    if "check" in parts:
        check_batch_mix(exe, 1 if args.quick else 3, goals)

    print("goals")
    for name, ok, value in goals:
        mark = "met" if ok else ("NOT MET" if ok is False else "(measured)")
        print(f"  {name:<58} {value:>12}  {mark}")
    return 0 if all(ok for _, ok, _ in goals if ok is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
