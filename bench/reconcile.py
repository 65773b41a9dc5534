"""Reconciliation end to end at scale, against the raw bulk insert of the same rows in the same run.

A ledger of N blocks (setup, written straight into the table, not measured): four origins, held by
the four registries (a quarter each). Then each registry submits its snapshot of what it holds
over one mTLS SubmitHoldings stream (batches of 1,000 blocks; the gateway parses, checks, spools
and stages them, copies the ledger side beside them, checks overlaps and appends the audit entry
in one transaction), and its administrator runs the staged comparison. 1 % of each registry's
blocks carry a planted discrepancy, in turn: a state mismatch, a block the registry omits (ledger
only), a block the registry claims beside one of its own (registry only). The run must find
exactly the planted ranges (asserted), and the totals that they change.

The registries are a child process (as they are other hosts): their requests are built before the
clock starts, so the time is the gateway's. The raw limit is the backend's bulk path for the same
registry rows into a bare table of the staging table's columns, one transaction: executemany of
prepared tuples on SQLite, COPY of prepared tuples on PostgreSQL (psycopg's ``write_row``). On
PostgreSQL also the server's own rate: a binary COPY of the rows encoded before the clock (the
gateway stages a binary COPY it lays out a column at a time, so this is the limit its staging
meets). Printed per size (N/10 and N): the total time
(the four submissions and the four runs), the snapshot ingest rate and its ratio to the raw rate
(to the server's own rate, and to SQLAlchemy Core's executemany of dicts, the raw limit of the
earlier figures), the
comparison time, and the peak resident memory of this process (which hosts the gateway) while
the snapshots are submitted and reconciled: Linux's VmHWM, reset just before (``clear_refs``),
so the bench's own setup is not counted; where that cannot be reset, ``ru_maxrss`` (a
high-water mark since the start).
On SQLite, and on PostgreSQL when it answers at ``YRDGW_BENCH_POSTGRES_URL``.

Run: ``python -m bench.reconcile [N] [--split] [--finer-ledger]`` (default
``YRDGW_BENCH_RECONCILE_BLOCKS``, else 100,000 blocks; ``make bench`` sets 1,000,000).
``--split``: every registry block is sent split in two (the gateway joins each pair back into
the ledger's block as it receives them, protocol 1.4.1). ``--finer-ledger``: the ledger keeps every
block as two halves and the registries send them whole, so that no block matches exactly (the
gateway finds that each pair of halves tiles the registry's block, protocol 1.4.1).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

from sqlalchemy import Connection, insert
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from bench.transfers import postgres_schema
from gateway.client import GatewayClient
from gateway.client.reconciliation import HeldTuple, holdings_requests
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.server import GatewayServer
from gateway.storage.binary_copy import encode_rows
from gateway.storage.bulk import BulkInsert
from gateway.storage.db import Database
from gateway.storage.models import UnitBlockRow
from gateway.storage.reconciliation_store import BLOCK_COLUMNS, block_table

REGIONS = ("310000", "320000", "330000", "340000")
BLOCK = 1_000  # grams per block; blocks of one origin are 2 * BLOCK apart
CHUNK = 50_000
PLANT_EVERY = 100  # 1 %
ACTIVE, RETIRED = records_pb2.UNIT_BLOCK_STATE_ACTIVE, records_pb2.UNIT_BLOCK_STATE_RETIRED


def ledger_block(i: int) -> tuple[str, int, int, str]:
    """Block ``i`` of the ledger: (origin, start, end, holder)."""
    origin, k = REGIONS[i % 4], i // 4
    return origin, k * 2 * BLOCK, k * 2 * BLOCK + BLOCK - 1, REGIONS[k % 4]


def held_by(n: int, holder: int) -> Iterator[tuple[str, int, int]]:
    """The blocks of an N-block ledger that region ``REGIONS[holder]`` holds, in ledger order."""
    for k in range(holder, (n + 3) // 4, 4):
        for i in range(4 * k, min(4 * k + 4, n)):
            origin, start, end, _ = ledger_block(i)
            yield origin, start, end


def snapshot_of(
    n: int, holder: int, split: bool
) -> Iterator[tuple[str, int, int, int, str | None]]:
    """The registry's snapshot, with the planted differences: (origin, start, end, state, kind of
    the discrepancy this block plants or None). An omitted block comes with state 0."""
    for j, (origin, start, end) in enumerate(held_by(n, holder)):
        if j % PLANT_EVERY != PLANT_EVERY // 3:
            if split:
                mid = (start + end) // 2
                yield origin, start, mid, ACTIVE, None
                yield origin, mid + 1, end, ACTIVE, None
            else:
                yield origin, start, end, ACTIVE, None
            continue
        kind = (j // PLANT_EVERY) % 3
        if kind == 0:
            yield origin, start, end, RETIRED, "STATE_MISMATCH"
        elif kind == 1:
            yield origin, start, end, 0, "LEDGER_ONLY"
        else:
            yield origin, start, end, ACTIVE, None
            yield origin, end + 1, end + BLOCK, ACTIVE, "REGISTRY_ONLY"


@dataclass
class RegionResult:
    blocks: int
    planted: int
    submit: float
    compare: float


def registry_side(port: int, pki_root: str, n: int, split: bool, columns: bool, out: Pipe) -> None:
    """The four registries and their administrators (in a child process): build each snapshot's
    requests, then stream it, run the reconciliation and check the report."""
    pki = PKIDir(Path(pki_root))
    results = []
    for holder, region in enumerate(REGIONS):
        expected: set[tuple[str, str, int, int]] = set()
        held: list[HeldTuple] = []
        for origin, start, end, state, kind in snapshot_of(n, holder, split):
            if kind is not None:
                expected.add((kind, origin, start, end))
            if state:
                held.append((origin, start, end, state))
        count = len(held)
        # The SDK's encoding (columns per origin, or HeldBlockBatch messages), before the clock.
        requests = list(holdings_requests(dt.datetime.now(dt.UTC), held, columns=columns))
        del held
        with (
            GatewayClient(f"127.0.0.1:{port}", pki, region=region) as registry,
            GatewayClient(
                f"127.0.0.1:{port}", pki, region=region, role=Role.ADMIN, name="admin-a"
            ) as admin,
        ):
            registry.wait_ready()
            start_time = time.perf_counter()
            ack = registry.reconciliation.SubmitHoldings(iter(requests), timeout=600)
            submit = time.perf_counter() - start_time
            del requests
            assert ack.block_count == count, (ack.block_count, count)
            start_time = time.perf_counter()
            report = admin.run_reconciliation(region)
            compare = time.perf_counter() - start_time
        found = set()
        totals = set()
        for d in report.discrepancies:
            kind = reconciliation_pb2.DiscrepancyKind.Name(d.kind).removeprefix("DISCREPANCY_KIND_")
            if kind == "TOTAL_MISMATCH":
                totals.add(d.origin_region)
                continue
            for r in d.ranges:
                found.add((kind, d.origin_region, r.start, r.end))
        assert found == expected, (
            f"{region}: {len(expected - found)} planted not found, "
            f"{len(found - expected)} found not planted"
        )
        assert totals == {o for _, o, _, _ in expected}, totals
        results.append(RegionResult(count, len(expected), submit, compare))
    out.send(results)


def raw_insert_rate(db: Database, n: int, split: bool, *, path: str = "tuples") -> float:
    """The backend's bulk path for each registry's rows into a bare table like the staging one
    (temporary, the same four columns, no index), one transaction per registry as its snapshot
    has; the rows are prepared before the clock runs, a chunk at a time. ``path``: ``tuples``,
    the rows as tuples on the driver's own bulk path (executemany on SQLite; COPY with psycopg's
    ``write_row`` on PostgreSQL); ``encoded`` (PostgreSQL), the rows already in the binary COPY
    format (encoded before the clock): the server's own rate; ``core``, SQLAlchemy Core's
    executemany of dicts (the raw limit of the figures the issue started from)."""
    table = block_table("bench_raw_blocks")
    bulk = BulkInsert(table, BLOCK_COLUMNS)
    int8 = BulkInsert(table, BLOCK_COLUMNS, binary=True).int8
    assert int8 is not None
    elapsed, rows = 0.0, 0

    def run(conn: Connection, chunk: list[tuple[str, int, int, str]]) -> float:
        if path == "encoded":
            data = encode_rows(int8, chunk)
            t = time.perf_counter()
            bulk.copy_encoded(conn, [data])
            return time.perf_counter() - t
        if path == "tuples":
            t = time.perf_counter()
            bulk.run(conn, chunk)
            return time.perf_counter() - t
        dicts = [dict(zip(bulk.columns, row, strict=True)) for row in chunk]
        t = time.perf_counter()
        if dicts:
            conn.execute(insert(table), dicts)
        return time.perf_counter() - t

    for holder in range(4):
        with db.engine.connect() as conn:
            with conn.begin():
                table.create(conn)
                chunk: list[tuple[str, int, int, str]] = []
                for origin, start, end, state, _ in snapshot_of(n, holder, split):
                    if state:
                        chunk.append((origin, start, end, "active"))
                    if len(chunk) == CHUNK:
                        elapsed += run(conn, chunk)
                        rows, chunk = rows + len(chunk), []
                elapsed += run(conn, chunk)
                rows += len(chunk)
                t = time.perf_counter()
            elapsed += time.perf_counter() - t  # the commit
            table.drop(conn)
            conn.commit()
    return rows / elapsed


_LEDGER = BulkInsert(
    UnitBlockRow,
    (
        "origin_region",
        "issuance_name",
        "project_name",
        "vintage",
        "serial_start",
        "serial_end",
        "holder_region",
        "state",
        "created_at",
    ),
)


def write_ledger(db: Database, n: int, finer: bool) -> None:
    """The ledger's N blocks (``finer``: each as two halves)."""
    with db.engine.begin() as conn:
        now = _LEDGER.stored(conn.dialect, "created_at", dt.datetime.now(dt.UTC))
        issuance, project = "regions/bench/issuances/x", "regions/bench/projects/x"
        for first in range(0, n, CHUNK):
            rows = []
            for i in range(first, min(first + CHUNK, n)):
                origin, start, end, holder = ledger_block(i)
                mid = (start + end) // 2
                for s, e in ((start, mid), (mid + 1, end)) if finer else ((start, end),):
                    rows.append((origin, issuance, project, 2025, s, e, holder, "active", now))
            _LEDGER.run(conn, rows)


