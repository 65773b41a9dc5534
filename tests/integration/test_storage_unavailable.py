"""The database cuts the gateway off (PostgreSQL restarted, connections killed, or unreachable
altogether): over real mTLS, the caller gets UNAVAILABLE / STORAGE_UNAVAILABLE, not INTERNAL;
health is NOT_SERVING while the database cannot be reached and SERVING when it can again; the SDK
sends the same signed request again, for as long as its retry budget, and it takes effect once;
the gateway serves again on fresh connections.

The outage is made by a TCP proxy the test puts between the gateway and PostgreSQL
(``tests/tcp_proxy.py``): stopping it closes the gateway's connections and refuses new ones, as a
database host that went away does; PostgreSQL itself keeps running."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.contract import COMPLETED
from gateway.errors import StorageUnavailable
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database, make_engine
from gateway.storage.models import AuditEntryRow, TransferRow
from tests.faults.support import Outcome, outcome_of
from tests.integration.conftest import publish_samples
from tests.tcp_proxy import TcpProxy

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
    notices: list[tuple[int, str]] = []
    sh.on_resend = lambda n, exc, _left: notices.append((n, getattr(exc, "reason", "")))
    assert cut_off(pg_server.db, postgres_url) >= 1
    done = sh.accept_transfer(t.name)
    assert done.state == transfer_pb2.TRANSFER_STATE_COMPLETED
    assert sh.resent == 1  # refused once by the lost connection, then taken
    assert notices == [(1, "STORAGE_UNAVAILABLE")]  # what `retrying (1/…)` on a terminal says
    with pg_server.db.transaction() as session:
        completions = session.execute(
            select(func.count())
            .select_from(AuditEntryRow)
            .where(AuditEntryRow.kind == "transfer.completed", AuditEntryRow.subject == t.name)
        ).scalar_one()
    assert completions == 1
    assert check_invariants(pg_server.db).ok


# --- The database out of reach: a proxy between the gateway and PostgreSQL, stopped and restarted.

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNAVAILABLE = Outcome(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as started:
        yield started


@pytest.fixture
def proxied_database(postgres_url: str, proxy: TcpProxy) -> Iterator[Database]:
    """A migrated database in a schema of its own (as ``postgres_database``), reached through
    the proxy."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    through = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    db = Database(
        make_engine(
            through.render_as_string(hide_password=False),
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


def proxied_gateway(pki: PKIDir, db: Database, probe_interval_s: float) -> GatewayServer:
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        recognition_enforced=False,
        scheduler_enabled=False,
        storage_probe_interval_s=probe_interval_s,
        storage_probe_retry_s=0.1,
    )
    gw = GatewayServer(settings, db=db)
    gw.start()
    return gw


class HealthWatch:
    """``grpc.health.v1.Health/Watch`` on the whole gateway: each status as it changes."""

    def __init__(self, client: GatewayClient) -> None:
        stub = health_pb2_grpc.HealthStub(client.channel)
        self._stream = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=300)

    def next(self) -> int:
        return int(next(self._stream).status)

    def until(self, status: int) -> None:
        """Wait for the status (the stream's deadline bounds the wait)."""
        while self.next() != status:
            pass

    def close(self) -> None:
        self._stream.cancel()


def test_health_follows_an_idle_gateways_database(
    pki: PKIDir, proxied_database: Database, proxy: TcpProxy
) -> None:
    """No call needed: the background probe finds the database gone, then back."""
    gw = proxied_gateway(pki, proxied_database, probe_interval_s=0.1)
    client = GatewayClient(f"127.0.0.1:{gw.port}", pki, region=SH)
    watch = HealthWatch(client)
    try:
        assert watch.next() == SERVING
        proxy.stop()
        watch.until(NOT_SERVING)
        assert client.health("yrd.interop.v1.TransferService") == "NOT_SERVING"
        proxy.start()
        watch.until(SERVING)
        assert client.health("yrd.interop.v1.TransferService") == "SERVING"
    finally:
        watch.close()
        client.close()
        gw.stop(grace=0.5)


def test_outage_is_unavailable_and_not_serving_and_a_resent_accept_takes_effect_once(
    pki: PKIDir, proxied_database: Database, proxy: TcpProxy
) -> None:
    # The periodic probe is out of the way: only failed calls make the gateway look.
    gw = proxied_gateway(pki, proxied_database, probe_interval_s=3600)
    clients: dict[str, GatewayClient] = {}

    def client_for(region: str) -> GatewayClient:
        if region not in clients:
            clients[region] = GatewayClient(f"127.0.0.1:{gw.port}", pki, region=region)
        return clients[region]

    ah, sh = client_for(AH), client_for(SH)
    watch = HealthWatch(sh)
    try:
        publish_samples(client_for)
        t = ah.propose_transfer("outage-1", SH, origin=AH, ranges=[(1_000, 1_999)])
        assert watch.next() == SERVING

        proxy.stop()
        # The pooled connection is gone: the first call fails with the dropped connection...
        get = transfer_service_pb2.GetTransferRequest(name=t.name)
        assert outcome_of(lambda: sh.transfers.GetTransfer(get, timeout=30))[0] == UNAVAILABLE
        watch.until(NOT_SERVING)
        # ...and while nothing listens, every call with a refused connection: still UNAVAILABLE.
        for _ in range(3):
            assert outcome_of(lambda: sh.transfers.GetTransfer(get, timeout=30))[0] == UNAVAILABLE
        assert sh.health() == "NOT_SERVING"

        # The accept is sent during the outage; the SDK re-sends the identical signed request
        # until the database is back. Six refusals in a row span more than a second of backoff
        # (50 + 100 + 200 + 400 + 800 ms): the retry budget holds past where it used to stop.
        sent: list[Any] = []
        refusals = 0
        refused_enough = threading.Event()
        real_call = sh.call

        def call(method: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal refusals
            sent.append(request)
            try:
                return real_call(method, request, *args, **kwargs)
            except StorageUnavailable:
                refusals += 1
                if refusals >= 6:
                    refused_enough.set()
                raise

        sh.call = call  # type: ignore[method-assign]
        answers: list[transfer_pb2.Transfer] = []
        failures: list[BaseException] = []

        def accept() -> None:
            try:
                answers.append(sh.accept_transfer(t.name))
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        accepting = threading.Thread(target=accept)
        accepting.start()
        assert refused_enough.wait(timeout=60), failures
        proxy.start()  # the database is reachable again, on the same address
        accepting.join(timeout=60)
        sh.call = real_call  # type: ignore[method-assign]
        assert not failures, failures
        assert [a.state for a in answers] == [transfer_pb2.TRANSFER_STATE_COMPLETED]
        assert sh.resent >= 6
        assert all(r.SerializeToString() == sent[0].SerializeToString() for r in sent)
        watch.until(SERVING)

        # The same bytes once more: the first answer, nothing done again.
        again = sh.transfers.AcceptTransfer(sent[0], timeout=30).transfer
        assert again.state == transfer_pb2.TRANSFER_STATE_COMPLETED
        with gw.db.transaction() as session:
            completions = session.execute(
                select(func.count())
                .select_from(AuditEntryRow)
                .where(AuditEntryRow.kind == "transfer.completed", AuditEntryRow.subject == t.name)
            ).scalar_one()
            completed = session.execute(
                select(func.count()).select_from(TransferRow).where(TransferRow.state == COMPLETED)
            ).scalar_one()
        assert (completions, completed) == (1, 1)
        assert check_invariants(gw.db).ok
    finally:
        watch.close()
        for client in clients.values():
            client.close()
        gw.stop(grace=0.5)
