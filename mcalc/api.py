"""The public Python API (the contract, "Python API"): `derive`, `check`, and the objects
they return. These objects are what users see; the internal derivation (mcalc.derivation)
and check result (mcalc.checker) stay free to change.

    >>> import mcalc
    >>> d = mcalc.derive("d/dw sum(w*x) + b")
    >>> d.result, d.shape
    ("x'", ('1', 'n'))
    >>> bool(mcalc.check("d/dx x'@A@x", "(A + A')@x", layout="denominator"))
    True

Everything a `Derivation` shows is computed once, on first use, from the JSON object of
the derivation (`to_json()`), so the CLI's `--format json` and the API agree by
construction. `function()` evaluates the typed result with mcalc's own numpy interpreter
(mcalc.evaluate): no text is ever turned into code.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from mcalc.errors import McalcError

__all__ = ["derive", "check", "Derivation", "Step", "Verdict", "McalcError"]


@dataclass(frozen=True)
class Step:
    """One line of a derivation.

    kind:   'define', 'name', 'partial', 'chain', 'differential', 'substitute',
            'simplify', 'component' or 'note' (see mcalc.derivation for what each states)
    rule:   the rule applied ('' when none), source: where that rule comes from
    text:   the line in the request language, latex: the same line in LaTeX
    eq:     the equation the line states, as data (the contract's JSON `eq`), or None
    """
    kind: str
    rule: str
    source: str
    text: str
    latex: str
    eq: dict | None = None


class Derivation:
    """The derivation of one request, as `mcalc.derive` returns it.

    result  the derivative (or, with no derivative prefix, the expression) in the request
            language, e.g. "x'" — feed it back as a request or a claim
    shape   its shape as two dimension strings, e.g. ('1', 'n')
    latex   the result in LaTeX; numpy: a Python expression over `np` and the variables
    types   the typing used, name -> 'vector(n)' etc.; where: named shared subexpressions
    steps   the step-by-step derivation, a tuple of `Step`

    In Jupyter it shows itself as the whole derivation (HTML with MathML, Markdown or
    LaTeX, whichever the front end prefers).
    """

    def __init__(self, internal):
        self._d = internal

    @functools.cached_property
    def _json(self) -> dict:
        from mcalc.printing.json_out import as_dict
        return as_dict(self._d)

    @property
    def request(self) -> str:
        """The request text, as given."""
        return self._d.request

    @property
    def result(self) -> str:
        """The result in the request language (the JSON "result")."""
        return self._json["result"]

    @property
    def shape(self) -> tuple[str, str]:
        """The result's shape: (rows, columns) as dimension strings ('1' for one)."""
        return tuple(self._json["shape"])

    @property
    def latex(self) -> str:
        """The result in LaTeX (amsmath and amssymb)."""
        return self._json["latex"]

    @property
    def numpy(self) -> str:
        """A Python expression over `np` and the (renamed) variables computing the result."""
        return self._json["numpy"]

    @property
    def types(self) -> dict[str, str]:
        """The typing used: variable name -> 'scalar', 'vector(n)', 'matrix(m, n)', ..."""
        return dict(self._json["types"])

    @property
    def where(self) -> dict[str, str]:
        """Names of repeated subexpressions of a large result: name -> definition."""
        return dict(self._json.get("where", {}))

    @functools.cached_property
    def steps(self) -> tuple[Step, ...]:
        """The derivation, one `Step` per line."""
        return tuple(Step(s["kind"], s["rule"], s["source"], s["text"], s["latex"],
                          s.get("eq")) for s in self._json["steps"])

    def to_json(self) -> dict:
        """The contract's JSON object of this derivation (a fresh copy)."""
        import copy
        return copy.deepcopy(self._json)

    def function(self) -> Callable[..., Any]:
        """A callable computing the result from keyword arrays, one per variable.

        Values follow the JSON `numpy` convention: scalars are floats, vectors 1-D
        arrays (n,), matrices 2-D arrays; the value returned is a float, a 1-D array (a
        scalar by a vector) or a 2-D array. Dimensions are read off the arrays; a
        dimension no variable has is passed by name as an int (`f(x=..., n=3)`).
        Computed by mcalc's own interpreter of the typed result (never eval).
        """
        d = self._d
        root = d.result if d.result is not None else d.expr
        needed = _variables(root)
        shapes = {**{n: _declared_shape(t) for n, t in d.types.items()},
                  **_variables(d.expr), **needed}          # every variable, for sizes
        known = set(shapes) | _dimension_names(d)

        def derivative(**arrays):
            from mcalc.evaluate import EvaluationError, evaluate
            unknown = sorted(set(arrays) - known)
            if unknown:
                raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)} "
                                f"(the variables are {', '.join(shapes) or 'none'})")
            missing = [n for n in needed if n not in arrays]
            if missing:
                raise TypeError(f"missing value(s) for {', '.join(missing)}")
            sizes = _sizes(arrays, {n: s for n, s in shapes.items() if n in arrays})
            try:
                return evaluate(root, {n: arrays[n] for n in needed}, sizes)
            except EvaluationError as e:
                raise McalcError(str(e)) from None

        derivative.__doc__ = f"The value of {self.result} (from {d.request!r})."
        derivative.__name__ = "derivative"
        return derivative

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<mcalc.Derivation {self.request!r} = {self.result!r} {'×'.join(self.shape)}>"

    def __str__(self) -> str:
        from mcalc.printing.plain import render
        return render(self._d)

    def _repr_latex_(self) -> str:
        """The derivation in LaTeX (an align* environment), for Jupyter."""
        from mcalc.printing.latex import derivation_to_latex
        return derivation_to_latex(self._d)

    def _repr_markdown_(self) -> str:
        """The derivation in Markdown with $...$ math, for Jupyter."""
        from mcalc.printing.markdown import render
        return render(self._d)

    def _repr_html_(self) -> str:
        """The derivation in HTML with MathML (no scripts), for Jupyter."""
        from mcalc.printing.html import render
        return render(self._d)


