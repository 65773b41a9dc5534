"""Reconciliation end to end, against a raw bulk insert of the same rows measured in the same run.

A ledger of N blocks held by Shanghai (written straight into the table: setup, not measured). Then:
Shanghai streams its snapshot of the same N blocks over one mTLS SubmitHoldings stream (batches of
1,000; parsing, checks, staging, the ledger side copied beside it, the overlap check, the audit
entry, one transaction), and its administrator runs the staged comparison (totals, serial ranges by
window functions, transfers) with one planted difference — once with the ledger's own block
boundaries, once with every block split in two (so no block matches and every serial goes through
the window stage). The raw limit is an executemany of the same N rows into a bare table of the same
columns, one transaction. Printed: snapshot blocks/s and its ratio to the raw insert rate; rows
compared/s (both sides) and its ratio too. On SQLite, and on PostgreSQL when it answers at
``YRDGW_BENCH_POSTGRES_URL``.

Run: ``python -m bench.reconcile [N]`` (default 100,000 blocks).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from bench.transfers import postgres_schema
from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.server import GatewayServer
from gateway.storage.db import Database
from gateway.storage.models import UnitBlockRow

SH, AH, ZJ = "310000", "340000", "330000"
BLOCK = 1_000  # grams per block


def ledger_rows(n: int) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "origin_region": AH if i % 2 else ZJ,
            "issuance_name": "regions/bench/issuances/x",
            "project_name": "regions/bench/projects/x",
            "vintage": 2025,
            "serial_start": i * BLOCK,
            "serial_end": i * BLOCK + BLOCK - 1,
            "holder_region": SH,
            "state": "active",
            "created_at": now,
        }
        for i in range(n)
    ]


def raw_insert_rate(db: Database, rows: list[dict[str, object]]) -> float:
    """Bare executemany of the snapshot's columns into a table with no indexes, one commit."""
    table = Table(
        "bench_raw_blocks",
        MetaData(),
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("snapshot_id", BigInteger),
        Column("side", String(8)),
        Column("origin_region", String(6)),
        Column("serial_start", BigInteger),
        Column("serial_end", BigInteger),
        Column("state", String(20)),
    )
    table.create(db.engine)
    plain = [
        {
            "snapshot_id": 1,
            "side": "registry",
            "origin_region": r["origin_region"],
            "serial_start": r["serial_start"],
            "serial_end": r["serial_end"],
            "state": "active",
        }
        for r in rows
    ]
    start = time.perf_counter()
    with db.engine.begin() as conn:
        for i in range(0, len(plain), 5000):
            conn.execute(insert(table), plain[i : i + 5000])
    rate = len(plain) / (time.perf_counter() - start)
    table.drop(db.engine)
    return rate


def measure(label: str, db: Database, pki: PKIDir, n: int) -> None:
    db.upgrade()
    rows = ledger_rows(n)
    with db.transaction() as session:
        for i in range(0, n, 5000):
            session.execute(insert(UnitBlockRow), rows[i : i + 5000])
    raw = raw_insert_rate(db, rows)
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        scheduler_enabled=False,
        migrate_on_start=False,
    )
    server = GatewayServer(settings, db=db)
    port = server.start()
    try:
        with (
            GatewayClient(f"127.0.0.1:{port}", pki, region=SH) as registry,
            GatewayClient(
                f"127.0.0.1:{port}", pki, region=SH, role=Role.ADMIN, name="admin-a"
            ) as admin,
        ):
            blocks = [
                reconciliation_pb2.HeldBlock(
                    origin_region=str(r["origin_region"]),
                    serials=records_pb2.SerialRange(
                        start=int(str(r["serial_start"])), end=int(str(r["serial_end"]))
                    ),
                    state=records_pb2.UNIT_BLOCK_STATE_ACTIVE,
                )
                for r in rows
            ]
            blocks[n // 2].state = records_pb2.UNIT_BLOCK_STATE_RETIRED  # the planted difference
            print(f"{label}: raw bulk insert            {raw:>12,.0f} rows/s")
            # Same boundaries as the ledger (matched blocks drop out before the range stage), and
            # every block split in two (nothing matches: every serial goes through the windows).
            split = [half for b in blocks for half in _halves(b)]
            for case, snapshot in (("same blocks", blocks), ("every block split", split)):
                start = time.perf_counter()
                ack = registry.submit_holdings(dt.datetime.now(dt.UTC), snapshot, batch=1000)
                submit = time.perf_counter() - start
                assert ack.block_count == len(snapshot)
                start = time.perf_counter()
                report = admin.run_reconciliation(SH)
                compare = time.perf_counter() - start
                kinds = sorted(
                    reconciliation_pb2.DiscrepancyKind.Name(d.kind).removeprefix(
                        "DISCREPANCY_KIND_"
                    )
                    for d in report.discrepancies
                )
                assert "STATE_MISMATCH" in kinds, kinds
                rows_compared = len(snapshot) + n
                print(
                    f"{label}: {case:<18} snapshot {len(snapshot) / submit:>10,.0f} blocks/s "
                    f"ratio {len(snapshot) / submit / raw:.2f} ({submit:.2f} s) | comparison "
                    f"{rows_compared / compare:>10,.0f} rows/s ratio "
                    f"{rows_compared / compare / raw:.2f} ({compare:.2f} s, found {kinds})"
                )
    finally:
        server.stop(grace=1)


def _halves(block: reconciliation_pb2.HeldBlock) -> list[reconciliation_pb2.HeldBlock]:
    mid = (block.serials.start + block.serials.end) // 2
    return [
        reconciliation_pb2.HeldBlock(
            origin_region=block.origin_region,
            serials=records_pb2.SerialRange(start=s, end=e),
            state=block.state,
        )
        for s, e in ((block.serials.start, mid), (mid + 1, block.serials.end))
    ]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory(prefix="yrdgw-bench-rc-") as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki)
        sqlite = Database.from_url(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        try:
            measure("SQLite", sqlite, pki, n)
        finally:
            sqlite.dispose()
        with postgres_schema() as pg:
            if pg is not None:
                measure("PostgreSQL", pg, pki, n)


if __name__ == "__main__":
    main()
