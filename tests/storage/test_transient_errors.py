"""Which database errors are "not now" (the request may be sent again) and which are "never"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from gateway.storage.db import Database, is_transient


def _error(run: object) -> DBAPIError:
    with pytest.raises(DBAPIError) as info:
        run()  # type: ignore[operator]
    return info.value


def test_sqlite_busy_is_transient_and_a_missing_table_is_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    holder = create_engine(url, connect_args={"timeout": 0})
    impatient = create_engine(url, connect_args={"timeout": 0})
    try:
        with holder.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
            conn.commit()
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # holds the write lock
            with impatient.connect() as other:
                busy = _error(lambda: other.exec_driver_sql("BEGIN IMMEDIATE"))
            conn.exec_driver_sql("ROLLBACK")
        assert isinstance(busy, OperationalError) and is_transient(busy)
        with impatient.connect() as conn:
            missing = _error(lambda: conn.exec_driver_sql("SELECT * FROM nowhere"))
        assert isinstance(missing, OperationalError) and not is_transient(missing)
    finally:
        holder.dispose()
        impatient.dispose()


@pytest.mark.postgres
def test_postgres_lost_connection_and_deadlock_are_transient(
    postgres_database: Database, postgres_url: str
) -> None:
    engine = postgres_database.engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE pair (id INT PRIMARY KEY, v INT)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))

    # A unique violation is the request's own fault: never transient.
    def duplicate() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO pair VALUES (1, 0)"))

    unique = _error(duplicate)
    assert isinstance(unique, IntegrityError) and not is_transient(unique)

    # Two transactions locking the rows in opposite orders: PostgreSQL aborts one (40P01).
    ready = threading.Barrier(2)
    failures: list[BaseException] = []

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": first})
                ready.wait(timeout=10)
                conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": second})
        except DBAPIError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=lock, args=order) for order in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    (deadlock,) = failures
    assert isinstance(deadlock, DBAPIError) and is_transient(deadlock)

    # The server cuts the connection off mid-transaction.
    admin = create_engine(postgres_url)
    try:

        def cut_off() -> None:
            with engine.connect() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                with admin.begin() as a:
                    a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                conn.execute(text("SELECT 1"))

        lost = _error(cut_off)
        assert lost.connection_invalidated and is_transient(lost)
    finally:
        admin.dispose()
