"""Two-phase transfers end to end, against the raw unary gRPC call rate measured in the same run.

A completed transfer is two signed calls over mTLS: Zhejiang proposes 1 kg of its units to
Shanghai (checks, row locks, reservation, envelope, audit entry), Shanghai accepts (checks again,
the units move, envelope, audit entry). Measured one transfer at a time and with 32 in flight
(each worker its own clients and its own registered registry keys, so no signer chain is shared),
on SQLite and — when it answers at ``YRDGW_BENCH_POSTGRES_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) — on PostgreSQL in a schema of its own, dropped
afterwards. The raw baseline is a bare gRPC server on the same mTLS credentials answering the same
request bytes with the same response bytes, at the same concurrency and with the same client
threads in the same process (as bench.rpc does). The ratio compares the effective call rate
(2 × transfers/s) with it. For context, each backend's raw single-row commit rate is printed too.
Check 5 (recognition) is switched off: every destination recognises every unit.

With ``n`` transfers in flight, the mean time of one is ``n`` / rate (Little's law), so a p99
latency target at 32 in flight implies a rate; the run prints the floor that the raw call rate of
the same run puts under that latency — what even a gateway doing no work at all could reach.

Run: ``python -m bench.transfers [SEQUENTIAL] [CONCURRENT]`` (default 1000 and 1600 transfers
per backend).
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, create_engine, insert, text
from sqlalchemy.exc import OperationalError
from yrd.interop.v1 import transfer_service_pb2_grpc

from bench.exchange import ZJ_CT, issuance
from gateway.client import EnvelopeSigner, GatewayClient, channel_credentials
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.security.signing import raw_public_key
from gateway.server import GatewayServer, server_credentials
from gateway.storage.db import Database, make_engine

ZJ, SH = "330000", "310000"
IN_FLIGHT = 32
WARMUP = 20
RAW_SEQUENTIAL = 2_000
RAW_CONCURRENT = 8_000
RAW_COMMITS = 500
FIRST_SERIAL = 10_000_000_000  # bench.exchange.issuance(i) holds 1 kg from here + i * 1000
POSTGRES_URL = os.environ.get(
    "YRDGW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_RATIO = {"SQLite": 0.25, "PostgreSQL": 0.15}
TARGET_P99_MS = {"SQLite": 50.0}


@dataclass(frozen=True)
class Sizes:
    """Serialized request and response bytes of one propose and one accept."""

    propose_request: bytes
    propose_response: bytes
    accept_request: bytes
    accept_response: bytes


class _Recorder(grpc.UnaryUnaryClientInterceptor):
    """Keeps the serialized request and response of each unary method called through it."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[bytes, bytes]] = {}

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        method = str(details.method).rsplit("/", 1)[-1]
        self.seen[method] = (request.SerializeToString(), outcome.result().SerializeToString())
        return outcome


@dataclass(frozen=True)
class Run:
    transfers: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.transfers / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


# -- the raw baseline ----------------------------------------------------------------------------


def _raw_server(pki: PKIDir, sizes: Sizes, workers: int) -> tuple[grpc.Server, int]:
    """Same mTLS, no interceptor, no work: each request answered with its same-sized response."""
    replies = {
        len(sizes.propose_request): sizes.propose_response,
        len(sizes.accept_request): sizes.accept_response,
    }

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        return replies.get(len(request), sizes.propose_response)

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw", {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki))
    server.start()
    return server, port


def _in_parallel(
    workers: int, work: Callable[[int, threading.Barrier], None], timeout: float = 300
) -> float:
    """Run work(i, barrier) on `workers` threads released together; the seconds from release
    until the last one finishes."""
    barrier = threading.Barrier(workers + 1)
    failures: list[BaseException] = []

    def wrap(i: int) -> None:
        try:
            work(i, barrier)
        except BaseException as exc:  # reported on the main thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    start = time.perf_counter()
    for t in threads:
        t.join(timeout=timeout)
    seconds = time.perf_counter() - start
    if failures:
        raise failures[0]
    if any(t.is_alive() for t in threads):
        raise RuntimeError("benchmark workers hung")
    return seconds