def _variables(root) -> dict[str, tuple[str, str]]:
    """The variables of an expression, name -> shape."""
    from mcalc.expr import postorder
    out, done = {}, {}
    for node in postorder(root, done):
        done[node] = True
        if node.op == "var":
            out[node.name] = node.shape
    return out


def _declared_shape(type_text: str) -> tuple[str, str]:
    """'vector(n)' -> ('n', '1'): the shape of a typed variable (one declared and not
    used in the expression still gives its size to the result: `d/dx y where x:
    vector(n)`)."""
    kind, _, dims = type_text.partition("(")
    dims = [x.strip() for x in dims.rstrip(")").split(",")] if dims else []
    if kind == "vector":
        return dims[0], "1"
    if kind == "matrix":
        return dims[0], dims[1]
    if kind == "symmetric":
        return dims[0], dims[0]
    return "1", "1"


def _dimension_names(d) -> set[str]:
    from mcalc.expr import dimension_names
    return dimension_names(*(r for r in (d.expr, d.result) if r is not None))


def _sizes(arrays: dict, shapes: dict) -> dict[str, int]:
    """Dimension sizes read off the arrays (and ints passed by dimension name)."""
    import numpy as np
    sizes: dict[str, int] = {k: v for k, v in arrays.items()
                             if k not in shapes and isinstance(v, int)}
    for name, shape in shapes.items():
        a = np.asarray(arrays[name], dtype=float)
        dims = [x for x in shape if x != "1"]
        if len(dims) == 2 and a.ndim != 2:
            raise McalcError(f"{name} is a matrix ({shape[0]}×{shape[1]}): give a 2-D array")
        got = [s for s in a.shape if s != 1] if len(dims) < 2 else list(a.shape)
        if len(dims) < 2 and a.ndim > 1 and len(got) > len(dims):
            raise McalcError(f"{name} has shape {a.shape}; it is a "
                             f"{'scalar' if not dims else 'vector'}")
        if len(got) != len(dims):
            got = got + [1] * (len(dims) - len(got))      # a size-1 vector given as (1,)
        for dim, size in zip(dims, got):
            if dim.isdigit():
                if int(dim) != size:
                    raise McalcError(f"{name} has {size} where its type says {dim}")
            elif sizes.setdefault(dim, size) != size:
                raise McalcError(f"dimension {dim} is {sizes[dim]} elsewhere but {size} in "
                                 f"{name}")
    return sizes


