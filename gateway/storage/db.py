"""The database: engine set-up per backend, the unit of work, and migrations.

The transaction boundary is the service layer's: ``with db.transaction() as session:`` commits on
success and rolls back on any exception. Repositories never commit.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

log = structlog.get_logger("yrdgw.db")

CHECKPOINT_AFTER_COMMITS = 200
"""A file SQLite database's log is checkpointed in the background after this many commits..."""
CHECKPOINT_INTERVAL_S = 1.0
"""...or this long after the last checkpoint, once the background checkpointer runs."""
PING_AFTER_IDLE_S = 5.0
"""A pooled PostgreSQL connection idle this long is checked before use (see ``_ping_when_idle``).
"""
AUTOCHECKPOINT_PAGES = 10_000
"""SQLite's own checkpoint-on-commit threshold (its default is 1000 pages): kept, much higher, only
as a bound on the log should the background checkpointer fall behind."""


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
        # FULL: the log is synced at every commit, so an answer the gateway has given survives
        # a power cut or an OS crash, not only a crash of the process (NORMAL, SQLite's usual
        # choice with WAL, can lose the last commits then). Group commit shares the sync.
        cursor.execute("PRAGMA synchronous=FULL")
        if not in_memory:
            cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock at BEGIN: SQLite has one writer, and a read-then-write transaction
        # that upgrades its lock later can deadlock instead of waiting. Straight on the driver:
        # this runs for every transaction, and exec_driver_sql costs ~50 µs more for nothing.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL with the settings the gateway relies on (a
    PostgreSQL URL may name several hosts: see ``multihost_url``)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    url = multihost_url(url)
    parsed = make_url(url)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    for name, value in TCP_LIVENESS.items():
        if name not in parsed.query:
            connect_args.setdefault(name, value)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    _ping_when_idle(engine, PING_AFTER_IDLE_S)
    _retire_connections_to_a_standby(engine)
    return engine


_URI_HOSTS = re.compile(
    r"^(?P<scheme>[\w+]+://)(?P<user>[^@/?]*@)?(?P<hosts>[^/?@]*,[^/?@]*)(?=[/?]|$)"
)


def multihost_url(url: str) -> str:
    """A PostgreSQL URL naming several servers, in the form SQLAlchemy's psycopg dialect reads
    (``?host=h1:p1&host=h2:p2``); the libpq forms are rewritten to it.

    psycopg (like libpq) tries the hosts in order and, with ``target_session_attrs=read-write``,
    keeps the first that accepts writes, so a list of the primary and its standbys reaches
    whichever is primary now. Accepted: ``postgresql+psycopg://u@/db?host=h1:p1&host=h2:p2``
    (SQLAlchemy's), ``...?host=h1,h2&port=p1,p2`` (also SQLAlchemy's), and the two libpq
    spellings SQLAlchemy misreads: ``...?host=h1:p1,h2:p2`` and ``postgresql://u@h1:p1,h2:p2/db``.
    Any other URL is returned as it is.
    """
    if match := _URI_HOSTS.match(url):
        hosts = match["hosts"].split(",")
        rest = url[match.end() :]
        path, _, query = rest.partition("?")
        url = f"{match['scheme']}{match['user'] or ''}{path or '/'}"
        query = "&".join([*(f"host={h}" for h in hosts), *([query] if query else [])])
        return f"{url}?{query}"
    parsed = make_url(url)
    host = parsed.query.get("host")
    if isinstance(host, str) and "," in host and ":" in host and "port" not in parsed.query:
        rebuilt = parsed.difference_update_query(["host"]).update_query_pairs(
            [("host", h) for h in host.split(",")], append=True
        )
        return rebuilt.render_as_string(hide_password=False)
    return url


CONNECT_TIMEOUT_S = 5
"""How long a new PostgreSQL connection may take to be established (libpq's ``connect_timeout``,
unless the URL names one): a database host that does not answer is an outage after this long, not
a call that hangs."""