def raw_rates(pki: PKIDir, sizes: Sizes, workers: int) -> tuple[float, float]:
    """Unary calls/s one at a time and with IN_FLIGHT in flight (one channel per caller, as the
    transfer workers have), alternating propose-sized and accept-sized exchanges."""
    server, port = _raw_server(pki, sizes, workers)
    creds = channel_credentials(pki, pki.registry(ZJ))
    requests = (sizes.propose_request, sizes.accept_request)
    try:
        channels = [grpc.secure_channel(f"127.0.0.1:{port}", creds) for _ in range(IN_FLIGHT)]
        calls: list[Callable[..., bytes]] = [ch.unary_unary("/bench.Raw/Call") for ch in channels]
        for ch in channels:
            grpc.channel_ready_future(ch).result(timeout=10)
        for i in range(100):  # warm-up
            calls[0](requests[i % 2], timeout=10)
        start = time.perf_counter()
        for i in range(RAW_SEQUENTIAL):
            calls[0](requests[i % 2], timeout=10)
        sequential = RAW_SEQUENTIAL / (time.perf_counter() - start)
        per_worker = RAW_CONCURRENT // IN_FLIGHT

        def work(w: int, barrier: threading.Barrier) -> None:
            calls[w](requests[0], timeout=10)
            barrier.wait(timeout=60)
            for i in range(per_worker):
                calls[w](requests[i % 2], timeout=10)

        concurrent = per_worker * IN_FLIGHT / _in_parallel(IN_FLIGHT, work)
        for ch in channels:
            ch.close()
    finally:
        server.stop(0)
    return sequential, concurrent


# -- the gateway ---------------------------------------------------------------------------------


