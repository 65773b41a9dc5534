"""Exact unit normalisation of emission factors, and rendering of fractions."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutual_recognition import (
    Dimension,
    IncompatibleUnit,
    InvalidQuantity,
    UnknownUnit,
    format_fraction,
    normalise,
    normalise_emission_factor,
    render_normalised,
)
from mutual_recognition.units import parse_unit

# Shanghai's 4.2 tCO2/10^4kWh is 0.42 kgCO2/kWh, whatever the spelling of the unit.
FIVE_UNITS = [
    ("4.2", "tCO2/10^4kWh", Fraction("0.42")),
    ("0.42", "tCO2/MWh", Fraction("0.42")),
    ("0.42", "kgCO2/kWh", Fraction("0.42")),
    ("0.00042", "tCO2/kWh", Fraction("0.42")),
    ("420", "gCO2/kWh", Fraction("0.42")),
]


@pytest.mark.parametrize(("value", "unit", "expected"), FIVE_UNITS)
def test_the_five_units_normalise_to_kg_per_kwh(value: str, unit: str, expected: Fraction) -> None:
    assert normalise_emission_factor(value, unit) == expected


@pytest.mark.parametrize(
    "unit",
    [
        "tCO2/10⁴kWh",
        "tCO2/万kWh",
        "tCO2/10000kWh",
        "t CO2 / 10^4 kWh",
        "tCO₂/10^4kWh",
        "tCO2/(10^4kWh)",
        "tCO2/10**4kWh",
        "吨二氧化碳/万千瓦时",
        "tCO2e/10^4kWh",
    ],
)
def test_spellings_of_ten_thousand_kwh(unit: str) -> None:
    assert normalise_emission_factor("4.2", unit) == Fraction(21, 50)


def test_east_china_grid_published_per_kwh_in_tonnes() -> None:
    # 0.5617 kgCO2/kWh is sometimes published as 0.0005617 tCO2/kWh.
    assert normalise_emission_factor("0.0005617", "tCO2/kWh") == normalise_emission_factor(
        "0.5617", "kgCO2/kWh"
    )


def test_megawatt_and_gigawatt_hours() -> None:
    assert normalise_emission_factor("597.8", "kgCO2/MWh") == Fraction("0.5978")
    assert normalise_emission_factor("597.8", "tCO2/GWh") == Fraction("0.5978")
    assert normalise_emission_factor("0.5978", "tCO2/MW·h") == Fraction("0.5978")


@pytest.mark.parametrize(
    "unit",
    [
        "kg/kWh",
        "kgCO2/kwh",
        "KgCO2/kWh",
        "kgCO2/mWh",
        "tCO2/10^4",
        "furlongs",
        "",
        "kgCO2",
        "kgCO2/kWh/yr",
        "kgCH4/kWh",
        "ktCO2/kWh",
        "tCO2/千kWh",
        "tCO2/10^99kWh",
    ],
)
def test_unknown_unit_is_refused_and_named(unit: str) -> None:
    with pytest.raises(UnknownUnit) as caught:
        normalise_emission_factor("0.42", unit)
    assert caught.value.reason == "UNKNOWN_UNIT"
    assert caught.value.kind == "invalid_argument"
    assert repr(unit) in str(caught.value)
    assert caught.value.metadata == {"unit": unit}


def test_known_unit_of_another_dimension_is_incompatible() -> None:
    assert normalise("40", "gCO2/km").value == Fraction(1, 25)
    with pytest.raises(IncompatibleUnit) as caught:
        normalise_emission_factor("40", "gCO2/km")
    assert "not per kWh" in caught.value.message


@pytest.mark.parametrize("value", ["-0.42", "0.42e0", "4,2", "", "０.42", "0x10", " 0.42", "NaN"])
def test_values_must_be_plain_decimals(value: str) -> None:
    with pytest.raises(InvalidQuantity):
        normalise_emission_factor(value, "kgCO2/kWh")


def test_other_dimensions_have_their_canonical_unit() -> None:
    trip = normalise("170", "gCO2/人次")
    assert (trip.value, trip.unit, trip.dimension) == (
        Fraction(17, 100),
        "kgCO2/人次",
        Dimension.TRIP,
    )
    per_100km = normalise("8", "kgCO2/100km")
    assert (per_100km.value, per_100km.unit) == (Fraction(2, 25), "kgCO2/km")


@given(
    st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            ("tCO2/10^4kWh", Fraction(1, 10)),
            ("tCO2/MWh", Fraction(1)),
            ("kgCO2/kWh", Fraction(1)),
            ("tCO2/kWh", Fraction(1000)),
            ("gCO2/kWh", Fraction(1, 1000)),
        ]
    ),
)
def test_normalisation_is_exact(value: object, unit_factor: tuple[str, Fraction]) -> None:
    text = format(value, "f")
    unit, factor = unit_factor
    assert normalise_emission_factor(text, unit) == Fraction(text) * factor
    assert parse_unit(unit).factor == factor


def test_format_fraction_exact_decimal_or_ratio() -> None:
    assert format_fraction(Fraction(21, 50)) == "0.42"
    assert format_fraction(Fraction(3)) == "3"
    assert format_fraction(Fraction(2100, 2989)) == "300/427"
    assert format_fraction(Fraction(-1, 8)) == "-0.125"


def test_render_normalised_exact_or_six_places() -> None:
    assert render_normalised(Fraction("0.5978")) == "0.5978"
    assert render_normalised(Fraction("0.00000042")) == "0.00000042"  # exact, beyond 6 places
    assert render_normalised(Fraction(2, 3)) == "0.666667"
    assert render_normalised(Fraction(1, 3000000)) == "0.000000"
    assert render_normalised(Fraction(300, 427)) == "0.702576"
