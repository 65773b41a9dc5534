"""Commands that run on the gateway's host get their configuration, database and services here.

The server side (configuration, SQLAlchemy, the services) is imported only when such a command
runs, so that ``yrdgw --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.output import fail

if TYPE_CHECKING:
    from gateway.assembly import Services
    from gateway.config import GatewaySettings
    from gateway.storage.db import Database


def settings(config: Path | None, database_url: str | None = None) -> GatewaySettings:
    """The configuration of CONFIG (and the environment), with DATABASE_URL when given."""
    from gateway.config import load_settings

    return load_settings(config, **({"database_url": database_url} if database_url else {}))


def quiet_settings(config: Path | None, database_url: str | None) -> GatewaySettings:
    """``settings``, with logging configured to show warnings and errors only."""
    from gateway.logs import configure_logging

    loaded = settings(config, database_url)
    configure_logging(loaded.log_format, "warning")
    return loaded


@contextmanager
def database(url: str) -> Iterator[Database]:
    """The database at URL, disposed of on the way out."""
    from gateway.storage.db import Database

    db = Database.from_url(url)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def services(loaded: GatewaySettings) -> Iterator[Services]:
    """The gateway's services on its database (migrated first when the configuration says so).
    A PKI error or a refusal inside the block exits 1 with its message."""
    from gateway.assembly import build_services
    from gateway.errors import DomainError
    from gateway.security.pki import PKIError

    with database(loaded.database_url) as db:
        try:
            if loaded.migrate_on_start:
                db.upgrade()
            yield build_services(loaded, db)
        except (PKIError, DomainError) as exc:
            raise fail(str(exc)) from exc


def operator() -> str:
    """Who runs this command on which host (``user@hostname``), for audit and job records."""
    import os
    import socket

    return f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()}"
