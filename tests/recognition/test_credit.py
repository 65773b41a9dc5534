"""ETS offset credit: retired × ratio, rounded down to whole grams, integers only."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutual_recognition import InvalidQuantity, InvalidRatio, ets_offset_credit


def test_shanghai_ratio_for_jiangsu_units() -> None:
    ratio = Fraction(2100, 2989)  # 0.42 / 0.5978 = 300/427
    credit = ets_offset_credit(1_000_000, ratio)  # one tonne retired
    assert credit.credited_grams == 702_576  # 702 576.11… rounded down
    assert credit.retired_grams == 1_000_000
    assert credit.ratio == ratio
    assert credit.remainder == 1_000_000 * 300 - 702_576 * 427 == 48
    assert credit.dropped == Fraction(48, 427)


def test_no_ratio_credits_everything() -> None:
    credit = ets_offset_credit(123, None)
    assert (credit.credited_grams, credit.remainder, credit.dropped) == (123, 0, Fraction(0))


def test_ratio_one_and_exact_products_drop_nothing() -> None:
    assert ets_offset_credit(999, Fraction(1)).credited_grams == 999
    half = ets_offset_credit(10, Fraction(1, 2))
    assert (half.credited_grams, half.remainder) == (5, 0)
    third = ets_offset_credit(10, Fraction(1, 3))
    assert (third.credited_grams, third.remainder) == (3, 1)


@pytest.mark.parametrize("ratio", [Fraction(0), Fraction(-1, 2), Fraction(3, 2), 0.5])
def test_ratio_must_be_in_zero_one(ratio: object) -> None:
    with pytest.raises(InvalidRatio):
        ets_offset_credit(100, ratio)  # type: ignore[arg-type]


@pytest.mark.parametrize("grams", [-1, 1.5, True, "100"])
def test_retired_grams_must_be_a_natural_number(grams: object) -> None:
    with pytest.raises(InvalidQuantity):
        ets_offset_credit(grams, Fraction(1, 2))  # type: ignore[arg-type]


ratios = st.fractions(min_value=Fraction(1, 10**6), max_value=1, max_denominator=10**9).filter(
    lambda f: f > 0
)


@given(st.integers(min_value=0, max_value=2**63 - 1), ratios)
def test_credit_rounds_down_to_whole_grams(retired: int, ratio: Fraction) -> None:
    credit = ets_offset_credit(retired, ratio)
    exact = retired * ratio
    assert isinstance(credit.credited_grams, int)
    assert credit.credited_grams <= exact < credit.credited_grams + 1
    assert credit.credited_grams <= retired  # never more than was retired
    assert credit.credited_grams + credit.dropped == exact
    assert 0 <= credit.remainder < ratio.denominator
