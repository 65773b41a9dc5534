"""The embedded default's connection settings, as every pooled connection gets them."""

from __future__ import annotations

from gateway.storage.db import Database

EXPECTED = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: the log is synced at each commit, so an answer survives a power cut
    "foreign_keys": 1,
    "busy_timeout": 30000,
}


def test_every_connection_is_wal_fully_synced_with_foreign_keys(
    sqlite_database: Database,
) -> None:
    # Two pooled connections at once (driver level: no transaction, so no write lock taken): the
    # settings come from the pool's connect hook, not from one session.
    connections = [sqlite_database.engine.raw_connection() for _ in range(2)]
    try:
        for conn in connections:
            cursor = conn.cursor()
            found = {}
            for name in EXPECTED:
                cursor.execute(f"PRAGMA {name}")
                found[name] = cursor.fetchone()[0]
            cursor.close()
            assert found == EXPECTED
    finally:
        for conn in connections:
            conn.close()
