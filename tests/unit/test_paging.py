"""Paging helpers shared by the List RPCs."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidArgument
from gateway.services import page_limit, page_of


@pytest.mark.parametrize(
    ("rows", "limit", "page", "last"),
    [
        ([], 3, [], None),
        ([1, 2], 3, [1, 2], None),
        ([1, 2, 3], 3, [1, 2, 3], None),  # exactly a page: nothing follows
        ([1, 2, 3, 4], 3, [1, 2, 3], 3),  # one more was read: the page ends at 3
    ],
)
def test_page_of_says_whether_more_follow(
    rows: list[int], limit: int, page: list[int], last: int | None
) -> None:
    assert page_of(rows, limit) == (page, last)


def test_page_limit_defaults_and_bounds() -> None:
    assert page_limit(0) == 100
    assert page_limit(7) == 7
    with pytest.raises(InvalidArgument):
        page_limit(1001)
    with pytest.raises(InvalidArgument):
        page_limit(-1)
