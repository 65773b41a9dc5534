"""Shared fixtures: a dev PKI, databases (SQLite and PostgreSQL), and a real mTLS gateway."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.server import GatewayServer
from gateway.storage.db import Database, make_engine

POSTGRES_URL = os.environ.get(
    "YRDGW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIDir:
    """A complete dev PKI, made once per test session (read-only for tests)."""
    directory = PKIDir(tmp_path_factory.mktemp("pki"))
    init(directory)
    return directory


def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except OperationalError as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL; skips (or fails in CI) when the server is unreachable."""
    problem = postgres_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database in a schema of its own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Its own application_name, so a test can find (and cut off) this database's connections.
    db = Database(
        make_engine(
            postgres_url,
            connect_args={"options": f"-csearch_path={schema}", "application_name": schema},
        )
    )
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database file (WAL), as the embedded default uses."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'gw.sqlite3'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Database:
    """Every storage contract test runs once per backend."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    db: Database = request.getfixturevalue(fixture)
    return db


@pytest.fixture
def gateway_settings(pki: PKIDir, tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        cert_dir=pki.root,
        metrics_listen="127.0.0.1:0",
        shutdown_grace_s=2.0,
        log_format="json",
        log_level="warning",
    )


@pytest.fixture
def gateway(gateway_settings: GatewaySettings) -> Iterator[GatewayServer]:
    """A real gateway on a free port with real mTLS, in process."""
    server = GatewayServer(gateway_settings)
    server.start()
    yield server
    server.stop(grace=1.0)


ClientFactory = Callable[..., GatewayClient]


@pytest.fixture
def connect(gateway: GatewayServer, pki: PKIDir) -> Iterator[ClientFactory]:
    """Open clients to the running gateway as any identity of the dev PKI; closed afterwards."""
    opened: list[GatewayClient] = []

    def _connect(
        region: str = "310000", role: Role = Role.REGISTRY, name: str | None = None
    ) -> GatewayClient:
        client = GatewayClient(
            f"127.0.0.1:{gateway.port}", pki, region=region, role=role, name=name
        )
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs() -> None:
    """One RPC log line per call is for operators; tests keep warnings and errors only."""
    from gateway.logs import configure_logging

    configure_logging("json", "warning")
