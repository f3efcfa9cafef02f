"""A derivation is plain immutable data: the printers (plain, rich, LaTeX, JSON, numpy)
render it; the engine that builds it never prints.

Step kinds (`Step.kind`):
  'define'       lhs = name of an intermediate variable, rhs = its definition (an Expr
                 over the variables and earlier intermediates)
  'partial'      lhs = (of, by): ∂of/∂by by the named rule, rhs = the partial derivative
  'chain'        lhs = (of, by): rhs = the sum over `terms` (pairs of ((of, mid), (mid, by))
                 partial symbols) combined by the named chain rule, already multiplied out
  'differential' lhs = the scalar's name, terms = ((G, dU, symbol), ...): the whole
                 differential 'dL = G : dU + ...' (Frobenius products); G is None when too
                 large to show, and `symbol` (∂L/∂U) names it instead
  'identify'     lhs = (of, by): the derivative read off a differential (Magnus & Neudecker)
  'layout'       lhs = (of, by): the derivative turned into the denominator layout
  'substitute'   lhs = (of, by): rhs = the chain result with intermediates substituted back
  'simplify'     lhs = (of, by): rhs = the textbook form; rule names the rewrites used
  'component'    lhs = (of, by): definition method, one component's derivative (rhs)
  'note'         text (e.g. a subgradient choice at a kink), optionally followed by rhs

Every step that states an equation carries it as data in `eq` (an Eq), so that each line
can be checked on its own (the contract, section "JSON").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mcalc.expr import Expr


def dim_sources(typing) -> dict[str, str]:
    """numpy text giving each dimension's size, read off a variable that has it."""
    out: dict[str, str] = {}
    for name, vt in typing.vars.items():
        for axis, d in enumerate(vt.shape):
            if d != "1" and not d.isdigit() and d not in out:
                out[d] = f"np.shape({name})[{axis}]"
    return out


class Total(tuple):
    """A factor (of, by) of a chain step's terms that is a total derivative, d(of)/d(by)
    (P&H §4.5.2: d for a total derivative, ∂ for a partial); a plain pair is a partial."""
    __slots__ = ()

    def __new__(cls, of: str, by: str):
        return super().__new__(cls, (of, by))


@dataclass(frozen=True)
class Eq:
    """One equation of a derivation.

    kind 'define':       name = rhs (an intermediate variable)
    kind 'partial':      ∂of/∂by = rhs, the other operands of of's definition held fixed
    kind 'total':        the total derivative of `of` by `by` = rhs
    kind 'differential': d(of) = Σ G : D over `terms` ((G, D) pairs, D written with the
                         differentials d<name> of intermediates and variables)
    A derivative's rhs is in `layout`; `vec` marks ∂vec(of)/∂vec(by)."""
    kind: str
    of: str
    by: str = ""
    rhs: Expr | None = None
    terms: tuple = ()
    layout: str = "numerator"
    vec: bool = False


@dataclass(frozen=True)
class Step:
    kind: str
    lhs: object = None
    rhs: Expr | None = None
    rule: str = ""
    terms: tuple = ()
    by: Expr | None = None
    text: str = ""
    source: str = ""                     # where the rule comes from (seed and section)
    eq: Eq | None = None                 # the equation the step states, as data
    product: Expr | None = None          # chain: the product of the stated partials, before
                                         # the named rewrites (in `rule`) simplify it to rhs


@dataclass(frozen=True)
class Derivation:
    request: str
    wrt: tuple[str, ...]                 # every variable differentiated by, outermost first
    layout: str                          # numerator | denominator
    method: str                          # chain | differential | definition
    types: dict                          # variable name -> 'vector(n)' etc.
    expr: Expr                           # the expression differentiated (typed)
    result: Expr | None                  # None when there is no derivative prefix
    steps: tuple[Step, ...] = ()
    vec_form: bool = False               # result is ∂vec(F)/∂vec(X)
    where: tuple[tuple[str, Expr], ...] = field(default_factory=tuple)  # shared subexpressions
    dims: dict = field(default_factory=dict)   # dimension -> numpy text giving its size
    of: str = "y"                        # the name the steps give the expression
    stacked: bool = False                # d/d(x, y): wrt are stacked scalars
    groups: tuple = ()                   # the prefixes as written: (("x1", "x2"), ("x1", "x2"))

    @property
    def shape(self):
        return (self.result if self.result is not None else self.expr).shape
