"""The database: engine set-up per backend, the unit of work, and migrations.

The transaction boundary is the service layer's: ``with db.transaction() as session:`` commits on
success and rolls back on any exception. Repositories never commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN (pysqlite's implicit transactions are unsafe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock at BEGIN: SQLite has one writer, and a read-then-write transaction
        # that upgrades its lock later can deadlock instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL with the settings the gateway relies on."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("gateway.storage") / "migrations"))
    if engine is not None:
        # ConfigParser interpolates '%': escape it (percent-encoded passwords, ?options=...%3D...).
        url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class Database:
    """One gateway database: engine, sessions, unit of work and schema migrations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer and every transaction begins IMMEDIATE; waiting threads would
        # otherwise poll busy_timeout, which serves them unfairly (seconds of tail latency).
        self._turn: threading.Lock | None = (
            threading.Lock() if engine.dialect.name == "sqlite" else None
        )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        if self._turn is None:
            with self._sessions.begin() as session:
                yield session
            return
        with self._turn, self._sessions.begin() as session:
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to revision with Alembic."""
        cfg = alembic_config(self.engine)
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None before any migration)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision the packaged migrations know."""
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def dispose(self) -> None:
        self.engine.dispose()
