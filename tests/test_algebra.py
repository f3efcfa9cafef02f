"""mcalc.algebra's rational-root factoring, against roots chosen by hand."""
from fractions import Fraction
from itertools import product

import pytest

from mcalc.algebra import _pmul, _rational_root, linear_factors


def _poly(roots, lead=1):
    """Integer coefficients (constant first) of lead * Π (q t - p) for roots p/q."""
    cs = [lead]
    for r in roots:
        p, q = r.numerator, r.denominator
        out = [0] * (len(cs) + 1)
        for k, c in enumerate(cs):
            out[k] += -p * c
            out[k + 1] += q * c
        cs = out
    return cs


def _value(cs, r):
    return sum(Fraction(c) * r ** k for k, c in enumerate(cs))


ROOTS = [Fraction(p, q) for p, q in product((1, -1, 2, -3, 5), (1, 2, 3))]


@pytest.mark.parametrize("roots", [(a, b) for a in ROOTS[:8] for b in ROOTS[5:]] +
                         [(a, b, c) for a, b, c in zip(ROOTS, ROOTS[3:], ROOTS[6:])])
@pytest.mark.parametrize("lead", (1, -2, 6))
def test_a_rational_root_is_found_and_is_a_root(roots, lead):
    cs = _poly(roots, lead)
    r = _rational_root(cs)
    assert r is not None and _value(cs, r) == 0 and r in roots


@pytest.mark.parametrize("cs", ([-2, 0, 1], [1, 0, 1], [3, 1, 1], [-6, 0, 0, 1], [1, 1, 1, 1, 1]))
def test_no_rational_root(cs):
    # t^2 - 2, t^2 + 1, t^2 + t + 3, t^3 - 6, t^4 + t^3 + t^2 + t + 1: irreducible over Q
    assert _rational_root(cs) is None


@pytest.mark.parametrize("roots", [(a, b) for a in ROOTS[:6] for b in ROOTS[6:]] +
                         [(a, b, c) for a, b, c in zip(ROOTS, ROOTS[4:], ROOTS[8:])])
@pytest.mark.parametrize("lead", (1, -3))
@pytest.mark.parametrize("fractions", (False, True))
def test_linear_factors_multiply_back(roots, lead, fractions):
    # a polynomial in atom 7 with those roots (integral coefficients and exponents, as ints
    # or as Fractions): its factors a + b*t (a > 0) times the rest give it back
    cs = _poly(roots, lead)
    p = {(((7, Fraction(k) if fractions else k),) if k else ()): Fraction(c) if fractions else c
         for k, c in enumerate(cs) if c}
    got = linear_factors(p)
    assert got is not None
    factors, rest = got
    assert len(factors) == len(roots)
    assert all(f[()] > 0 for f in factors)
    product = rest
    for f in factors:
        product = _pmul(product, f)
    assert product == p


@pytest.mark.parametrize("p", [{(): 1, ((3, 2),): 1},                  # 1 + t^2: no root
                               {((3, 2),): 1, ((3, 1),): 1},           # no constant term
                               {(): 1, ((3, 1),): 1},                  # degree 1
                               {(): 1, ((3, 2),): -1, ((4, 1),): 1},   # two atoms
                               {(): 1, ((3, Fraction(1, 2)),): 1},     # a fractional power
                               {(): Fraction(1, 2), ((3, 2),): -1}])   # a fraction
def test_linear_factors_none(p):
    assert linear_factors(p) is None
