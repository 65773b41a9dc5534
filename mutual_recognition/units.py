"""Exact unit normalisation of emission factors, and rendering of exact fractions.

Values are plain decimal strings parsed exactly into ``fractions.Fraction`` (never a float).
Units are parsed from a fixed vocabulary: a mass of CO2 (``t``, ``kg``, ``g``, ``吨``, ``千克``,
``公斤``, ``克``; the gas written ``CO2``, ``CO₂``, ``CO2e``, ``CO2eq``, ``CO2-eq``, ``二氧化碳``
or ``二氧化碳当量``), a slash, an optional multiplier (``10^4``, ``10⁴``, ``10**4``, ``万``, or a
whole number such as ``100``) and a base: energy (``kWh``, ``kW·h``, ``千瓦时``, ``MWh``,
``兆瓦时``, ``GWh``, ``Wh``), distance (``km``, ``公里``, ``千米``) or a passenger trip
(``人次``). Whitespace is ignored and the case is significant (``mWh`` is not ``MWh``). Anything
else raises ``UnknownUnit`` naming the unit: a unit is never guessed. CO2 and CO2e are treated as
the same gas, as the delta's filings do.

Canonical units: ``kgCO2/kWh`` (electricity), ``kgCO2/km`` (distance), ``kgCO2/人次`` (trip).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from fractions import Fraction

from adapters.quantities import fraction_to_decimal, is_plain_decimal
from mutual_recognition.errors import IncompatibleUnit, InvalidQuantity, UnknownUnit

__all__ = [
    "ROUNDED_PLACES",
    "Dimension",
    "NormalisedValue",
    "UnitInfo",
    "format_fraction",
    "normalise",
    "normalise_emission_factor",
    "parse_decimal",
    "parse_unit",
    "render_normalised",
]

ROUNDED_PLACES = 6
"""Decimal places of ``render_normalised`` when an exact expansion does not terminate."""

_MAX_WHOLE_DIGITS = 30
_MAX_EXPONENT = 18


class Dimension(enum.StrEnum):
    """What an emission factor is per; each has one canonical unit."""

    ELECTRICITY = "kgCO2/kWh"
    DISTANCE = "kgCO2/km"
    TRIP = "kgCO2/人次"

    @property
    def canonical_unit(self) -> str:
        """The unit normalised values of this dimension are expressed in."""
        return self.value


# Mass of CO2, in kilograms.
_MASS_KG: dict[str, Fraction] = {
    "t": Fraction(1000),
    "吨": Fraction(1000),
    "kg": Fraction(1),
    "千克": Fraction(1),
    "公斤": Fraction(1),
    "g": Fraction(1, 1000),
    "克": Fraction(1, 1000),
}
_GASES = frozenset({"CO2", "CO2e", "CO2eq", "CO2-eq", "二氧化碳", "二氧化碳当量"})

# Denominator bases: (dimension, size in the canonical base).
_BASES: dict[str, tuple[Dimension, Fraction]] = {
    "Wh": (Dimension.ELECTRICITY, Fraction(1, 1000)),
    "kWh": (Dimension.ELECTRICITY, Fraction(1)),
    "kW·h": (Dimension.ELECTRICITY, Fraction(1)),
    "kW.h": (Dimension.ELECTRICITY, Fraction(1)),
    "千瓦时": (Dimension.ELECTRICITY, Fraction(1)),
    "MWh": (Dimension.ELECTRICITY, Fraction(1000)),
    "MW·h": (Dimension.ELECTRICITY, Fraction(1000)),
    "兆瓦时": (Dimension.ELECTRICITY, Fraction(1000)),
    "GWh": (Dimension.ELECTRICITY, Fraction(1_000_000)),
    "km": (Dimension.DISTANCE, Fraction(1)),
    "公里": (Dimension.DISTANCE, Fraction(1)),
    "千米": (Dimension.DISTANCE, Fraction(1)),
    "人次": (Dimension.TRIP, Fraction(1)),
}
_BASES_LONGEST_FIRST = sorted(_BASES, key=len, reverse=True)
_MASSES_LONGEST_FIRST = sorted(_MASS_KG, key=len, reverse=True)

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER = re.compile(r"10(?:\^|\*\*)([0-9]{1,2})", re.ASCII)
_SUPER_POWER = re.compile(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]{1,2})")
_WHOLE = re.compile(r"[1-9][0-9]{0,17}", re.ASCII)


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """A parsed unit: ``value × factor`` is the value in ``dimension.canonical_unit``."""

    unit: str
    """The unit as given."""
    dimension: Dimension
    factor: Fraction


@dataclass(frozen=True, slots=True)
class NormalisedValue:
    """An exact value in the canonical unit of its dimension."""

    value: Fraction
    unit: str
    dimension: Dimension

    @property
    def text(self) -> str:
        """The value rendered by ``render_normalised`` (exact when the expansion terminates)."""
        return render_normalised(self.value)


def _unknown(unit: str, why: str) -> UnknownUnit:
    return UnknownUnit(
        f"unknown unit {unit!r}: {why}; known units are a CO2 mass (t, kg, g) per kWh, MWh, GWh,"
        " 10^4 kWh (万kWh), km or 人次, e.g. kgCO2/kWh, tCO2/MWh, tCO2/10^4kWh",
        metadata={"unit": unit},
    )


def _multiplier(text: str, unit: str) -> Fraction:
    if text == "":
        return Fraction(1)
    if text == "万":
        return Fraction(10_000)
    if m := _POWER.fullmatch(text):
        exponent = int(m.group(1))
    elif m := _SUPER_POWER.fullmatch(text):
        exponent = int(m.group(1).translate(_SUPERSCRIPTS))
    elif _WHOLE.fullmatch(text):
        return Fraction(int(text))
    else:
        raise _unknown(unit, f"{text!r} is not a multiplier such as 10^4, 10⁴, 万 or 100")
    if exponent > _MAX_EXPONENT:
        raise _unknown(unit, f"the multiplier 10^{exponent} is out of range")
    return Fraction(10**exponent)


def parse_unit(unit: str) -> UnitInfo:
    """Parse an emission-factor unit; raises ``UnknownUnit`` (naming it) for anything unknown."""
    compact = "".join(unit.split()).replace("CO₂", "CO2").replace("／", "/")
    if compact.count("/") != 1:
        raise _unknown(unit, "expected one '/' between a CO2 mass and what it is per")
    numerator, denominator = compact.split("/")
    mass = next((m for m in _MASSES_LONGEST_FIRST if numerator.startswith(m)), None)
    if mass is None or numerator[len(mass) :] not in _GASES:
        raise _unknown(unit, f"{numerator!r} is not a mass of CO2 such as tCO2, kgCO2 or gCO2")
    if denominator.startswith("(") and denominator.endswith(")"):
        denominator = denominator[1:-1]
    base = next((b for b in _BASES_LONGEST_FIRST if denominator.endswith(b)), None)
    if base is None:
        raise _unknown(unit, f"{denominator!r} is not kWh, MWh, GWh, km or 人次")
    multiplier = _multiplier(denominator[: -len(base)], unit)
    dimension, base_size = _BASES[base]
    return UnitInfo(
        unit=unit, dimension=dimension, factor=_MASS_KG[mass] / (multiplier * base_size)
    )


def parse_decimal(value: str) -> Fraction:
    """Parse a plain non-negative ASCII decimal string exactly; ``InvalidQuantity`` otherwise."""
    if not is_plain_decimal(value):
        raise InvalidQuantity(
            f"{value!r} is not a non-negative decimal number written like 0.5978",
            metadata={"value": value[:64]},
        )
    if len(value.split(".")[0]) > _MAX_WHOLE_DIGITS:
        raise InvalidQuantity(f"{value[:40]}… is too large", metadata={"value": value[:64]})
    return Fraction(value)


def normalise(value: str, unit: str) -> NormalisedValue:
    """The exact value in the canonical unit of the unit's dimension."""
    info = parse_unit(unit)
    return NormalisedValue(
        value=parse_decimal(value) * info.factor,
        unit=info.dimension.canonical_unit,
        dimension=info.dimension,
    )


