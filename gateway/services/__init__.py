"""Domain services: each public method is one unit of work (one database transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time, UTC-aware."""
    return dt.datetime.now(dt.UTC)
