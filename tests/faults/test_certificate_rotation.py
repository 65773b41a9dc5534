"""The gateway's server certificate is replaced while clients run: calls on open connections and
on new ones keep succeeding (not one fails), a stream open across the change keeps delivering,
and every new connection is served the new certificate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yrd.interop.v1 import registry_service_pb2, registry_service_pb2_grpc

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init, issue
from gateway.server import CertificateReloader, GatewayServer
from tests.faults.support import (
    identity_channel,
    replace_gateway_certificate,
    serial_of,
    served_certificate_serial,
    sibling_pki,
)

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"


class Traffic:
    """Client threads calling in a loop until stopped, counting calls and failures."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.calls = 0
        self.failures: list[str] = []
        self.threads: list[threading.Thread] = []

    def run(self, call: Callable[[], object]) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                try:
                    call()
                except Exception as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                else:
                    with self.lock:
                        self.calls += 1

        thread = threading.Thread(target=loop)
        thread.start()
        self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_server_certificate_replaced_under_load(tmp_path: Path) -> None:
    pki = PKIDir(tmp_path / "pki")
    init(pki, regions=(SH, JS, ZJ, AH), admins=())
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path / 'gw.sqlite3'}",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        log_format="json",
    )
    server = GatewayServer(settings)
    server.start()
    target = f"127.0.0.1:{server.port}"
    old_serial = serial_of(pki.gateway().cert)
    clients = [GatewayClient(target, pki, region=r) for r in (SH, JS, ZJ, AH)]
    traffic = Traffic()
    follower_events: list[registry_service_pb2.FeedEvent] = []
    follower_end: list[grpc.StatusCode] = []
    try:
        assert served_certificate_serial(server.port, pki, pki.registry(SH)) == old_serial
        # Calls on connections that stay open across the change.
        for client in clients[:3]:
            traffic.run(lambda c=client: c.list_signing_keys(c.region))

        # Calls each on a connection of its own: a TLS handshake after every call.
        def fresh_connection() -> None:
            with identity_channel(server.port, pki, pki.registry(AH)) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

        traffic.run(fresh_connection)
        # A stream open across the change, receiving records published before and after.
        stream = registry_service_pb2_grpc.RegistryServiceStub(clients[3].channel).Subscribe(
            registry_service_pb2.SubscribeRequest(follow=True), timeout=60
        )

        def follow() -> None:
            try:
                for response in stream:
                    follower_events.extend(response.events)
            except grpc.RpcError as exc:
                follower_end.append(exc.code())

        follower = threading.Thread(target=follow)
        follower.start()
        sh = clients[0]
        assert all(r.accepted for r in sh.publish(sample_documents(SH)[:1]))
        time.sleep(0.5)

        new_serial = replace_gateway_certificate(pki, tmp_path / "renewal")
        assert new_serial != old_serial
        deadline = time.monotonic() + 10
        served = served_certificate_serial(server.port, pki, pki.registry(JS))
        while served != new_serial and time.monotonic() < deadline:
            time.sleep(0.05)
            served = served_certificate_serial(server.port, pki, pki.registry(JS))
        assert served == new_serial
        time.sleep(0.5)
        assert all(r.accepted for r in sh.publish(sample_documents(SH)[1:]))
        deadline = time.monotonic() + 10
        while len(follower_events) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        traffic.finish()
        stream.cancel()
        follower.join(10)
        # New clients, made after the change, trust the same CA and get in.
        with GatewayClient(target, pki, region=ZJ, role=Role.REGISTRY) as late:
            assert late.health() == "SERVING"
    finally:
        traffic.finish()
        for client in clients:
            client.close()
        server.stop(grace=0.5)
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.calls > 50
    kinds = [e.record.WhichOneof("kind") for e in follower_events]
    assert kinds == ["methodology", "project", "issuance"]
    assert follower_end == [grpc.StatusCode.CANCELLED]  # by the test, at the end


def test_a_key_without_its_certificate_is_not_taken(tmp_path: Path) -> None:
    """Between the key file and the certificate file being replaced, connections keep the old
    pair; once both are in place, the next connection gets the new one."""
    pki = PKIDir(tmp_path / "pki")
    init(pki, regions=(SH,), admins=())
    reloader = CertificateReloader(pki)
    old = reloader.serial
    assert reloader.fetch() is None  # nothing changed
    fresh = issue(sibling_pki(pki, tmp_path / "renewal"), Role.GATEWAY)
    live = pki.gateway()
    live.key.write_bytes(fresh.key.read_bytes())
    assert reloader.fetch() is None and reloader.serial == old
    live.cert.write_bytes(fresh.cert.read_bytes())
    assert reloader.fetch() is not None
    assert reloader.serial == serial_of(fresh.cert) != old
    assert reloader.fetch() is None  # taken once
