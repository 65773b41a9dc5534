"""Record exchange, end to end, against the raw limits measured in the same run.

Prints: envelopes/s published over one mTLS Publish stream (verify + chain + adapt + check + store +
audit, one transaction per batch), raw Ed25519 verifies/s on one thread (the gateway verifies a
batch's signatures on one thread too: in its worker process, while the stream's thread parses,
checks and stores the batch), raw gRPC streaming of the same bytes with no work, feed delivery to
one subscriber, raw batched server streaming, and the ratios.

Run: ``python -m bench.exchange [N]`` (default N = 10,000 envelopes) on the embedded SQLite
default; set ``YRDGW_BENCH_DATABASE_URL`` to measure another database.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from yrd.interop.v1 import envelope_pb2, registry_service_pb2

from gateway.client import EnvelopeSigner, GatewayClient, channel_credentials, envelope_fields_of
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.samples import sample_documents
from gateway.security.pki import PKIDir, init, load_signing_key
from gateway.security.signing import raw_public_key, signing_input
from gateway.server import GatewayServer, server_credentials

BATCH = 500
FEED_BATCH = 1000
ZJ_CT = "application/vnd.yrd.330000+json"


def issuance(i: int) -> bytes:
    """A valid Zhejiang issuance of 1 kg on its own gram serials."""
    start = 10_000_000_000 + i * 1000
    return json.dumps(
        {
            "successful": True,
            "msg": "",
            "dataType": "issuance",
            "dataInfo": {
                "certificationId": str(1_800_000_000_000_000_000 + i),
                "projectInfoId": "1626163848812433999",
                "vintageYear": 2024,
                "periodStart": "2024-01-01 00:00:00",
                "periodEnd": "2024-12-31 23:59:59",
                "certifiedKg": "1.000",
                "serialFrom": start,
                "serialTo": start + 999,
            },
        },
        ensure_ascii=False,
    ).encode()


def raw_verify_rate(envelopes: list[envelope_pb2.SignedEnvelope], public_key: bytes) -> float:
    """Bare library verifies: key object loaded once, signed bytes built before the clock starts."""
    key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
    pairs = [(env.signature, signing_input(envelope_fields_of(env))) for env in envelopes]
    start = time.perf_counter()
    for signature, data in pairs:
        key.verify(signature, data)  # raises on a bad signature
    return len(pairs) / (time.perf_counter() - start)


def _raw_server(pki: PKIDir, feed_message: bytes) -> tuple[grpc.Server, int]:
    """Same mTLS, same bytes, no work: a bidi echo of acks and a server stream of feed messages."""
    ack = registry_service_pb2.PublishResponse().SerializeToString()

    def echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in requests:
            yield ack

    def feed(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        count = int(request.decode())
        for _ in range(count):
            yield feed_message

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw",
        {
            "Echo": grpc.stream_stream_rpc_method_handler(echo),
            "Feed": grpc.unary_stream_rpc_method_handler(feed),
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ],
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki))
    server.start()
    return server, port


def main(n: int = 10_000) -> None:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki, regions=("330000",), admins=())
        key = load_signing_key(pki.registry("330000").signing_key)
        signer = EnvelopeSigner(key)
        setup = [signer.sign(ct, data) for ct, data in sample_documents("330000")[:2]]
        envelopes = [signer.sign(ZJ_CT, issuance(i)) for i in range(n)]
        batches = [
            registry_service_pb2.PublishRequest(envelopes=envelopes[i : i + BATCH])
            for i in range(0, n, BATCH)
        ]
        raw_bytes = [b.SerializeToString() for b in batches]

        verify_rate = raw_verify_rate(envelopes, raw_public_key(key))

        settings = GatewaySettings(
            listen="127.0.0.1:0",
            database_url=os.environ.get(
                "YRDGW_BENCH_DATABASE_URL", f"sqlite:///{Path(tmp) / 'gw.sqlite3'}"
            ),
            cert_dir=pki.root,
            metrics_listen="",
            log_level="warning",
            max_message_bytes=64 << 20,
        )
        gateway = GatewayServer(settings)
        gateway.start()
        client = GatewayClient(
            f"127.0.0.1:{gateway.port}", pki, region="330000", max_message_bytes=64 << 20
        )
        setup_reply = list(
            client.registry.Publish(iter([registry_service_pb2.PublishRequest(envelopes=setup)]))
        )
        assert all(r.accepted for r in setup_reply[0].results), setup_reply

        start = time.perf_counter()
        accepted = 0
        for reply in client.registry.Publish(iter(batches), timeout=600):
            accepted += sum(r.accepted for r in reply.results)
        publish_seconds = time.perf_counter() - start
        if accepted != n:
            raise AssertionError(f"only {accepted} of {n} envelopes accepted")
        e2e_rate = n / publish_seconds

        request = registry_service_pb2.SubscribeRequest(max_batch_size=FEED_BATCH)
        start = time.perf_counter()
        events = 0
        feed_message = b""
        for response in client.registry.Subscribe(request, timeout=600):
            events += len(response.events)
            if len(response.events) == FEED_BATCH and not feed_message:
                feed_message = response.SerializeToString()
        feed_rate = events / (time.perf_counter() - start)
        client.close()
        gateway.stop(0)

        raw, port = _raw_server(pki, feed_message)
        creds = channel_credentials(pki, pki.registry("330000"))
        options = [
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ]
        with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
            echo = channel.stream_stream("/bench.Raw/Echo")
            start = time.perf_counter()
            acks = sum(1 for _ in echo(iter(raw_bytes), timeout=600))
            raw_stream_seconds = time.perf_counter() - start
            assert acks == len(raw_bytes)
            feed = channel.unary_stream("/bench.Raw/Feed")
            messages = max(1, events // FEED_BATCH)
            start = time.perf_counter()
            got = sum(1 for _ in feed(str(messages).encode(), timeout=600))
            raw_feed_rate = got * FEED_BATCH / (time.perf_counter() - start)
        raw.stop(0)

        raw_stream_rate = n / raw_stream_seconds
        limit = min(verify_rate, raw_stream_rate)
        backend = "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"
        print(f"envelopes: {n:,} Zhejiang issuances, {BATCH} per stream message, {backend}")
        print(f"raw Ed25519 verify, 1 thread:                  {verify_rate:>10,.0f} verifies/s")
        print(
            f"raw gRPC bidi stream, same bytes, no work:     {raw_stream_rate:>10,.0f} envelopes/s"
            f" ({len(raw_bytes) / raw_stream_seconds:,.0f} messages/s)"
        )
        print(
            f"gateway Publish end to end:                    {e2e_rate:>10,.0f} envelopes/s"
            f"  ratio {e2e_rate / limit:.2f} of the smaller raw limit (target 0.50 quiet)"
        )
        print(f"raw gRPC server stream, same feed bytes:       {raw_feed_rate:>10,.0f} events/s")
        print(
            f"gateway Subscribe, one subscriber, {FEED_BATCH}/msg:  {feed_rate:>10,.0f} events/s"
            f"  ratio {feed_rate / raw_feed_rate:.2f} (target 30,000 events/s)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
