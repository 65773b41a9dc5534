"""Multi-host PostgreSQL URLs (the primary and its standbys in one URL) and the health probe's
refusal of a read-only server."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.rpc.storage_health import StorageHealth
from gateway.storage.db import Database, ReadOnlyDatabase, is_transient, make_engine, multihost_url

LIBPQ_FORMS = [
    # SQLAlchemy's own forms pass through unchanged ...
    "postgresql+psycopg://u@/db?host=h1:5433&host=h2:5434&target_session_attrs=read-write",
    "postgresql+psycopg://u@/db?host=h1,h2&port=5433,5434&target_session_attrs=read-write",
    # ... and libpq's two spellings, which SQLAlchemy alone misreads, are rewritten.
    "postgresql+psycopg://u@/db?host=h1:5433,h2:5434&target_session_attrs=read-write",
    "postgresql+psycopg://u@h1:5433,h2:5434/db?target_session_attrs=read-write",
]


@pytest.mark.parametrize("url", LIBPQ_FORMS)
def test_every_multihost_spelling_reaches_psycopg_as_one_host_list(url: str) -> None:
    engine = create_engine(multihost_url(url))
    _, args = engine.dialect.create_connect_args(engine.url)
    assert (args["host"], args["port"]) == ("h1,h2", "5433,5434")
    assert (args["dbname"], args["user"], args["target_session_attrs"]) == ("db", "u", "read-write")


def test_single_host_urls_are_left_alone() -> None:
    for url in (
        "postgresql+psycopg://u:p%40ss@h:5432/db?options=-csearch_path%3Dx",
        "postgresql+psycopg://u@/db?host=/run/postgresql",
        "postgresql+psycopg://u:p,w@h:5432/db",  # a comma in the password is not a host list
        "sqlite:///var/yrdgw.sqlite3",
    ):
        assert multihost_url(url) == url


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["query", "libpq-uri"])
def test_a_dead_first_host_is_skipped_for_the_writable_one(postgres_url: str, form: str) -> None:
    real = make_url(postgres_url)
    dead = f"127.0.0.1:{_unused_port()}"
    live = f"{real.host}:{real.port or 5432}"
    user, database = real.username, real.database
    url = (
        f"postgresql+psycopg://{user}@/{database}?host={dead},{live}"
        "&target_session_attrs=read-write"
        if form == "query"
        else f"postgresql+psycopg://{user}@{dead},{live}/{database}?target_session_attrs=read-write"
    )
    db = Database.from_url(url)
    try:
        db.ping()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT inet_server_port()")).scalar() == (real.port or 5432)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_a_read_only_server_is_an_outage_for_the_health_probe(postgres_url: str) -> None:
    """A server that accepts no writes (a standby the URL reached, a demoted primary) answers
    ``SELECT 1`` but cannot serve the gateway: the probe fails, health goes NOT_SERVING."""
    db = Database(
        make_engine(postgres_url, connect_args={"options": "-cdefault_transaction_read_only=on"})
    )
    changes: list[bool] = []
    try:
        with pytest.raises(ReadOnlyDatabase) as info:
            db.ping()
        assert is_transient(info.value)
        assert db.engine.pool.checkedin() == 0  # type: ignore[attr-defined]  # its connections were retired
        probe = StorageHealth(db.ping, changes.append, interval_s=60, retry_s=60)
        assert probe.probe() is False
    finally:
        db.dispose()
    writable = Database.from_url(postgres_url)
    try:
        writable.ping()
    finally:
        writable.dispose()


@pytest.mark.postgres
def test_connections_notice_a_silent_server_within_seconds(postgres_url: str) -> None:
    """TCP keepalives and a user timeout are set on every connection unless the URL says
    otherwise (a server whose machine vanished sends no reset)."""
    db = Database.from_url(postgres_url)
    try:
        with db.engine.connect() as conn:
            params = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["keepalives_idle"] == "5" and params["tcp_user_timeout"] == "10000"
    finally:
        db.dispose()
    url = make_url(postgres_url).update_query_dict({"keepalives_idle": "30"})
    db = Database.from_url(url.render_as_string(hide_password=False))
    try:
        with db.engine.connect() as conn:
            params = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["keepalives_idle"] == "30"
    finally:
        db.dispose()
