"""ETS offset credit: retired grams × the recognition's adjustment ratio, rounded down."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mutual_recognition.errors import InvalidQuantity, InvalidRatio

__all__ = ["OffsetCredit", "ets_offset_credit"]


@dataclass(frozen=True, slots=True)
class OffsetCredit:
    """What a retirement as an ETS offset credits, with the rounding made explicit.

    With ``ratio = p/q``: ``credited_grams = floor(retired_grams × p / q)`` and
    ``remainder = retired_grams × p − credited_grams × q`` (0 ≤ remainder < q), so the exact
    product is ``credited_grams + remainder/q`` grams. Without a ratio everything is credited.
    """

    credited_grams: int
    retired_grams: int
    ratio: Fraction | None
    remainder: int

    @property
    def dropped(self) -> Fraction:
        """The fraction of a gram lost by rounding down (0 ≤ dropped < 1)."""
        return Fraction(self.remainder, 1 if self.ratio is None else self.ratio.denominator)


def ets_offset_credit(retired_grams: int, ratio: Fraction | None) -> OffsetCredit:
    """Offset credited for ``retired_grams`` under ``ratio`` (None: no adjustment), rounded down.

    Integer arithmetic only. Raises ``InvalidQuantity`` when ``retired_grams`` is not a
    non-negative int and ``InvalidRatio`` when ``ratio`` is not a Fraction in (0, 1].
    """
    if type(retired_grams) is not int or retired_grams < 0:
        raise InvalidQuantity(
            f"retired quantity {retired_grams!r} must be a whole, non-negative number of grams",
            metadata={"field": "retired_grams"},
        )
    if ratio is None:
        return OffsetCredit(retired_grams, retired_grams, None, 0)
    if not isinstance(ratio, Fraction) or not 0 < ratio <= 1:
        raise InvalidRatio(
            f"adjustment ratio {ratio!r} must be an exact Fraction in (0, 1]",
            metadata={"field": "ratio"},
        )
    credited, remainder = divmod(retired_grams * ratio.numerator, ratio.denominator)
    return OffsetCredit(credited, retired_grams, ratio, remainder)
