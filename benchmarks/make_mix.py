"""Write benchmarks/mix.txt: 300 realistic, distinct requests (issue #16).

    python benchmarks/make_mix.py

Five kinds, 60 of each, the way people use mcalc: scalar chain rules, vector Jacobians,
ML losses, scalar-by-matrix derivatives and Hessians. Each kind has a dozen forms; the
forms are varied by variable names and constants so that every line is distinct (a
batch of repeats would measure the caches, not the work). Deterministic: the file is
committed and only changes when this script does.
"""
from __future__ import annotations

import random
from pathlib import Path

SCALAR = ["d/d{x} sin({a}*{x}^2)", "d/d{x} exp(-{a}*{x})*cos({x})", "d/d{x} log(1 + {x}^2)/{a}",
          "d/d{x} sqrt({a} + {x}^2)", "d/d{x} tanh({a}*{x} + {b})", "d/d{x} {x}^{a}*exp({x})",
          "d/d{x} sigmoid({a}*{x})", "d/d{x} ({x} + {a})/({x}^2 + {b})",
          "d/d{x} sin(cos({a}*{x}))", "d/d{x} log(sigmoid({x}))*{a}",
          "d/d{x} exp(sin({x}))^{a}", "d/d{x} d/d{x2} {x}^{a}*{x2}^{b}"]
JACOBIAN = ["d/d{x} {a}*{A}@{x}", "d/d{x} tanh({A}@{x} + {v})", "d/d{x} sigmoid({A}@{x})",
            "d/d{x} exp({x})*{a}", "d/d{x} softmax({a}*{x})", "d/d{x} {a}*{x}/norm({x})",
            "d/d{x} {A}@sin({x})", "d/d{x} relu({A}@{x} + {v})", "d/d{x} {x}*{a} + {v}",
            "d/d{x} log(1 + exp({A}@{x}))", "d/d{x} [{x}^2, sin({x})*{a}]",
            "d/d{x} {A}@{B}@{x}"]
LOSS = ["d/d{w} sum(({X}@{w} - {y})^2)", "d/d{w} norm({X}@{w} - {y})^2 + {a}*norm({w})^2",
        "d/d{w} sum(log(1 + exp(-{y}*({X}@{w}))))", "d/d{w} logsumexp({X}@{w})",
        "d/d{w} sum(log(sigmoid({X}@{w})))", "d/d{w} mean(({X}@{w} - {y})^2)",
        "d/d{w} -dot({y}, log(softmax({X}@{w})))", "d/d{w} sum(abs({X}@{w} - {y}))",
        "d/d{w} sum(relu(1 - {y}*({X}@{w})))", "d/d{w} {a}*{w}'@{w} + sum(({X}@{w} - {y})^2)",
        "d/d{W} sum((tanh({W}@{x} + {v}) - {y})^2)", "d/d{W} sum(sigmoid({W}@{x}))"]
MATRIX = ["d/d{W} tr({A}@{W}@{B})", "d/d{W} {a}*det({W})", "d/d{W} logdet({W})/{a}",
          "d/d{W} tr({W}'@{W})*{a}", "d/d{W} norm({W}@{x} - {y})^2", "d/d{W} {x}'@{W}@{v}",
          "d/d{W} tr(inv({W})@{A})", "d/d{W} sum(({W}@{X} - {B})^2)", "d/d{W} tr({W}@{A}@{W}')",
          "d/d{W} {a}*logdet({W}) - tr({A}@{W})", "d/d{W} sum(exp({W}@{x}))",
          "d/d{W} {a}*norm({W})^2"]
HESSIAN = ["d^2/d{x}^2 {x}'@{A}@{x}", "d^2/d{x}^2 {a}*norm({x})^2", "d^2/d{x}^2 sum(exp({a}*{x}))",
           "d^2/d{x}^2 logsumexp({a}*{x})", "d^2/d{w}^2 sum(({X}@{w} - {y})^2)",
           "d^2/d{x}^2 sum(sin({x}))*{a}", "d^2/d{x}^2 {x}'@{x} + {v}'@{x}",
           "d^2/d{x}^2 sum(log(1 + exp({A}@{x})))", "d^2/d{x}^2 {x}^{a}",
           "d^2/d{x}^2 sin({x})*exp({x})", "d^2/d{x}^2 sqrt(1 + {x}'@{x})",
           "d^2/d{w}^2 sum(log(sigmoid({X}@{w})))"]
KINDS = {"scalar chain rules": SCALAR, "vector Jacobians": JACOBIAN, "ML losses": LOSS,
         "scalar-by-matrix": MATRIX, "Hessians": HESSIAN}

NAMES = {"x": ["x", "u", "z", "s", "t"], "y": ["y", "r", "q"], "w": ["w", "theta", "beta"],
         "A": ["A", "M", "K"], "B": ["B", "C", "N"], "W": ["W", "V", "U"], "X": ["X", "D", "F"],
         "v": ["b", "c", "h"]}


def requests(per_kind: int = 60, seed: int = 16) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    for forms in KINDS.values():
        made: set[str] = set()
        while len(made) < per_kind:
            form = forms[len(made) % len(forms)]
            x, x2 = rnd.sample(NAMES["x"], 2)
            fill = {k: rnd.choice(v) for k, v in NAMES.items()}
            fill.update(x=x, x2=x2, a=rnd.randint(2, 9), b=rnd.randint(2, 9))
            text = form.format(**fill)
            if text not in made:
                made.add(text)
                out.append(text)
    return out


if __name__ == "__main__":
    target = Path(__file__).with_name("mix.txt")
    target.write_text("\n".join(requests()) + "\n", encoding="utf-8")
    print(f"wrote {target}")
