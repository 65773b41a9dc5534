"""ETS offset policy: how much of a compliance entity's obligation carbon-inclusive units may
offset in one ETS region."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

__all__ = ["EtsOffsetPolicy"]


@dataclass(frozen=True, slots=True)
class EtsOffsetPolicy:
    """An ETS region's offset caps. Construction checks the bounds (``ValueError``).

    The gateway's settings load these from TOML; pydantic validates the field types, calls this
    constructor, and reports an unknown key as an error (``__pydantic_config__``), so a typo never
    silently loosens a cap.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    max_share: Decimal
    """Cap on offsets as a share of the entity's declared obligation for the year (all its
    offsets of that year counted), e.g. 0.05 for Shanghai; in (0, 1]."""

    max_outside_share: Decimal | None = None
    """Cap on offsets from units issued outside the ETS region, as a share of the obligation
    (Beijing's rule: 0.025), in (0, 1]; None for no separate cap."""

    vintage_window_years: int | None = None
    """Units' vintage must be within this many years (>= 0) before the compliance year; None:
    any."""

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], not {self.max_share}")
        if self.max_outside_share is not None and not 0 < self.max_outside_share <= 1:
            raise ValueError(f"max_outside_share must be in (0, 1], not {self.max_outside_share}")
        if self.vintage_window_years is not None and self.vintage_window_years < 0:
            raise ValueError(f"vintage_window_years must be >= 0, not {self.vintage_window_years}")
