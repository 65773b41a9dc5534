"""Commands that run on the gateway's host get their configuration, database and services here.

These commands never create or migrate a database (only ``yrdgw db upgrade`` and ``yrdgw serve``
do): a SQLite file that does not exist, or a database without the project's schema, is refused;
the ones that only read open it read-only.

The server side (configuration, SQLAlchemy, the services) is imported only when such a command
runs, so that ``yrdgw --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.errors import CONTEXT, ExitCode, UserError, mask

if TYPE_CHECKING:
    from gateway.assembly import Services
    from gateway.config import GatewaySettings
    from gateway.storage.db import Database


def settings(config: Path | None, database_url: str | None = None) -> GatewaySettings:
    """The configuration of CONFIG (and the environment), with DATABASE_URL when given."""
    return settings_with(config, {"database_url": database_url} if database_url else {})


def settings_with(config: Path | None, overrides: Mapping[str, object]) -> GatewaySettings:
    """The configuration of CONFIG (and the environment), with OVERRIDES; a missing file, a
    TOML error or an invalid setting is reported with the file (or variable) it is in."""
    import os

    from gateway.config import load_settings

    path = config or (Path(os.environ["YRDGW_CONFIG"]) if os.environ.get("YRDGW_CONFIG") else None)
    if path is not None:
        CONTEXT["config"] = str(path)
        if not path.is_file():
            raise UserError(
                f"no configuration file {path}",
                "pass --config FILE or set YRDGW_CONFIG (an annotated example: "
                "docs/gateway.example.toml)",
            )
    if overrides.get("database_url"):
        CONTEXT["database"] = str(overrides["database_url"])
    loaded = load_settings(path, **overrides)
    CONTEXT["database"] = loaded.database_url
    check_url(loaded.database_url)
    return loaded


def quiet_settings(config: Path | None, database_url: str | None) -> GatewaySettings:
    """``settings``, with logging configured to show warnings and errors only."""
    from gateway.logs import configure_logging

    loaded = settings(config, database_url)
    configure_logging(loaded.log_format, "warning")
    return loaded


def check_url(url: str) -> None:
    """Refuse, with the URL to use instead, database URLs of drivers the gateway does not have."""
    scheme = url.partition("://")[0]
    if scheme in ("postgres", "postgresql+psycopg2", "postgresql+pg8000", "postgresql+asyncpg"):
        fixed = "postgresql+psycopg://" + url.partition("://")[2]
        raise UserError(
            f"unsupported database URL {mask(url)}",
            f"the gateway uses psycopg 3: {mask(fixed)}",
            ExitCode.USAGE,
        )
    if not scheme.startswith(("sqlite", "postgresql")):
        raise UserError(
            f"not a database URL the gateway can use: {mask(url)}",
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            ExitCode.USAGE,
        )


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


@contextmanager
def database(
    url: str, *, read_only: bool = False, create: bool = False, schema: bool = True
) -> Iterator[Database]:
    """The existing database at URL, disposed of on the way out: refused when it does not exist
    (unless CREATE) or has not the project's schema at this yrdgw's revision (unless CREATE or
    not SCHEMA); read-only when asked."""
    from sqlalchemy import create_engine

    from gateway.storage.db import Database, make_engine

    CONTEXT["database"] = url
    check_url(url)
    path = _sqlite_file(url)
    if path is not None and not create and not path.is_file():
        raise UserError(
            f"no database at {path} ({mask(url)})",
            "check --database-url (or database_url in the configuration); "
            "`yrdgw db upgrade` creates a new one",
        )
    if read_only and path is not None:
        import sqlite3

        uri = f"file:{path.resolve()}?mode=ro"
        engine = create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)
        )
        db = Database(engine)
    elif read_only:
        db = Database(
            make_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
        )
    else:
        db = Database.from_url(url)
    try:
        if schema and not create:
            require_schema(db, url)
        yield db
    finally:
        db.dispose()


def require_schema(db: Database, url: str) -> None:
    """Refuse a database without the project's schema, or at another revision than this yrdgw's."""
    current = db.current_revision()
    if current is None:
        raise UserError(
            f"not a yrdgw database: {mask(url)} has no gateway schema",
            "check --database-url; to make it a gateway database run `yrdgw db upgrade`",
        )
    head = db.head_revision()
    if current != head:
        raise UserError(
            f"{mask(url)} is at schema revision {current}, this yrdgw needs {head}",
            "run `yrdgw db upgrade` (back the database up first)",
        )


@contextmanager
def services(
    loaded: GatewaySettings, *, read_only: bool = False, migrate: bool = False
) -> Iterator[Services]:
    """The gateway's services on its existing, migrated database (with MIGRATE, as the
    long-running ``scheduler`` does under ``migrate_on_start``, created or migrated first)."""
    from gateway.assembly import build_services

    with database(loaded.database_url, read_only=read_only, create=migrate) as db:
        if migrate:
            db.upgrade()
        yield build_services(loaded, db)


def operator() -> str:
    """Who runs this command on which host (``user@hostname``), for audit and job records."""
    import os
    import socket

    return f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()}"