TCP_LIVENESS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq settings (unless the URL names them) that notice a database server gone without a word
— its machine down or cut off, so no reset ever arrives — within ~10 s rather than the kernel's
defaults (two hours of silence before a keepalive; ~15 minutes of retransmissions): a call waiting
on it then fails as an outage and its pool is retired, and a multi-host URL moves on to the new
primary."""

_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
"""PostgreSQL error classes worth a retry: connection exception, transaction rollback
(serialization failure, deadlock), insufficient resources, operator intervention (shutdown)."""

READ_ONLY_SQLSTATE = "25006"
"""read_only_sql_transaction: a write reached a server that is (now) a standby — after a
failover, a connection still open to the former primary. Transient: its connection is retired
(see ``_retire_connections_to_a_standby``) and the next one reaches the new primary."""


class ReadOnlyDatabase(Exception):
    """The database server answered, but accepts no writes (SQLSTATE 25006's condition)."""


def is_transient(exc: BaseException) -> bool:
    """Whether a database error says "not now" rather than "never": the database could not be
    reached (connection refused, timed out, dropped), is busy, shutting down or read-only after a
    failover, no connection was free in time, or the transaction lost a deadlock or
    serialization race. The same request may succeed when sent again."""
    if isinstance(exc, SQLAlchemyTimeoutError | ReadOnlyDatabase):
        return True  # no pooled connection became free in time; a standby answered
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate == READ_ONLY_SQLSTATE
    if isinstance(orig, sqlite3.Error):
        # SQLITE_BUSY / SQLITE_LOCKED: another connection held the lock past the busy timeout.
        code = getattr(orig, "sqlite_errorcode", None)
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    # A server database's OperationalError without a SQLSTATE comes from the client side of the
    # connection: refused, timed out, unresolvable host, lost (the server sent no error).
    return isinstance(exc, OperationalError)


def _retire_connections_to_a_standby(engine: Engine) -> None:
    """Treat a read-only refusal (25006) and a client-side connection failure as a disconnect,
    so SQLAlchemy retires the connection and the pool (the server they reach is a standby now,
    or gone) and the next transaction starts on fresh connections."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        orig = context.original_exception
        sqlstate = getattr(orig, "sqlstate", None)
        standby = sqlstate == READ_ONLY_SQLSTATE
        unreachable = sqlstate is None and isinstance(
            context.sqlalchemy_exception, OperationalError
        )
        if standby or unreachable:
            context.is_disconnect = True


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before it is handed out if it sat idle for ``idle_s`` or more;
    a dead one is replaced (the pool retries with a fresh connection).

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: on a busy gateway that is a round
    trip more per transaction for connections used a moment ago. A connection that dies while
    in use (the server restarted) fails its statement as a disconnect, which invalidates the
    whole pool, so the next transactions start on fresh connections.
    """
    pool = engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise DisconnectionError("connection found dead when taken from the pool")


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("gateway.storage") / "migrations"))
    if engine is not None:
        # ConfigParser interpolates '%': escape it (percent-encoded passwords, ?options=...%3D...).
        url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class _Checkpointer:
    """Checkpoints a SQLite database's write-ahead log in a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, which then
    waits for the log to be copied into the database and for two fsyncs: tens of milliseconds on
    a busy disk, every few hundred commits — the write path's tail latency. A PASSIVE checkpoint
    from another connection does the same work without blocking readers or writers, so no request
    waits for it. The thread starts with the first batch of commits (short-lived databases never
    start one) and stops with ``Database.dispose``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._commits = 0
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """One more commit (counted loosely: a lost increment only delays a checkpoint)."""
        self._commits += 1
        if self._commits < CHECKPOINT_AFTER_COMMITS:
            return
        self._commits = 0
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopped:
                    self._thread = threading.Thread(
                        target=self._run, name="yrdgw-sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("sqlite.checkpointer_unavailable", error=str(exc))
            return
        try:
            while not self._stopped:
                self._wake.wait(CHECKPOINT_INTERVAL_S)
                self._wake.clear()
                if self._stopped:
                    break
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. the file went away; SQLite's own bound stays
                    log.debug("sqlite.checkpoint_failed", error=str(exc))
        finally:
            conn.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)


class UnitOfWork:
    """A transaction in progress: its Core connection, and an ORM session joined to the same
    transaction, made on first use (the ledger's hot paths run Core statements only, and a
    session costs more than the rest of a small transaction)."""

    def __init__(self, conn: Connection, session: Session | None = None) -> None:
        self.conn = conn
        self._session = session
        self._owned = session is None
        self.memo: dict[str, Any] = {}
        """What the transaction has read and may reuse (forgotten on a partial rollback)."""

    @classmethod
    def of(cls, session: Session) -> UnitOfWork:
        """The unit of work of a session's transaction."""
        return cls(session.connection(), session)

    @property
    def session(self) -> Session:
        """An ORM session in this transaction (it neither commits nor rolls it back)."""
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    def rolled_back(self) -> None:
        """Part of the transaction was rolled back (to a savepoint): what the session loaded may
        no longer be so."""
        self.memo.clear()
        if self._session is not None:
            self._session.expire_all()

    def close(self) -> None:
        if self._owned and self._session is not None:
            self._session.close()
            self._session = None


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
        database = engine.url.database or ""
        self._checkpointer = (
            _Checkpointer(database)
            if engine.dialect.name == "sqlite" and database not in ("", ":memory:")
            else None
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
        if self._checkpointer is not None:
            self._checkpointer.committed()

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """``transaction()`` on a Core connection, with an ORM session only if asked for: commits
        when the block ends, rolls back on any exception; the same write turn on SQLite."""
        turn = self._turn if self._turn is not None else nullcontext()
        with turn, self.engine.begin() as conn:
            unit = UnitOfWork(conn)
            try:
                yield unit
            finally:
                unit.close()
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def ping(self) -> None:
        """One round trip to the database on a pooled connection (the health probe); raises what
        reaching the database raised (``is_transient`` says whether it is an outage), and
        ``ReadOnlyDatabase`` when the server reached accepts no writes (a standby, or a former
        primary after a failover: the gateway cannot serve from it). An embedded SQLite file is
        always reachable: nothing is done (every SQLite transaction would take the write lock)."""
        if self._turn is not None:
            return
        with self.engine.connect() as conn:
            read_only = conn.exec_driver_sql("SHOW transaction_read_only").scalar()
        if read_only == "on":
            # Its pool holds connections to a server that cannot serve: retire them all, so the
            # next transaction looks for the writable server again.
            self.engine.pool.dispose()
            raise ReadOnlyDatabase("the database server accepts no writes (a standby?)")

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
