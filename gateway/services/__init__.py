"""Domain services: each public method is one unit of work (one database transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TypeVar

Clock = Callable[[], dt.datetime]
T = TypeVar("T")


def utc_now() -> dt.datetime:
    """The current time, UTC-aware."""
    return dt.datetime.now(dt.UTC)


DEFAULT_PAGE_SIZE = 100
"""Items a List RPC returns for page_size 0, unless the RPC says otherwise."""
MAX_PAGE_SIZE = 1000
"""Largest page_size of a List RPC, unless the RPC says otherwise."""


def page_limit(
    page_size: int, *, maximum: int = MAX_PAGE_SIZE, default: int = DEFAULT_PAGE_SIZE
) -> int:
    """The number of items a List RPC returns for a requested page_size (0: the default)."""
    from gateway.errors import InvalidArgument

    if not 0 <= page_size <= maximum:
        raise InvalidArgument(
            f"page_size must be 0..{maximum}", field_errors={"page_size": "out of range"}
        )
    return page_size or default


def page_of(rows: Sequence[T], limit: int) -> tuple[list[T], T | None]:
    """A page from up to ``limit + 1`` rows read (one more than a page, to know whether more
    follow): the page, and its last row when more follow (None at the end)."""
    page = list(rows[:limit])
    return page, (page[-1] if len(rows) > limit else None)
