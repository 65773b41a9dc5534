"""Which database errors are "not now" (the request may be sent again) and which are "never"."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from gateway.storage.db import Database, is_transient, make_engine


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


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_postgres_refused_and_timed_out_connections_are_transient(postgres_url: str) -> None:
    """The database cannot be reached at all: nothing listens (refused), or something listens
    and never answers (the connect timeout expires). Both are outages, not bugs."""
    url = make_url(postgres_url)
    refused = make_engine(url.set(port=_unused_port()).render_as_string(hide_password=False))
    try:
        error = _error(refused.connect)
    finally:
        refused.dispose()
    assert isinstance(error, OperationalError) and is_transient(error), error

    with socket.socket() as silent:  # accepts TCP connections (backlog), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hung_url = url.set(port=silent.getsockname()[1]).update_query_dict({"connect_timeout": "2"})
        hung = make_engine(hung_url.render_as_string(hide_password=False))
        try:
            timed_out = _error(hung.connect)
        finally:
            hung.dispose()
    assert isinstance(timed_out, OperationalError) and is_transient(timed_out), timed_out


@pytest.mark.postgres
def test_postgres_read_only_after_failover_is_transient_and_retires_the_connection(
    postgres_url: str,
) -> None:
    """A write reaching a server that is read-only (a standby after a failover, here a session
    made read-only) is "not now", and its connection is retired, not handed out again."""
    engine = make_engine(
        postgres_url, connect_args={"options": "-cdefault_transaction_read_only=on"}
    )
    try:
        with engine.connect() as conn:
            error = _error(lambda: conn.exec_driver_sql("CREATE TEMP TABLE t (id INT)"))
        assert getattr(error.orig, "sqlstate", None) == "25006"
        assert is_transient(error) and error.connection_invalidated
    finally:
        engine.dispose()


def test_no_free_pooled_connection_in_time_is_transient() -> None:
    assert is_transient(SQLAlchemyTimeoutError("QueuePool limit reached"))
