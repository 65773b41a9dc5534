"""PostgreSQL pooled connections: checked before use only after sitting idle, and a dead one is
replaced rather than handed out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from gateway.storage import db as db_module
from gateway.storage.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Any]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def _backend_pid(engine: Any) -> int:
    with engine.begin() as conn:
        return int(conn.execute(text("select pg_backend_pid()")).scalar_one())


def _terminate(admin: Any, pid: int) -> None:
    with admin.begin() as conn:
        assert conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid}).scalar_one()


def _counting_pings(monkeypatch: pytest.MonkeyPatch, engine: Any) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", do_ping)
    return pings


def test_connection_used_a_moment_ago_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url, pool_size=1)
    pings = _counting_pings(monkeypatch, engine)
    try:
        first = _backend_pid(engine)
        for _ in range(5):
            assert _backend_pid(engine) == first
        assert pings == []
    finally:
        engine.dispose()


def test_dead_idle_connection_is_replaced_before_use(
    postgres_url: str, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as idle
    engine = make_engine(postgres_url, pool_size=1)
    pings = _counting_pings(monkeypatch, engine)
    try:
        dead = _backend_pid(engine)
        _terminate(admin, dead)
        alive = _backend_pid(engine)  # no error reaches the caller
        assert alive != dead
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_connection_dying_in_use_fails_once_and_the_pool_recovers(
    postgres_url: str, admin: Any
) -> None:
    engine = make_engine(postgres_url, pool_size=2)
    try:
        with engine.connect() as a, engine.connect() as b:
            pids = [int(c.execute(text("select pg_backend_pid()")).scalar_one()) for c in (a, b)]
            a.rollback()
            b.rollback()
        for pid in pids:
            _terminate(admin, pid)
        with pytest.raises(OperationalError) as failed:
            _backend_pid(engine)
        assert failed.value.connection_invalidated
        # The disconnect invalidated the whole pool: the other dead connection is not handed out.
        fresh = _backend_pid(engine)
        assert fresh not in pids
    finally:
        engine.dispose()
