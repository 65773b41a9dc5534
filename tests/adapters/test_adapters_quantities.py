"""Exact quantity conversion (decimal strings ↔ grams, serials, capacities) and cross-record helpers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2 as pb

from adapters import build_default_registry
from adapters.crosscheck import (
    capacity_required,
    lifetime_within,
    period_within,
    refers_to,
    serial_size,
    serials_overlap,
)
from adapters.quantities import (
    INT64_MAX,
    InexactQuantityError,
    capacity_in_unit,
    capacity_watts,
    capacity_within,
    check_decimal,
    decimal_to_grams,
    fraction_to_decimal,
    gram_serials_to_native,
    grams_to_decimal,
    native_serials_to_grams,
)

UNITS = [(1, "g"), (1_000, "kg"), (1_000_000, "t")]
PROPERTY = settings(max_examples=300, deadline=None)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    whole = draw(st.integers(0, 10**13))
    frac = draw(st.text("0123456789", max_size=9))
    return f"{whole}.{frac}" if frac else str(whole)


def oracle_grams(text: str, unit_grams: int) -> Fraction:
    return Fraction(text) * unit_grams


# -- decimal ↔ grams ----------------------------------------------------------------------------


@PROPERTY
@given(st.integers(0, 10**17), st.sampled_from(UNITS), st.integers(0, 6))
def test_grams_render_and_parse_back_exactly(grams: int, unit: tuple[int, str], pad: int) -> None:
    unit_grams, label = unit
    text = grams_to_decimal(grams, unit_grams, min_decimals=pad)
    assert decimal_to_grams(text, unit_grams, label) == grams
    assert Fraction(text) * unit_grams == grams
    assert "e" not in text.lower() and not text.startswith(".")


@PROPERTY
@given(decimal_texts(), st.sampled_from(UNITS))
def test_decimal_to_grams_is_exact_or_refuses(text: str, unit: tuple[int, str]) -> None:
    unit_grams, label = unit
    exact = oracle_grams(text, unit_grams)
    decimals = len(text.partition(".")[2])
    scale = len(str(unit_grams)) - 1
    try:
        grams = decimal_to_grams(text, unit_grams, label)
    except InexactQuantityError:
        assert exact.denominator != 1  # refused because it is not whole grams: never rounded
        return
    except ValueError:
        assert decimals > scale or exact > INT64_MAX  # zeros beyond the unit's decimals, or too big
        return
    assert grams == exact and decimals <= scale


@PROPERTY
@given(decimal_texts())
def test_decimal_to_grams_agrees_with_a_high_precision_decimal_oracle(text: str) -> None:
    with localcontext() as ctx:
        ctx.prec = 100
        expected = Decimal(text) * 1_000_000
    whole = expected == expected.to_integral_value()
    if whole and len(text.partition(".")[2]) <= 6 and expected <= INT64_MAX:
        assert decimal_to_grams(text, 1_000_000, "t") == int(expected)
    else:
        with pytest.raises(ValueError):
            decimal_to_grams(text, 1_000_000, "t")


@pytest.mark.parametrize(
    ("text", "unit_grams", "grams"),
    [
        ("392.700", 1_000_000, 392_700_000),
        ("0.000001", 1_000_000, 1),
        ("309180.000", 1_000, 309_180_000),
        ("0.001", 1_000, 1),
        ("12345000", 1, 12_345_000),
        ("0", 1_000, 0),
    ],
)
def test_known_conversions(text: str, unit_grams: int, grams: int) -> None:
    assert decimal_to_grams(text, unit_grams, "u") == grams


@pytest.mark.parametrize(
    ("text", "unit_grams", "reason"),
    [
        ("0.0000005", 1_000_000, "0.0000005 t is not a whole number of grams"),
        ("1.0005", 1_000, "1.0005 t is not a whole number of grams"),
        ("0.5", 1, "0.5 t is not a whole number of grams"),
    ],
)
def test_inexpressible_values_are_refused(text: str, unit_grams: int, reason: str) -> None:
    with pytest.raises(InexactQuantityError) as info:
        decimal_to_grams(text, unit_grams, "t")
    assert str(info.value).startswith(reason)


@pytest.mark.parametrize("text", ["-1", "1e3", "1,000", " 1", ".5", "5.", "1_000", "٣", "", "NaN"])
def test_malformed_decimals_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a non-negative decimal number"):
        decimal_to_grams(text, 1_000, "kg")


def test_check_decimal_keeps_text_as_written() -> None:
    assert check_decimal("4.20") == "4.20"
    assert check_decimal("-0.5", allow_negative=True) == "-0.5"
    with pytest.raises(ValueError, match="greater than zero"):
        check_decimal("0.000", positive=True)
    with pytest.raises(ValueError, match="is not a decimal number"):
        check_decimal("-0.5")


def test_grams_to_decimal_shapes() -> None:
    assert grams_to_decimal(392_700_000, 1_000_000, min_decimals=3) == "392.700"
    assert grams_to_decimal(373_010_000, 1_000_000) == "373.01"
    assert grams_to_decimal(1, 1_000_000) == "0.000001"
    assert grams_to_decimal(5, 1) == "5"
    with pytest.raises(ValueError):
        grams_to_decimal(-1, 1_000)


# -- serial ranges ------------------------------------------------------------------------------


@PROPERTY
@given(st.integers(0, 10**12), st.integers(1, 10**9), st.sampled_from([1, 1_000, 1_000_000]))
def test_native_serials_map_to_gram_ranges_and_back(first: int, count: int, k: int) -> None:
    last = first + count - 1
    start, end = native_serials_to_grams(first, last, k)
    assert (start, end) == (first * k, (last + 1) * k - 1)
    assert end - start + 1 == count * k
    assert gram_serials_to_native(start, end, k) == (first, last)


@PROPERTY
@given(st.integers(0, 10**15), st.integers(1, 10**9))
def test_unaligned_gram_ranges_are_not_expressible_in_kilograms(start: int, size: int) -> None:
    end = start + size - 1
    if start % 1_000 == 0 and (end + 1) % 1_000 == 0:
        assert gram_serials_to_native(start, end, 1_000) == (start // 1_000, (end + 1) // 1_000 - 1)
    else:
        with pytest.raises(InexactQuantityError, match="does not cover whole native units"):
            gram_serials_to_native(start, end, 1_000)


def test_serial_range_errors() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        native_serials_to_grams(10, 9, 1_000)
    with pytest.raises(ValueError, match="cannot be negative"):
        native_serials_to_grams(-1, 9, 1_000)
    with pytest.raises(ValueError, match="too large"):
        native_serials_to_grams(0, INT64_MAX // 1_000, 1_000)


# -- capacities ---------------------------------------------------------------------------------


def q(value: str, unit: str) -> pb.ExactQuantity:
    return pb.ExactQuantity(value=value, unit=unit)


def test_capacity_watts_is_exact_across_units() -> None:
    assert capacity_watts(q("0.85", "MW")) == 850_000
    assert capacity_watts(q("850", "kW")) == capacity_watts(q("0.85", "MW"))
    assert capacity_watts(q("0.0005", "kW")) == Fraction(1, 2)
    assert capacity_watts(q("500", "千瓦")) == 500_000
    assert capacity_within(q("1000", "kW"), q("1", "MW"))
    assert not capacity_within(q("1000.001", "kW"), q("1", "MW"))
    with pytest.raises(ValueError, match="unknown capacity unit"):
        capacity_watts(q("1", "hp"))
    with pytest.raises(ValueError, match="is not a decimal number"):
        capacity_watts(q("1e3", "kW"))


@PROPERTY
@given(decimal_texts(), st.sampled_from(["W", "kW", "MW"]), st.sampled_from(["W", "kW", "MW"]))
def test_capacity_conversion_between_units_is_exact(value: str, unit: str, target: str) -> None:
    converted = capacity_in_unit(q(value, unit), target)
    assert capacity_watts(q(converted, target)) == capacity_watts(q(value, unit))
    if unit == target:
        assert converted == value


@PROPERTY
@given(st.fractions(), st.integers(0, 12), st.integers(0, 12))
def test_fraction_to_decimal_terminates_exactly_or_says_none(
    value: Fraction, twos: int, fives: int
) -> None:
    terminating = Fraction(value.numerator, 2**twos * 5**fives)
    text = fraction_to_decimal(terminating)
    assert text is not None and Fraction(text) == terminating
    if any(p for p in (3, 7, 11, 13) if value.denominator % p == 0):
        assert fraction_to_decimal(value) is None


# -- cross-record helpers -----------------------------------------------------------------------


def rng(start: date, end: date | None) -> pb.DateRange:
    result = pb.DateRange(start=pb.CalendarDate(year=start.year, month=start.month, day=start.day))
    if end is not None:
        result.end.CopyFrom(pb.CalendarDate(year=end.year, month=end.month, day=end.day))
    return result


def test_period_within() -> None:
    crediting = rng(date(2023, 7, 1), date(2033, 6, 30))
    assert period_within(rng(date(2024, 1, 1), date(2024, 12, 31)), crediting)
    assert period_within(rng(date(2023, 7, 1), date(2033, 6, 30)), crediting)
    assert not period_within(rng(date(2023, 6, 30), date(2024, 1, 1)), crediting)
    assert not period_within(rng(date(2033, 1, 1), date(2033, 7, 1)), crediting)
    assert period_within(rng(date(2030, 1, 1), date(2040, 1, 1)), rng(date(2024, 1, 1), None))
    assert not period_within(rng(date(2030, 1, 1), None), crediting)


def test_serial_helpers() -> None:
    a = pb.SerialRange(start=1_000, end=373_010_999)
    b = pb.SerialRange(start=373_011_000, end=385_355_999)
    assert serial_size(a) == 373_010_000
    assert not serials_overlap(a, b)
    assert serials_overlap(a, pb.SerialRange(start=373_010_999, end=373_011_000))
    assert serials_overlap(b, pb.SerialRange(start=0, end=10**12))


def test_refers_to_and_capacity_required() -> None:
    registry = build_default_registry()
    m = pb.Methodology(
        region="330000",
        methodology_id="1526163848812433408",
        version="1",
        category=pb.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    )
    zhejiang_ref = pb.MethodologyRef(region="330000", methodology_id="1526163848812433408")
    assert refers_to(registry.get("330000"), zhejiang_ref, m)
    assert capacity_required(m)
    s = pb.Methodology(region="310000", methodology_id="SHCI-M-PV-2024-01", version="1")
    ref = pb.MethodologyRef(region="310000", methodology_id="SHCI-M-PV-2024-01", version="1")
    assert refers_to(registry.get("310000"), ref, s)
    ref.version = "2"
    assert not refers_to(registry.get("310000"), ref, s)
    assert not capacity_required(s)


def test_lifetime_within() -> None:
    project = pb.Project(
        start_date=pb.CalendarDate(year=2024, month=2, day=29),
        crediting_period=rng(date(2024, 3, 1), date(2049, 2, 28)),
    )
    assert lifetime_within(project, pb.EligibilityRules(max_lifetime_years=25))
    project.crediting_period.end.day = 29
    project.crediting_period.end.month = 3
    assert not lifetime_within(project, pb.EligibilityRules(max_lifetime_years=25))
    assert lifetime_within(project, pb.EligibilityRules())