@contextmanager
def postgres_schema() -> Iterator[Database | None]:
    """A fresh schema on the benchmark PostgreSQL (dropped afterwards); None when unreachable."""
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        print(f"PostgreSQL: skipped, not reachable at {POSTGRES_URL}: {exc.orig}".strip())
        admin.dispose()
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}))
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Bench:
    """One gateway on one database, Zhejiang's units published, clients ready."""

    def __init__(self, pki: PKIDir, settings: GatewaySettings, db: Database | None, units: int):
        self.pki = pki
        self.gateway = GatewayServer(settings, db=db)
        self.gateway.start()
        self.target = f"127.0.0.1:{self.gateway.port}"
        self.clients: list[GatewayClient] = []
        self.next_unit = 0
        self.lock = threading.Lock()
        self.source = self.connect(ZJ)
        documents = [*sample_documents(ZJ)[:2], *((ZJ_CT, issuance(i)) for i in range(units))]
        results = self.source.publish(documents, batch_size=500)
        refused = [r for r in results if not r.accepted]
        if refused:
            raise RuntimeError(f"{len(refused)} of {len(documents)} records refused: {refused[0]}")
        self.units = units
        self.destination = self.connect(SH)

    def connect(self, region: str, key: ed25519.Ed25519PrivateKey | None = None) -> GatewayClient:
        client = GatewayClient(self.target, self.pki, region=region)
        if key is not None:
            client.signer = EnvelopeSigner(key)
        client.wait_ready()
        self.clients.append(client)
        return client

    def worker_pairs(self, n: int) -> list[tuple[GatewayClient, GatewayClient]]:
        """n (source, destination) client pairs, each signing with registry keys of its own."""
        admins = {r: self.connect_admin(r) for r in (ZJ, SH)}
        pairs = []
        for _ in range(n):
            keys = {r: ed25519.Ed25519PrivateKey.generate() for r in (ZJ, SH)}
            for region, key in keys.items():
                admins[region].register_signing_key("registry", raw_public_key(key))
            pairs.append((self.connect(ZJ, keys[ZJ]), self.connect(SH, keys[SH])))
        return pairs

    def connect_admin(self, region: str) -> GatewayClient:
        client = GatewayClient(
            self.target, self.pki, region=region, role=Role.ADMIN, name="admin-a"
        )
        self.clients.append(client)
        return client

    def take(self) -> int | None:
        with self.lock:
            if self.next_unit >= self.units:
                return None
            self.next_unit += 1
            return self.next_unit - 1

    @staticmethod
    def transfer(source: GatewayClient, destination: GatewayClient, unit: int) -> float:
        """Propose unit to Shanghai and accept it; the seconds it took."""
        start = time.perf_counter()
        first = FIRST_SERIAL + unit * 1000
        proposed = source.propose_transfer(
            f"bench-{unit}", SH, origin=ZJ, ranges=[(first, first + 999)]
        )
        destination.accept_transfer(proposed.name)
        return time.perf_counter() - start

    def sizes(self) -> Sizes:
        """One transfer through recording channels, to capture its exact request and response
        bytes."""
        unit = self.take()
        assert unit is not None
        recorder = _Recorder()
        clients = (self.source, self.destination)
        for client in clients:
            recorded = grpc.intercept_channel(client.channel, recorder)
            client.transfers = transfer_service_pb2_grpc.TransferServiceStub(recorded)
        try:
            self.transfer(self.source, self.destination, unit)
        finally:
            for client in clients:
                client.transfers = transfer_service_pb2_grpc.TransferServiceStub(client.channel)
        (pq, pr), (aq, ar) = recorder.seen["ProposeTransfer"], recorder.seen["AcceptTransfer"]
        return Sizes(pq, pr, aq, ar)

    def sequential(self, n: int) -> Run:
        latencies = []
        start = time.perf_counter()
        for _ in range(n):
            unit = self.take()
            assert unit is not None
            latencies.append(self.transfer(self.source, self.destination, unit))
        return Run(n, time.perf_counter() - start, latencies)

    def concurrent(self, pairs: Sequence[tuple[GatewayClient, GatewayClient]], n: int) -> Run:
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for _ in range(n):
            unit = self.take()
            assert unit is not None
            todo.put(unit)
        latencies: list[list[float]] = [[] for _ in pairs]

        def work(w: int, barrier: threading.Barrier) -> None:
            source, destination = pairs[w]
            barrier.wait(timeout=60)
            while True:
                try:
                    unit = todo.get_nowait()
                except queue.Empty:
                    return
                latencies[w].append(self.transfer(source, destination, unit))

        seconds = _in_parallel(len(pairs), work)
        return Run(n, seconds, [x for per in latencies for x in per])

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.gateway.stop(0)


def raw_commit_rate(db: Database, n: int = RAW_COMMITS) -> float:
    """Single-row inserts of transfer-sized rows, one transaction each, on the same database."""
    table = Table(
        "bench_raw_commits",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("payload", LargeBinary),
    )
    table.create(db.engine)
    try:
        payload = bytes(250)
        start = time.perf_counter()
        for i in range(n):
            with db.engine.begin() as conn:
                conn.execute(insert(table).values(id=i, payload=payload))
        return n / (time.perf_counter() - start)
    finally:
        table.drop(db.engine)


@dataclass(frozen=True)
class Measured:
    backend: str
    commits: float
    sequential: Run
    concurrent: Run


def measure(
    backend: str,
    pki: PKIDir,
    settings: GatewaySettings,
    db: Database | None,
    n_seq: int,
    n_conc: int,
    sizes: list[Sizes],
) -> Measured:
    bench = Bench(pki, settings, db, units=1 + 2 * WARMUP + n_seq + n_conc)
    try:
        sizes.append(bench.sizes())
        bench.sequential(WARMUP)
        sequential = bench.sequential(n_seq)
        pairs = bench.worker_pairs(IN_FLIGHT)
        for source, destination in pairs[:WARMUP]:
            unit = bench.take()
            assert unit is not None
            bench.transfer(source, destination, unit)
        concurrent = bench.concurrent(pairs, n_conc)
        commits = raw_commit_rate(db or bench.gateway.db)
    finally:
        bench.close()
    return Measured(backend, commits, sequential, concurrent)