def normalise_emission_factor(value: str, unit: str) -> Fraction:
    """An electricity emission factor in kgCO2/kWh, exactly.

    ``normalise_emission_factor("4.2", "tCO2/10^4kWh") == Fraction(21, 50)`` (0.42). Raises
    ``UnknownUnit`` for an unknown unit, ``IncompatibleUnit`` for a known unit that is not per
    unit of electricity (gCO2/km), ``InvalidQuantity`` for a malformed value.
    """
    normalised = normalise(value, unit)
    if normalised.dimension is not Dimension.ELECTRICITY:
        raise IncompatibleUnit(
            f"{unit!r} is an emission factor per {normalised.dimension.canonical_unit[6:]},"
            " not per kWh of electricity",
            metadata={"unit": unit, "expected": Dimension.ELECTRICITY.canonical_unit},
        )
    return normalised.value


def format_fraction(value: Fraction) -> str:
    """Exact text: a decimal when the expansion terminates (``"0.42"``), else ``"p/q"``."""
    text = fraction_to_decimal(value)
    return text if text is not None else f"{value.numerator}/{value.denominator}"


def render_normalised(value: Fraction) -> str:
    """Exact decimal when it terminates, else rounded half-even to ``ROUNDED_PLACES`` places."""
    text = fraction_to_decimal(value)
    if text is not None:
        return text
    rounded = fraction_to_decimal(round(value, ROUNDED_PLACES))
    assert rounded is not None  # a multiple of 10^-6 always terminates
    whole, _, frac = rounded.partition(".")
    return f"{whole}.{frac.ljust(ROUNDED_PLACES, '0')}"
