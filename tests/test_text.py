"""Numbers as the text printer writes them (mcalc.printing.text.fraction_text): exact, so a
result fed back is the same number, and short — an exponent rather than 300 digits.

The reference for "the same number" is Python's Fraction reading the text, and the
request language's own reading of it (the parser), never the printer."""
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from mcalc import expr as E
from mcalc.pipeline import typed
from mcalc.printing.latex import expr_to_latex as to_latex
from mcalc.printing.text import fraction_text, to_text


def read_back(text: str) -> Fraction:
    """The number the request language reads from `text` (a positive number or quotient)."""
    if "/" in text:                            # a quotient of two literals
        top, bottom = text.split("/")
        return read_back(top) / read_back(bottom)
    body = typed(text)[1]
    assert body.op == "num", text
    return body.value


@settings(max_examples=400, deadline=None)
@given(st.integers(-10**40, 10**40), st.integers(0, 250), st.integers(0, 250),
       st.sampled_from([1, 3, 7]))                 # (within 1e±300, the language's range)
def test_every_number_reads_back_as_itself(n, twos, fives, other):
    v = Fraction(n, 2**twos * 5**fives * other)
    text = fraction_text(v.numerator, v.denominator)
    top, _, bottom = text.partition("/")
    assert Fraction(top) / Fraction(bottom or 1) == v
    if v > 0 and all(len(t) <= 40 for t in text.split("/")):    # (its longest literal)
        assert read_back(text) == v


def test_decimals_keep_every_digit():
    # 15 significant digits used to be the most (cos(x + 1.5707963267949))
    assert fraction_text(15707963267948966, 10**16) == "1.5707963267948966"
    assert to_text(E.num(Fraction("0.1234567890123456789"))) == "0.1234567890123456789"
    assert fraction_text(1, 8) == "0.125"                  # short decimals as they were
    assert fraction_text(-3, 2) == "-1.5"
    assert fraction_text(1, 3) == "1/3"
    assert fraction_text(1, 100000) == "1/100000"          # (not 1e-05)


def test_long_numbers_take_an_exponent_when_shorter():
    assert fraction_text(1, 10**300) == "1e-300"
    assert fraction_text(3, 2 * 10**300) == "1.5e-300"
    assert fraction_text(10**300, 1) == "1e300"
    assert fraction_text(-7 * 10**40, 1) == "-7e40"
    assert fraction_text(123456789012345678901234567, 1) == "123456789012345678901234567"
    assert fraction_text(10**300, 7) == "1e300/7"         # not a terminating decimal
    assert fraction_text(1, 3 * 10**30) == "1/3e30"


def test_latex_writes_an_exponent_as_a_power_of_ten():
    assert to_latex(E.num(Fraction(1, 10**300))) == "10^{-300}"
    assert to_latex(E.num(Fraction(3, 2 * 10**300))) == r"1.5 \cdot 10^{-300}"
    assert to_latex(E.num(Fraction(10**300, 7))) == r"\frac{10^{300}}{7}"


def test_a_result_with_a_long_number_feeds_back():
    from mcalc.pipeline import derive
    for request, result in [("d/dx sin(x + 1.5707963267948966)", "cos(x + 1.5707963267948966)"),
                            ("d/dx x*1e300", "1e300"), ("d/dx 1.5e-300*x^2", "3e-300*x"),
                            ("d/dx x^2/1e300", "2*x/1e300"), ("d/dx x*1e300/7", "1e300/7")]:
        d = derive(request)
        assert to_text(d.result) == result
        assert to_text(typed(result)[1]) == result


def test_a_number_too_long_to_print_is_bad_input_not_a_crash():
    # Python refuses str() of an int beyond 4,300 digits (a ValueError from the printer);
    # the definition method folds 10^5000 into one number
    import pytest
    from mcalc.errors import McalcError
    for n, d in [(10**5000, 1), (1, 3**9000), (7 * 10**4100 + 1, 1)]:
        with pytest.raises(McalcError, match="too large"):
            fraction_text(n, d)
    import mcalc
    with pytest.raises(McalcError, match="too large"):
        mcalc.derive("d/dx x*10^5000", method="definition").result
    assert mcalc.derive("d/dx x*10^5000").result == "10^5000"      # a power: printed as one