def measure(
    label: str, db: Database, pki: PKIDir, n: int, split: bool, finer: bool, columns: bool
) -> None:
    db.upgrade()
    write_ledger(db, n, finer)
    raw = raw_insert_rate(db, n, split)
    postgres = db.engine.dialect.name == "postgresql"
    encoded = raw_insert_rate(db, n, split, path="encoded") if postgres else None
    core = raw_insert_rate(db, n, split, path="core")
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        scheduler_enabled=False,
        migrate_on_start=False,
    )
    reset = _reset_peak_rss()
    server = GatewayServer(settings, db=db)
    port = server.start()
    try:
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(
            target=registry_side, args=(port, str(pki.root), n, split, columns, send)
        )
        child.start()
        results: list[RegionResult] = receive.recv()
        child.join()
        assert child.exitcode == 0
        # The gateway's own account of the four snapshots (its metrics: phase seconds summed).
        phase = {
            p: server.metrics.registry.get_sample_value(
                "yrdgw_snapshot_phase_seconds_sum", {"phase": p}
            )
            or 0.0
            for p in ("receive", "stage", "difference")
        }
    finally:
        server.stop(grace=1)
    blocks = sum(r.blocks for r in results)
    submit = sum(r.submit for r in results)
    compare = sum(r.compare for r in results)
    planted = sum(r.planted for r in results)
    peak = _peak_rss_mib(reset)
    ingest = phase["receive"] + phase["stage"]
    case = (
        (" (split)" if split else "")
        + (" (finer ledger)" if finer else "")
        + ("" if columns else " (HeldBlockBatch)")
    )
    print(
        f"{label} {n:>9,} ledger blocks{case}: total {submit + compare:6.2f} s"
        f" | ingest {blocks / ingest:>9,.0f} blocks/s ({ingest:.2f} s: stream read and checked"
        f" {phase['receive']:.2f} s, staged {phase['stage']:.2f} s), raw bulk insert "
        f"{raw:>9,.0f} rows/s, ratio {blocks / ingest / raw:.2f}"
        + (
            ""
            if encoded is None
            else f" (the server's own, rows encoded before the clock {encoded:>9,.0f} rows/s,"
            f" ratio {blocks / ingest / encoded:.2f})"
        )
        + f" (Core executemany of dicts {core:>9,.0f} rows/s, ratio {blocks / ingest / core:.2f})"
        f" | submit with the set-based difference {submit:.2f} s (difference "
        f"{phase['difference']:.2f} s; {blocks / submit:,.0f} blocks/s, ratio "
        f"{blocks / submit / raw:.2f}) | comparison {compare:.2f} s | 1 % planted: all "
        f"{planted:,} found | peak RSS {peak:,.0f} MiB",
        flush=True,
    )


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident size (Linux: 5 to clear_refs); whether it could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mib(reset: bool) -> float:
    if reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    default = os.environ.get("YRDGW_BENCH_RECONCILE_BLOCKS", "100000")
    n = int(args[0]) if args and args[0].isdigit() else int(default)
    split = "--split" in sys.argv[1:]
    finer = "--finer-ledger" in sys.argv[1:]
    columns = "--batches" not in sys.argv[1:]
    sizes = [n // 10, n]
    configure_logging("console", "warning")
    print(
        "reconcile: four registries, 1 % planted discrepancies; peak RSS of the gateway's "
        "process during submissions and runs (VmHWM reset before; else ru_maxrss since start)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="yrdgw-bench-rc-") as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki)
        for size in sizes:
            sqlite = Database.from_url(f"sqlite:///{Path(tmp) / f'bench-{size}.sqlite3'}")
            try:
                measure("SQLite    ", sqlite, pki, size, split, finer, columns)
            finally:
                sqlite.dispose()
                Path(tmp, f"bench-{size}.sqlite3").unlink()
        for size in sizes:
            with postgres_schema() as pg:
                if pg is None:
                    break
                measure("PostgreSQL", pg, pki, size, split, finer, columns)


if __name__ == "__main__":
    main()