def report(backend: str, label: str, run: Run, raw: float) -> None:
    ratio = 2 * run.rate / raw
    target = TARGET_RATIO[backend]
    verdict = "met" if ratio >= target else "NOT met"
    line = (
        f"{backend + ',':<12}{label:<13} {run.rate:>6,.0f} transfers/s"
        f" ({2 * run.rate:>5,.0f} calls/s)  p50 {run.percentile(0.50):6.1f} ms"
        f"  p99 {run.percentile(0.99):6.1f} ms  ratio {ratio:.2f} of raw"
        f" (target >= {target:.2f}: {verdict})"
    )
    if backend in TARGET_P99_MS:
        limit = TARGET_P99_MS[backend]
        met = run.percentile(0.99) <= limit
        line += f", p99 target <= {limit:.0f} ms: {'met' if met else 'NOT met'}"
    print(line, flush=True)


def latency_floor(raw_calls: float) -> str:
    """What the raw call rate allows at IN_FLIGHT transfers in flight (Little's law)."""
    floor_ms = 1000 * IN_FLIGHT / (raw_calls / 2)
    limit = TARGET_P99_MS["SQLite"]
    needed = IN_FLIGHT / (limit / 1000)
    return (
        f"Little's law at {IN_FLIGHT} in flight: mean transfer time = {IN_FLIGHT} / rate. The raw"
        f" rate (2 calls a transfer, no work) puts it at >= {floor_ms:.1f} ms; a p99 <="
        f" {limit:.0f} ms needs >= {needed:,.0f} transfers/s = {2 * needed:,.0f} calls/s, a ratio"
        f" >= {2 * needed / raw_calls:.2f} of raw"
    )


def main(n_seq: int = 1000, n_conc: int = 1600) -> None:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki, regions=(SH, ZJ), admins=("admin-a",))

        def settings(url: str) -> GatewaySettings:
            return GatewaySettings(
                listen="127.0.0.1:0",
                database_url=url,
                cert_dir=pki.root,
                metrics_listen="",
                log_level="warning",
                # Check 5 is not measured here: every destination recognises every unit.
                recognition_enforced=False,
            )

        sizes: list[Sizes] = []
        sqlite = settings(f"sqlite:///{Path(tmp) / 'gw.sqlite3'}")
        results = [measure("SQLite", pki, sqlite, None, n_seq, n_conc, sizes)]
        with postgres_schema() as pg:
            if pg is not None:
                results.append(
                    measure("PostgreSQL", pki, settings(POSTGRES_URL), pg, n_seq, n_conc, sizes)
                )
        raw_seq, raw_conc = raw_rates(pki, sizes[0], sqlite.max_workers)

    size = sizes[0]
    print(
        f"transfers: propose + accept of 1 kg (Zhejiang -> Shanghai) over mTLS = 2 signed calls; "
        f"{n_seq} one at a time, {n_conc} with {IN_FLIGHT} in flight (own clients and keys each); "
        f"bytes request/response: propose {len(size.propose_request)}/"
        f"{len(size.propose_response)}, accept {len(size.accept_request)}/"
        f"{len(size.accept_response)}"
    )
    for label, rate in (("1 in flight", raw_seq), (f"{IN_FLIGHT} in flight", raw_conc)):
        print(f"raw gRPC unary over mTLS, same bytes, no work, {label:<13} {rate:>6,.0f} calls/s")
    print(latency_floor(raw_conc))
    for r in results:
        print(
            f"{r.backend + ',':<12}raw single-row commits, one transaction each:"
            f" {r.commits:>6,.0f} commits/s"
        )
        report(r.backend, "1 in flight", r.sequential, raw_seq)
        report(r.backend, f"{IN_FLIGHT} in flight", r.concurrent, raw_conc)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
