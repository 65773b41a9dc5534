"""A digest of a whole database: every table's rows, sorted (so physical order and the backend's
row order do not matter), hashed per table. Two digests are equal exactly when no row of any
table was added, removed or changed; a refused request must leave it as it was."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import inspect, text

from gateway.storage.db import Database

BACKGROUND_TABLES = frozenset({"apscheduler_jobs", "job_runs", "subscriber_positions"})
"""Tables that are bookkeeping, not state: the scheduled jobs' own (written on their clock) and
where each registry last read the feed (a read that is answered records how far it got, for the
federation status; a refused read records nothing)."""

TableDigests = dict[str, tuple[int, str]]
"""Per table: its row count and the SHA-256 (hex) of its sorted rows."""


def table_digests(db: Database, exclude: Iterable[str] = BACKGROUND_TABLES) -> TableDigests:
    """Every table's row count and a digest of its rows (sorted), tables in ``exclude`` left
    out."""
    names = sorted(set(inspect(db.engine).get_table_names()) - set(exclude))
    tables: TableDigests = {}
    with db.transaction() as session:
        for name in names:
            rows = sorted(
                repr(tuple(row)) for row in session.execute(text(f'SELECT * FROM "{name}"'))
            )
            tables[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return tables


def changed(before: TableDigests, after: TableDigests) -> list[str]:
    """The tables whose rows differ between two digests."""
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