def _text(name: str, value) -> None:
    """A request or claim is a str: anything else is the caller's TypeError, as for any
    Python function (bad text is a McalcError)."""
    if not isinstance(value, str):
        raise TypeError(f"the {name} must be a str, not {type(value).__name__}")


def derive(request: str, *, layout: str = "numerator", method: str | None = None,
           types: Sequence[str] = ()) -> Derivation:
    """Derive `request` (one line of the request language) step by step.

    layout: 'numerator' (default) or 'denominator'; method: 'chain', 'differential',
    'definition' or None (differential by a matrix, chain otherwise);
    types: declarations as `-t` gives them, e.g. ("w, x: vector(n)", "b: scalar").
    Raises McalcError (a ValueError with `.column`) on bad input.
    """
    from mcalc.pipeline import METHODS, derive as _derive
    _text("request", request)
    if method is not None and method not in METHODS:
        raise McalcError(f"unknown method '{method}' (chain, differential or definition)")
    if isinstance(types, str):
        types = (types,)
    return Derivation(_derive(request, tuple(types), layout, method))


class Verdict:
    """The answer of `mcalc.check`: is the claim the derivative?

    holds           True or False (also the truth value of the verdict)
    reason          one line: why it was decided so
    decided_by      'shape', 'symbolic', 'counterexample', 'exact' or 'sampling'
    derivative      mcalc's own derivative in the request language ('' if it has none)
    counterexample  when it does not hold and a point shows it: {'sizes', 'values',
                    'derivative', 'claim'} (values as lists), else None
    """

    def __init__(self, internal):
        self._r = internal
        data = internal.as_dict()
        self.holds: bool = bool(internal.holds)
        self.reason: str = data.get("reason", "")
        self.decided_by: str = data.get("decided_by") or _decided_by(internal)
        self.derivative: str = internal.derivative or ""
        self.counterexample: dict | None = data.get("counterexample")

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        return (f"<mcalc.Verdict {'holds' if self.holds else 'does not hold'} "
                f"({self.decided_by}): {self._r.request!r} ;; {self._r.claim!r}>")

    def __str__(self) -> str:
        return self._r.text()

    def _repr_markdown_(self) -> str:
        """One line for Jupyter: holds or not, decided by what, and why."""
        from mcalc.printing.markdown import code
        head = "**holds**" if self.holds else "**does not hold**"
        return (f"{head} ({self.decided_by}): {code(self._r.request)} ;; "
                f"{code(self._r.claim)} — {self.reason}")


def _decided_by(r) -> str:
    """The contract's `decided_by` from the internal decision method (when the internal
    result does not carry it itself)."""
    if r.method == "numeric":
        return "sampling" if r.holds else "counterexample"
    return r.method


def check(request: str, claim: str, *, layout: str = "numerator", types: Sequence[str] = (),
          method: str | None = None, exact: bool = False, seed: int | None = None) -> Verdict:
    """Is `claim` the derivative `request` asks for, for all values and sizes?

    The claim is parsed with the same declarations and layout. Decides by shape, then
    symbolically, then numerically at random points (`seed` picks them; None is the
    fixed default, so runs repeat); `exact=True` decides by the definition method.
    Raises McalcError on bad input and when it cannot decide (where the CLI exits 2).
    """
    from mcalc.checker import check as _check
    _text("request", request)
    _text("claim", claim)
    if isinstance(types, str):
        types = (types,)
    r = _check(request, claim, tuple(types), layout, method, exact,
               0 if seed is None else seed)
    if r.holds is None:
        raise McalcError(r.error or r.reason)
    return Verdict(r)
