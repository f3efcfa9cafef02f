"""mcalc.algebra's rational-root factoring, against roots chosen by hand."""
from fractions import Fraction
from itertools import product

import pytest

from mcalc.algebra import _rational_root


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
