"""Exact quantities: decimal strings ↔ grams, serial ranges, capacities.

Everything here is integer or ``fractions.Fraction`` arithmetic on validated decimal strings: no
float ever, and no ``decimal`` context rounding. A value that does not map exactly raises
``ValueError`` (``InexactQuantityError`` when the value is well formed but not a whole number of the
target unit) whose message is the reason shown to the user.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from fractions import Fraction

from yrd.interop.v1 import records_pb2

__all__ = [
    "CAPACITY_UNIT_WATTS",
    "GRAMS_PER_KG",
    "GRAMS_PER_TONNE",
    "INT64_MAX",
    "InexactQuantityError",
    "capacity_in_unit",
    "capacity_watts",
    "capacity_within",
    "check_decimal",
    "decimal_checker",
    "decimal_to_grams",
    "fraction_to_decimal",
    "gram_serials_to_native",
    "grams_parser",
    "grams_to_decimal",
    "is_plain_decimal",
    "native_serials_to_grams",
]

INT64_MAX = 2**63 - 1
GRAMS_PER_KG = 1_000
GRAMS_PER_TONNE = 1_000_000

# ASCII digits only: ``\d`` would also accept full-width and other Unicode digits.
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_UNSIGNED_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)

#: Capacity units the common schema understands, with their size in watts.
CAPACITY_UNIT_WATTS: dict[str, int] = {
    "W": 1,
    "瓦": 1,
    "kW": 1_000,
    "千瓦": 1_000,
    "MW": 1_000_000,
    "兆瓦": 1_000_000,
    "GW": 1_000_000_000,
}


class InexactQuantityError(ValueError):
    """The value is a well-formed decimal that does not map exactly to the target unit."""


def is_plain_decimal(text: str, *, allow_negative: bool = False) -> bool:
    """True when ``text`` is ``[-]digits[.digits]`` in ASCII (no exponent, sign only if allowed)."""
    match = _DECIMAL.fullmatch(text)
    return match is not None and (allow_negative or not match.group(1))


def check_decimal(text: str, *, allow_negative: bool = False, positive: bool = False) -> str:
    """Return ``text`` unchanged if it is a plain decimal string, else raise ``ValueError``."""
    return _DECIMAL_CHECKERS[allow_negative, positive](text)


def decimal_checker(*, allow_negative: bool, positive: bool) -> Callable[[str], str]:
    """``check_decimal`` with its options fixed (built once)."""
    return _DECIMAL_CHECKERS[allow_negative, positive]


def _decimal_checker(allow_negative: bool, positive: bool) -> Callable[[str], str]:
    # One regular expression: the sign is in it only when allowed.
    shape = "[-]123.45" if allow_negative else "123.45"
    fullmatch = (_DECIMAL if allow_negative else _UNSIGNED_DECIMAL).fullmatch

    def check(text: str) -> str:
        if fullmatch(text) is None:
            raise ValueError(f"{text!r} is not a decimal number written like {shape}")
        # A plain decimal is zero when nothing but '-', '0' and '.' remains to strip.
        if positive and not text.strip("-0."):
            raise ValueError(f"{text!r} must be greater than zero")
        return text

    return check


_DECIMAL_CHECKERS = {
    (negative, positive): _decimal_checker(negative, positive)
    for negative in (False, True)
    for positive in (False, True)
}


def _scale_of(unit_grams: int) -> int:
    scale = len(str(unit_grams)) - 1
    if unit_grams <= 0 or 10**scale != unit_grams:
        raise ValueError(f"unit size {unit_grams} g is not a power of ten")
    return scale


def decimal_to_grams(text: str, unit_grams: int, unit_label: str) -> int:
    """Convert a non-negative decimal string in a unit of ``unit_grams`` grams to whole grams.

    ``decimal_to_grams("392.700", 1_000_000, "t") == 392_700_000``. More decimals than the unit
    allows is an error even when they are zeros (the formats say "≤ 6 decimals" for tonnes); a value
    that is not a whole number of grams raises ``InexactQuantityError``; nothing is rounded.
    """
    return grams_parser(unit_grams, unit_label)(text)


@functools.cache  # a few units per format, each asked for per record
def grams_parser(unit_grams: int, unit_label: str) -> Callable[[str], int]:
    """``decimal_to_grams`` for one unit, with the unit's scale worked out once."""
    scale = _scale_of(unit_grams)

    def parse(text: str) -> int:
        match = _DECIMAL.fullmatch(text)
        sign, whole, frac = ("-", "", "") if match is None else match.groups("")
        if sign:
            raise ValueError(f"{text!r} is not a non-negative decimal number written like 123.45")
        if len(whole) > 19:
            raise ValueError(f"{text} {unit_label} is too large")
        if len(frac) > scale:
            if frac[scale:].strip("0"):
                raise InexactQuantityError(
                    f"{text} {unit_label} is not a whole number of grams"
                    f" (at most {scale} decimal places in {unit_label})"
                )
            raise ValueError(
                f"{text} {unit_label} has {len(frac)} decimal places;"
                f" {unit_label} allows at most {scale}"
            )
        grams = int(whole) * unit_grams + (int(frac.ljust(scale, "0")) if scale else 0)
        if grams > INT64_MAX:
            raise ValueError(f"{text} {unit_label} is too large (more than 2^63-1 g)")
        return grams

    return parse


