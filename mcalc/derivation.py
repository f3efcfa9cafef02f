"""A derivation is plain immutable data: the printers (plain, rich, LaTeX, JSON, numpy)
render it; the engine that builds it never prints.

Step kinds (`Step.kind`):
  'define'       lhs = name of an intermediate variable, rhs = its definition (an Expr
                 over the variables and earlier intermediates)
  'name'         lhs = a name for a derivative too large to write out where later
                 equations use it, rhs = its value (written with earlier names), terms =
                 ((Total(of, by),),): the derivative it names, as the steps state it
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
  'component'    lhs = (of, by): definition method, one component's derivative (rhs) at
                 concrete sizes; an equation (eq) only when of and by are whole scalar
                 names and rhs is written in the variables (w_1 is no name of the
                 request language)
  'note'         text (e.g. a subgradient choice at a kink), optionally followed by rhs

Every step that states an equation carries it as data in `eq` (an Eq), so that each line
can be checked on its own (the contract, section "JSON").

Eq, Step and Derivation are mcalc.record.Record classes (frozen-dataclass equivalents that
are cheaper to define: every call of mcalc imports this module); `replace` copies one
with some fields changed.
"""
from __future__ import annotations

from functools import partial

from mcalc.expr import Expr
from mcalc.record import Record, fillable


def dim_sources(typing) -> dict[str, str]:
    """numpy text giving each dimension's size, read off a variable that has it."""
    out: dict[str, str] = {}
    for name, vt in typing.vars.items():
        r, c = vt.shape                          # (both axes inline: no inner loop)
        if r != "1" and r not in out and not r.isdigit():
            out[r] = f"np.shape({name})[0]"
        if c != "1" and c not in out and not c.isdigit():
            out[c] = f"np.shape({name})[1]"
    return out


class Total(tuple):
    """A factor (of, by) of a chain step's terms that is a total derivative, d(of)/d(by)
    (P&H §4.5.2: d for a total derivative, ∂ for a partial); a plain pair is a partial."""
    __slots__ = ()

    def __new__(cls, of: str, by: str):
        return super().__new__(cls, (of, by))


class Eq(Record):
    """One equation of a derivation.

    kind 'define':       name = rhs (an intermediate variable)
    kind 'partial':      ∂of/∂by = rhs, the other operands of of's definition held fixed
    kind 'total':        the total derivative of `of` by `by` = rhs
    kind 'differential': d(of) = Σ G : D over `terms` ((G, D) pairs, D written with the
                         differentials d<name> of intermediates and variables)
    A derivative's rhs is in `layout`; `vec` marks ∂vec(of)/∂vec(by)."""
    __slots__ = _fields = ("kind", "of", "by", "rhs", "terms", "layout", "vec")

    def __new__(cls, kind: str, of: str, by: str = "", rhs: Expr | None = None,
                terms: tuple = (), layout: str = "numerator", vec: bool = False):
        self = _new(_EqFill)                # (built as its twin: see record.fillable)
        self.kind = kind
        self.of = of
        self.by = by
        self.rhs = rhs
        self.terms = terms
        self.layout = layout
        self.vec = vec
        self.__class__ = cls
        return self


_new = object.__new__
_EqFill = fillable(Eq)


class Step(Record):
    __slots__ = _fields = ("kind", "lhs", "rhs", "rule", "terms", "by", "text", "source",
                           "eq", "product")

    def __new__(cls, kind: str, lhs: object = None, rhs: Expr | None = None, rule: str = "",
                terms: tuple = (), by: Expr | None = None, text: str = "", source: str = "",
                eq: Eq | None = None, product: Expr | None = None):
        self = _new(_StepFill)              # (built as its twin: see record.fillable)
        self.kind = kind
        self.lhs = lhs
        self.rhs = rhs
        self.rule = rule
        self.terms = terms
        self.by = by
        self.text = text
        self.source = source                # where the rule comes from (seed and section)
        self.eq = eq                        # the equation the step states, as data
        # chain: the product of the stated partials, before the named rewrites (in `rule`)
        # simplify it to rhs
        self.product = product
        self.__class__ = cls
        return self


_StepFill = fillable(Step)

# Step(...) and Eq(...) as the methods build them (dozens per derivation): the classes'
# own __new__, without the class call, which first packs the arguments into a tuple and
# a dict (half the cost of a record)
make_step = partial(Step.__new__, Step)
make_eq = partial(Eq.__new__, Eq)


class Derivation(Record):
    __slots__ = _fields = ("request", "wrt", "layout", "method", "types", "expr", "result",
                           "steps", "vec_form", "where", "dims", "of", "stacked", "groups")

    def __new__(cls, request: str, wrt: tuple[str, ...], layout: str, method: str,
                types: dict, expr: Expr, result: Expr | None, steps: tuple[Step, ...] = (),
                vec_form: bool = False, where: tuple[tuple[str, Expr], ...] = (),
                dims: dict | None = None, of: str = "y", stacked: bool = False,
                groups: tuple = ()):
        self = _new(_DerivationFill)        # (built as its twin: see record.fillable)
        self.request = request
        self.wrt = wrt                      # every variable differentiated by, outermost first
        self.layout = layout                # numerator | denominator
        self.method = method                # chain | differential | definition
        self.types = types                  # variable name -> 'vector(n)' etc.
        self.expr = expr                    # the expression differentiated (typed)
        self.result = result                # None when there is no derivative prefix
        self.steps = steps
        self.vec_form = vec_form            # result is ∂vec(F)/∂vec(X)
        self.where = where                  # shared subexpressions
        self.dims = {} if dims is None else dims    # dimension -> numpy text of its size
        self.of = of                        # the name the steps give the expression
        self.stacked = stacked              # d/d(x, y): wrt are stacked scalars
        self.groups = groups    # the prefixes as written: (("x1", "x2"), ("x1", "x2"))
        self.__class__ = cls
        return self

    @property
    def shape(self):
        return (self.result if self.result is not None else self.expr).shape


_DerivationFill = fillable(Derivation)
make_derivation = partial(Derivation.__new__, Derivation)     # (as make_step)


def replace(record: Record, **changes) -> Record:
    """A copy of a record of this module with `changes` (as dataclasses.replace)."""
    values = dict(zip(record._fields, record._values()))
    values.update(changes)
    return type(record)(**values)
