"""sdot.validation: the one helper behind every number check."""

import math

import pytest

from sdot.validation import (NotANumberError, check_nonnegative, check_positive, finite, nonnegative, one_of,
                             positive, positive_int)


def test_positive_accepts_and_converts():
    assert positive("tau", 2) == 2.0 and isinstance(positive("tau", 2), float)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_positive_refuses_out_of_range_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got"):
        positive("tau", bad)


@pytest.mark.parametrize("bad", ["x", None, True, [1.0]])
def test_not_a_number_is_both_type_and_value_error(bad):
    with pytest.raises(TypeError, match="dt must be a real number"):
        positive("dt", bad)
    with pytest.raises(ValueError):
        positive("dt", bad)
    assert issubclass(NotANumberError, TypeError) and issubclass(NotANumberError, ValueError)


def test_nonnegative_and_finite():
    assert nonnegative("T", 0) == 0.0
    with pytest.raises(ValueError, match="T must be a finite number >= 0"):
        nonnegative("T", -1e-12)
    assert finite("x", -3) == -3.0
    with pytest.raises(ValueError, match="x must be a finite number"):
        finite("x", math.inf)


def test_positive_int():
    assert positive_int("n", 3) == 3 and positive_int("n", 2.0) == 2
    with pytest.raises(TypeError, match="n must be an integer, got 2.5"):
        positive_int("n", 2.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        positive_int("n", 0)


def test_keyword_forms_name_the_first_bad_value():
    check_positive(a=1, b=2.0)
    with pytest.raises(ValueError, match="b must be a finite number > 0"):
        check_positive(a=1, b=0)
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        check_nonnegative(c=-1)


def test_one_of():
    assert one_of("law", "glauber", ("glauber", "metropolis")) == "glauber"
    with pytest.raises(ValueError, match=r"law must be one of \('glauber', 'metropolis'\), got 'x'"):
        one_of("law", "x", ("glauber", "metropolis"))
