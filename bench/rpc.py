"""Gateway RPC path against raw gRPC over the same mTLS, and audited writes against raw inserts.

Run: ``python -m bench.rpc`` (or ``make bench``). Prints calls/s and the ratio to the raw
limit measured in this same run on this machine.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import insert

from gateway.client import GatewayClient, channel_credentials
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, init
from gateway.security.signing import key_id_of, raw_public_key
from gateway.server import GatewayServer, server_credentials
from gateway.services.keys import KeyDirectory
from gateway.storage.db import Database
from gateway.storage.models import SigningKeyRow

CALLS = 2000
WRITES = 300


def _rate(n: int, fn: Callable[[], object]) -> float:
    for _ in range(min(50, n)):  # warm-up
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def _raw_server(pki: PKIDir) -> tuple[grpc.Server, int]:
    """A bare gRPC server on the same mTLS credentials, answering the same bytes, no interceptor."""
    reply = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        return reply.SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki))
    server.start()
    return server, port


def main() -> None:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki)
        raw, raw_port = _raw_server(pki)
        creds = channel_credentials(pki, pki.registry("310000"))
        with grpc.secure_channel(f"127.0.0.1:{raw_port}", creds) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            raw_rate = _rate(CALLS, lambda: stub.Check(request, timeout=5))
        raw.stop(0)

        settings = GatewaySettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{Path(tmp) / 'gw.sqlite3'}",
            cert_dir=pki.root,
            metrics_listen="",
            log_level="warning",
        )
        gateway = GatewayServer(settings)
        gateway.start()
        with GatewayClient(f"127.0.0.1:{gateway.port}", pki, region="310000") as client:
            health_rate = _rate(CALLS, client.health)
            list_rate = _rate(CALLS // 4, lambda: client.list_signing_keys("320000"))
        gateway.stop(0)

        print(f"raw gRPC unary over mTLS (same bytes, no interceptor): {raw_rate:,.0f} calls/s")
        print(
            f"gateway Health/Check (authn, CRL, authz, metrics, log): {health_rate:,.0f} calls/s"
            f"  ratio {health_rate / raw_rate:.2f}"
        )
        print(
            f"gateway ListSigningKeys (+ SQLite read transaction): {list_rate:,.0f} calls/s"
            f"  ratio {list_rate / raw_rate:.2f}"
        )

        db = Database.from_url(f"sqlite:///{Path(tmp) / 'writes.sqlite3'}")
        db.upgrade()
        rows = []
        for _ in range(WRITES):
            public = raw_public_key(ed25519.Ed25519PrivateKey.generate())
            rows.append(
                {
                    "key_id": key_id_of(public),
                    "region": "310000",
                    "owner": "registry",
                    "public_key": public,
                    "registered_at": dt.datetime.now(dt.UTC),
                    "registered_by": "bench",
                }
            )
        start = time.perf_counter()
        with db.transaction() as session:
            session.execute(insert(SigningKeyRow), rows)
        raw_insert_rate = WRITES / (time.perf_counter() - start)
        singles = []
        for _ in range(WRITES):
            public = raw_public_key(ed25519.Ed25519PrivateKey.generate())
            singles.append({**rows[0], "key_id": key_id_of(public), "public_key": public})
        start = time.perf_counter()
        for row in singles:
            with db.transaction() as session:
                session.execute(insert(SigningKeyRow), [row])
        raw_single_rate = WRITES / (time.perf_counter() - start)
        keys = KeyDirectory(db)
        admin = Identity(Role.ADMIN, "320000", "admin-a")
        publics = [raw_public_key(ed25519.Ed25519PrivateKey.generate()) for _ in range(WRITES)]
        start = time.perf_counter()
        for public in publics:
            keys.register(admin, "registry", public)
        audited_rate = WRITES / (time.perf_counter() - start)
        db.dispose()
        print(
            f"raw bulk insert of {WRITES} key rows, one transaction: {raw_insert_rate:,.0f} rows/s"
        )
        print(f"raw single-row inserts, one transaction each: {raw_single_rate:,.0f} rows/s")
        print(
            f"audited key registrations, one transaction each (row + hash-chained audit entry): "
            f"{audited_rate:,.0f} /s  ratio {audited_rate / raw_single_rate:.2f} to single-row "
            f"inserts, {audited_rate / raw_insert_rate:.3f} to the bulk insert"
        )


if __name__ == "__main__":
    main()