def grams_to_decimal(grams: int, unit_grams: int, *, min_decimals: int = 0) -> str:
    """Render whole grams exactly in a unit of ``unit_grams`` grams.

    Trailing zeros of the fraction are dropped down to ``min_decimals`` (so kilograms can be shown
    with exactly 3 decimals: ``grams_to_decimal(392_700_000, 1_000_000, min_decimals=3)`` is
    ``"392.700"``).
    """
    scale = _scale_of(unit_grams)
    if grams < 0:
        raise ValueError("a quantity cannot be negative")
    whole, rest = divmod(grams, unit_grams)
    if scale == 0:
        return str(whole)
    frac = str(rest).rjust(scale, "0").rstrip("0")
    frac = frac.ljust(min(min_decimals, scale), "0")
    return f"{whole}.{frac}" if frac else str(whole)


def native_serials_to_grams(start: int, end: int, unit_grams: int) -> tuple[int, int]:
    """Map an inclusive native serial range [s, e] in units of k grams to [s·k, (e+1)·k − 1]."""
    if start < 0:
        raise ValueError("serial numbers cannot be negative")
    if end < start:
        raise ValueError(f"serial range ends ({end}) before it starts ({start})")
    gram_end = (end + 1) * unit_grams - 1
    if gram_end > INT64_MAX:
        raise ValueError(f"serial {end} is too large for the common gram serial space (2^63-1)")
    return start * unit_grams, gram_end


def gram_serials_to_native(start: int, end: int, unit_grams: int) -> tuple[int, int]:
    """Inverse of ``native_serials_to_grams``; raises ``InexactQuantityError`` if not aligned."""
    if start < 0 or end < start:
        raise ValueError(f"[{start}, {end}] is not a valid serial range")
    if start % unit_grams or (end + 1) % unit_grams:
        raise InexactQuantityError(
            f"gram serial range [{start}, {end}] does not cover whole native units of"
            f" {unit_grams} g (needs start and end + 1 divisible by {unit_grams})"
        )
    return start // unit_grams, (end + 1) // unit_grams - 1


def fraction_to_decimal(value: Fraction) -> str | None:
    """Exact plain decimal string of ``value``, or None when its expansion does not terminate."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return None
    scale = max(twos, fives)
    scaled = value * 10**scale
    assert scaled.denominator == 1
    digits = str(scaled.numerator)
    if scale == 0:
        return sign + digits
    digits = digits.rjust(scale + 1, "0")
    whole, frac = digits[:-scale], digits[-scale:].rstrip("0")
    return sign + (f"{whole}.{frac}" if frac else whole)


def capacity_watts(quantity: records_pb2.ExactQuantity) -> Fraction:
    """The exact capacity in watts of a common ``ExactQuantity`` in W, kW or MW (or GW).

    Returns a ``Fraction`` (an ``int`` value when whole) so that comparisons such as "project
    capacity ≤ the methodology's max capacity" are exact across units: 0.85 MW = 850 kW.
    Raises ``ValueError`` for a malformed value or an unknown unit.
    """
    factor = CAPACITY_UNIT_WATTS.get(quantity.unit)
    if factor is None:
        known = ", ".join(CAPACITY_UNIT_WATTS)
        raise ValueError(f"unknown capacity unit {quantity.unit!r} (known: {known})")
    check_decimal(quantity.value)
    return Fraction(quantity.value) * factor


def capacity_in_unit(quantity: records_pb2.ExactQuantity, unit: str) -> str:
    """The capacity rendered exactly in ``unit``; keeps the value string when the unit matches."""
    if quantity.unit == unit:
        return check_decimal(quantity.value)
    if unit not in CAPACITY_UNIT_WATTS:
        raise ValueError(f"unknown capacity unit {unit!r}")
    text = fraction_to_decimal(capacity_watts(quantity) / CAPACITY_UNIT_WATTS[unit])
    assert text is not None  # units are powers of ten, so the expansion terminates
    return text


def capacity_within(
    capacity: records_pb2.ExactQuantity, maximum: records_pb2.ExactQuantity
) -> bool:
    """True when ``capacity`` ≤ ``maximum``, compared exactly in watts."""
    return capacity_watts(capacity) <= capacity_watts(maximum)
