"""The bulk insert of blocks on each backend: rows given as tuples and as columns (shared values,
int64 arrays, lists, a state per row) are stored as the same rows; on PostgreSQL through a binary
COPY laid out a column at a time, on SQLite through executemany."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage.bulk import BulkInsert, Columns, RowSpool
from gateway.storage.db import Database
from gateway.storage.models import UnitBlockRow
from gateway.storage.reconciliation_store import BLOCK_COLUMNS, block_table

TOP = 2**63 - 1


def test_rows_and_columns_are_stored_as_the_rows_they_mean(database: Database) -> None:
    table = block_table("bulk_blocks")
    bulk = BulkInsert(table, BLOCK_COLUMNS, binary=True)
    states = ["active", "retired", "active", "held", "retired"]
    pieces: list[Any] = [
        [("310000", 0, 0, "active"), ("320000", TOP, TOP, "held")],
        Columns(3, ("330000", array("q", [1, 5, 9]), array("q", [4, 8, TOP]), "active")),
        Columns(5, ("340000", array("q", range(5)), [10, 11, 12, 13, 14], states)),
        Columns(0, ("310000", array("q"), array("q"), "active")),
        Columns(2, ("310000", [7, 8], [7, 9], ["retired", "retired"])),
    ]
    expected = Counter(row for piece in pieces for row in piece)
    assert sum(expected.values()) == 12
    with database.engine.connect() as conn, conn.begin():
        table.create(conn)
        bulk.run_pieces(conn, iter(pieces))
        stored = Counter(tuple(r) for r in conn.execute(select(table)))
    assert stored == expected


def test_a_spooled_stream_is_stored_whole(database: Database) -> None:
    """Through the spool's file and back: every row, whatever the form it was appended in."""
    table = block_table("bulk_spooled")
    bulk = BulkInsert(table, BLOCK_COLUMNS, binary=True)
    expected: Counter[tuple[Any, ...]] = Counter()
    with RowSpool(chunk=500, in_memory=4096) as spool:
        for k in range(20):
            starts = array("q", range(k * 1000, k * 1000 + 300, 3))
            ends = array("q", (s + 1 for s in starts))
            state: str | list[str] = (
                "active" if k % 2 else ["retired" if s % 7 else "held" for s in starts]
            )
            spool.extend_columns(len(starts), "310000", starts, ends, state)
            expected.update(Columns(len(starts), ("310000", starts, ends, state)))
            rows = [("320000", k, k, "active")]
            spool.extend(rows)
            expected.update(rows)
        with database.engine.connect() as conn, conn.begin():
            table.create(conn)
            bulk.run_pieces(conn, spool.chunks())
            stored = Counter(tuple(r) for r in conn.execute(select(table)))
    assert stored == expected


def test_a_binary_copy_takes_only_text_and_64_bit_integers() -> None:
    with pytest.raises(TypeError, match="text and 64-bit integer"):
        BulkInsert(UnitBlockRow, ("origin_region", "vintage", "created_at"), binary=True)
