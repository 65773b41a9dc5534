"""Fixtures of the integration tests: a real gateway (mTLS, port 0) on each backend, clients
for any identity of the dev PKI, and the samples published."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow, EnvelopeRow, IssuanceRow, RecordRow, UnitBlockRow

REGIONS = ("310000", "320000", "330000", "340000")


@pytest.fixture
def server(pki: PKIDir, database: Database, tmp_path: Path) -> Iterator[GatewayServer]:
    # Transfer mechanics are tested here with every region recognising every unit; the
    # recognition tests start gateways that enforce it.
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        recognition_enforced=False,
        scheduler_enabled=False,  # the scheduler's tests start their own
    )
    gw = GatewayServer(settings, db=database)
    gw.start()
    yield gw
    gw.stop(grace=0.5)


@pytest.fixture
def client_for(server: GatewayServer, pki: PKIDir) -> Iterator[Callable[..., GatewayClient]]:
    opened: list[GatewayClient] = []

    def make(region: str, role: Role = Role.REGISTRY, name: str | None = None) -> GatewayClient:
        c = GatewayClient(f"127.0.0.1:{server.port}", pki, region=region, role=role, name=name)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def counts(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        return {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (EnvelopeRow, RecordRow, AuditEntryRow, IssuanceRow, UnitBlockRow)
        }


def publish_samples(client_for: Callable[..., GatewayClient]) -> None:
    for region in REGIONS:
        results = client_for(region).publish(sample_documents(region))
        assert [r.accepted for r in results] == [True, True, True], [r.message for r in results]


@pytest.fixture
def published(client_for: Callable[..., GatewayClient]) -> Callable[..., GatewayClient]:
    """client_for, after every region published its samples."""
    publish_samples(client_for)
    return client_for
