"""The database cuts the gateway off (PostgreSQL restarted, connections killed): over real mTLS,
the caller gets UNAVAILABLE / STORAGE_UNAVAILABLE, not INTERNAL; the SDK sends the same signed
request again and it takes effect once; the gateway serves again on fresh connections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from sqlalchemy import create_engine, func, select, text
from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow
from tests.faults.support import Outcome, outcome_of
from tests.integration.conftest import publish_samples

pytestmark = pytest.mark.postgres

AH, SH = "340000", "310000"


@pytest.fixture
def pg_server(pki: PKIDir, postgres_database: Database) -> Iterator[GatewayServer]:
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        recognition_enforced=False,
        scheduler_enabled=False,
    )
    gw = GatewayServer(settings, db=postgres_database)
    gw.start()
    yield gw
    gw.stop(grace=0.5)


@pytest.fixture
def client_for(pg_server: GatewayServer, pki: PKIDir) -> Iterator[Callable[[str], GatewayClient]]:
    opened: list[GatewayClient] = []

    def make(region: str) -> GatewayClient:
        client = GatewayClient(f"127.0.0.1:{pg_server.port}", pki, region=region)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def cut_off(db: Database, postgres_url: str) -> int:
    """Terminate every server connection of the gateway's pool; how many there were."""
    with db.engine.connect() as conn:
        app = conn.execute(text("SELECT current_setting('application_name')")).scalar_one()
    admin = create_engine(postgres_url)
    mine = "FROM pg_stat_activity WHERE application_name = :app AND pid <> pg_backend_pid()"
    try:
        with admin.begin() as conn:
            killed = conn.execute(
                text(f"SELECT count(pg_terminate_backend(pid)) {mine}"), {"app": app}
            ).scalar_one()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with admin.begin() as conn:
                if not conn.execute(text(f"SELECT count(*) {mine}"), {"app": app}).scalar_one():
                    break
            time.sleep(0.02)
    finally:
        admin.dispose()
    return int(killed)


def test_lost_database_connection_is_unavailable_and_then_served(
    pg_server: GatewayServer,
    client_for: Callable[[str], GatewayClient],
    postgres_url: str,
) -> None:
    publish_samples(client_for)
    ah, sh = client_for(AH), client_for(SH)
    t = ah.propose_transfer("cut-1", SH, origin=AH, ranges=[(1_000, 1_999)])
    assert cut_off(pg_server.db, postgres_url) >= 1
    request = transfer_service_pb2.GetTransferRequest(name=t.name)
    outcome, _ = outcome_of(lambda: sh.transfers.GetTransfer(request, timeout=10))
    assert outcome == Outcome(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
    # The disconnect retired the whole pool: the next call runs on a fresh connection.
    assert sh.get_transfer(t.name).state == transfer_pb2.TRANSFER_STATE_PROPOSED


def test_sdk_resends_a_signed_request_cut_off_by_the_database(
    pg_server: GatewayServer,
    client_for: Callable[[str], GatewayClient],
    postgres_url: str,
) -> None:
    publish_samples(client_for)
    ah, sh = client_for(AH), client_for(SH)
    t = ah.propose_transfer("cut-2", SH, origin=AH, ranges=[(1_000, 1_999)])
    assert cut_off(pg_server.db, postgres_url) >= 1
    done = sh.accept_transfer(t.name)
    assert done.state == transfer_pb2.TRANSFER_STATE_COMPLETED
    assert sh.resent == 1  # refused once by the lost connection, then taken
    with pg_server.db.transaction() as session:
        completions = session.execute(
            select(func.count())
            .select_from(AuditEntryRow)
            .where(AuditEntryRow.kind == "transfer.completed", AuditEntryRow.subject == t.name)
        ).scalar_one()
    assert completions == 1
    assert check_invariants(pg_server.db).ok
