"""Duplicate detection per accepted project with 10,000 and 100,000 projects on file, against the
raw indexed look-ups of the same run.

Setup (not measured): a migrated database whose ``identity_subjects`` holds N region projects
(N = 10,000, then 100,000), written by the backend's bulk path (COPY on PostgreSQL, executemany
on SQLite) — never N service calls — spread over the four provinces' boxes with distinct credit
codes and grid accounts; PostgreSQL's statistics are refreshed (ANALYZE) as autovacuum would.

Measured: ``Detector.project_accepted`` — the detection step of the publish transaction: the
project's keys normalised (GCJ-02/BD-09 sites converted, capacity in watts), its identity subject
upserted, the two indexed look-ups (the same grid account; the grid cells within 100 m), every
candidate classified — for M new projects (default 2,000; 15 % filed in GCJ-02, 5 % in BD-09), in
transactions of 100 as publish batches are, after 100 unmeasured ones. The clock runs around the
calls only: the transaction's begin, audit-head lock and commit belong to the publish path with or
without detection. Printed: µs per project, and the growth from 10,000 to 100,000 on file (it must
stay near 1: the look-ups are indexed, never a scan).

Raw limit, same run, same batches in turn, other new projects of the same kind: the same two
indexed SELECTs and a plain INSERT of the same subject row, each compiled once and run on the
DBAPI cursor (``gateway.storage.direct``, the path the duplicate store itself uses), the rows and
cell lists computed before the clock: the ratio is what detection costs over the statements it
cannot avoid.

On SQLite, and on PostgreSQL when it answers at ``YRDGW_BENCH_POSTGRES_URL``.

Run: ``python -m bench.duplicates [M]`` (default ``YRDGW_BENCH_DUPLICATES_MEASURED``, else 2,000).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, text
from yrd.interop.v1 import records_pb2

from bench.transfers import postgres_schema
from gateway.logs import configure_logging
from gateway.services.duplicates import Detector, project_subject
from gateway.storage.audit_log import audit_log
from gateway.storage.bulk import BulkInsert
from gateway.storage.db import Database
from gateway.storage.direct import Statement
from gateway.storage.models import IdentitySubjectRow
from mutual_recognition import ApprovalPolicy
from mutual_recognition import duplicates as dup
from mutual_recognition.identity import CREDIT_CODE_ALPHABET, credit_code_check_char

SIZES = (10_000, 100_000)
BATCH = 100
WARMUP = 100
CHUNK = 20_000
PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV
BOXES: dict[str, tuple[float, float, float, float]] = {
    "310000": (30.70, 31.90, 120.85, 122.00),
    "320000": (30.75, 35.10, 116.30, 121.90),
    "330000": (27.00, 31.20, 118.00, 122.90),
    "340000": (29.40, 34.70, 114.90, 119.70),
}
_TABLE = IdentitySubjectRow.__table__
assert isinstance(_TABLE, Table)
_COLUMNS = tuple(c.name for c in _TABLE.columns)
_BULK = BulkInsert(IdentitySubjectRow, _COLUMNS)
# The raw limit's statements: what detection issues, compiled once and run on the DBAPI cursor
# (gateway.storage.direct), as the duplicate store runs its own.
_BY_ACCOUNT = select(_TABLE).where(_TABLE.c.grid_account == bindparam("account"))
_CELL = _TABLE.c.cell
_IN_CELLS = select(_TABLE).where(
    _CELL.in_([bindparam(f"cell{i}", type_=_CELL.type) for i in range(4)])
)
_RAW_BY_ACCOUNT = Statement(_BY_ACCOUNT)
_RAW_IN_CELLS = Statement(_IN_CELLS)
_RAW_INSERT = Statement(insert(_TABLE).values({c: bindparam(c) for c in _COLUMNS}))


class Keys:
    """Distinct credit codes, grid accounts and project ids, and sites in the provinces."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def next(self, prefix: str) -> tuple[str, str, str, str, float, float]:
        """(region, project id, credit code, grid account, lat, lon) of a new project."""
        self.n += 1
        n, body = self.n, ""
        for _ in range(9):
            n, digit = divmod(n, 31)
            body = CREDIT_CODE_ALPHABET[digit] + body
        region = self.rng.choice(tuple(BOXES))
        first17 = "91" + region[:2] + "0101" + body
        south, north, west, east = BOXES[region]
        return (
            region,
            f"{prefix}{self.n:07d}",
            first17 + credit_code_check_char(first17),
            f"{prefix_digit(prefix)}{self.n:012d}",
            self.rng.uniform(south, north),
            self.rng.uniform(west, east),
        )

    def capacity(self) -> str:
        return f"{self.rng.randint(30, 50_000) / 10:.1f}"


def prefix_digit(prefix: str) -> str:
    """One digit per key family, so that the accounts of setup and measurement never meet."""
    return {"F": "1", "D": "2", "R": "3", "W": "4"}[prefix]


def load(db: Database, n: int) -> float:
    """Write N region projects into identity_subjects by the bulk path; the seconds it took."""
    keys = Keys(seed=n)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        now = _BULK.stored(conn.dialect, "registered_time", dt.datetime.now(dt.UTC))
        start = _BULK.stored(conn.dialect, "credit_start", dt.date(2024, 1, 1))
        rows: list[tuple[Any, ...]] = []
        for _ in range(n):
            region, pid, code, account, lat, lon = keys.next("F")
            lat_e7, lon_e7 = dup.to_e7(lat), dup.to_e7(lon)
            values = {
                "subject": f"regions/{region}/projects/{pid}",
                "kind": "project",
                "region": region,
                "scheme": None,
                "credit_code": code,
                "grid_account": account,
                "lat_e7": lat_e7,
                "lon_e7": lon_e7,
                "cell": dup.cell_of_e7(lat_e7, lon_e7),
                "category": "SCENARIO_CATEGORY_DISTRIBUTED_PV",
                "capacity_w": str(int(float(keys.capacity()) * 1000)),
                "registered_time": now,
                "credit_start": start,
                "credit_end": None,
                "title": f"pv {pid}",
                "owner": f"owner {pid}",
            }
            rows.append(tuple(values[c] for c in _COLUMNS))
            if len(rows) == CHUNK:
                _BULK.run(conn, rows)
                rows = []
        _BULK.run(conn, rows)
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE identity_subjects"))
    return time.perf_counter() - started


def projects(keys: Keys, prefix: str, count: int) -> list[records_pb2.Project]:
    """COUNT new PV projects with every identity key, 15 % filed in GCJ-02 and 5 % in BD-09."""
    made = []
    for _ in range(count):
        region, pid, code, account, lat, lon = keys.next(prefix)
        p = records_pb2.Project(
            name=f"regions/{region}/projects/{pid}",
            region=region,
            project_id=pid,
            title=f"pv {pid}",
            owner=f"owner {pid}",
        )
        p.capacity.value, p.capacity.unit = keys.capacity(), "kW"
        p.crediting_period.start.year, p.crediting_period.start.month = 2024, 1
        p.crediting_period.start.day = 1
        roll = keys.rng.random()
        datum = records_pb2.COORDINATE_DATUM_WGS84
        if roll < 0.20:
            lat, lon = dup.from_wgs84_to_gcj02(lat, lon)
            datum = records_pb2.COORDINATE_DATUM_GCJ02
            if roll < 0.05:
                lat, lon = dup.gcj02_to_bd09(lat, lon)
                datum = records_pb2.COORDINATE_DATUM_BD09
        p.identity.owner_credit_code, p.identity.grid_account = code, account
        p.identity.site.latitude, p.identity.site.longitude = f"{lat:.6f}", f"{lon:.6f}"
        p.identity.site.datum = datum
        made.append(p)
    return made


def detection_batch(
    db: Database, batch: list[records_pb2.Project], approvals: ApprovalPolicy
) -> float:
    """Time of ``project_accepted`` over one batch, in its own transaction."""
    with db.transaction() as session:
        conn = session.connection()
        detector = Detector(
            conn,
            audit_log(conn),
            approvals,
            now=dt.datetime.now(dt.UTC),
            actor_region=batch[0].region,
            actor="registry",
        )
        started = time.perf_counter()
        for p in batch:
            opened = detector.project_accepted(p, PV)
            assert not opened, opened  # distinct keys, sites far apart: no match expected
        return time.perf_counter() - started


Prepared = list[tuple[dict[str, Any], dict[str, int]]]


def prepare_raw(batch: list[records_pb2.Project]) -> Prepared:
    """The subject rows and cell parameters of the raw statements, computed before the clock."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for p in batch:
        values = project_subject(p, PV, now)
        cells = dup.cells_within(
            values["lat_e7"] / 1e7, values["lon_e7"] / 1e7, dup.PROBABLE_RADIUS_M
        )
        assert len(cells) <= 4
        slots = [*cells, *(cells[-1] for _ in range(4 - len(cells)))]
        rows.append((values, {f"cell{i}": c for i, c in enumerate(slots)}))
    return rows


def raw_batch(db: Database, rows: Prepared) -> float:
    """Time of the same two SELECTs and a plain INSERT of each subject row, in a transaction."""
    with db.transaction() as session:
        conn = session.connection()
        started = time.perf_counter()
        for values, cells in rows:
            _RAW_BY_ACCOUNT.rows(conn, {"account": values["grid_account"]})
            _RAW_IN_CELLS.rows(conn, cells)
            _RAW_INSERT.execute(conn, values)
        return time.perf_counter() - started


def plans(db: Database) -> str:
    """How the backend runs the two look-ups (asserted: by an index, never a scan)."""
    cells = dup.cells_within(31.1, 121.1, dup.PROBABLE_RADIUS_M)
    found = []
    with db.engine.connect() as conn:
        for label, stmt, params in (
            ("account", _BY_ACCOUNT, {"account": "0310012345678"}),
            ("cells", _IN_CELLS, {f"cell{i}": c for i, c in enumerate([*cells, *cells][:4])}),
        ):
            bound = stmt.params(**params)
            sql = str(bound.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            if conn.dialect.name == "postgresql":
                lines = [r[0] for r in conn.execute(text(f"EXPLAIN {sql}"))]
            else:
                lines = [r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            plan = "; ".join(
                re.sub(r"\s*\(cost=[^)]*\)", "", line).strip(" ->")
                for line in lines
                if "Scan" in line or "SEARCH" in line or "SCAN" in line
            )
            assert "Seq Scan" not in plan and "SCAN identity_subjects" not in plan, plan
            found.append(f"{label}: {plan}")
    return " | ".join(found)


@dataclass
class Figures:
    size: int
    load_s: float
    detection_us: float
    raw_us: float


def batches(items: list[records_pb2.Project]) -> list[list[records_pb2.Project]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def measure(label: str, db: Database, size: int, measured: int) -> Figures:
    db.upgrade()
    load_s = load(db, size)
    keys = Keys(seed=size + 1)
    approvals = ApprovalPolicy()
    for batch in batches(projects(keys, "W", WARMUP)):
        detection_batch(db, batch, approvals)
    for batch in batches(projects(keys, "W", WARMUP)):
        raw_batch(db, prepare_raw(batch))
    detect = raw = 0.0
    # Batch by batch in turn, so that the load of a shared machine weighs on both alike.
    measured_batches = batches(projects(keys, "D", measured))
    raw_batches = [prepare_raw(b) for b in batches(projects(keys, "R", measured))]
    for mine, theirs in zip(measured_batches, raw_batches, strict=True):
        detect += detection_batch(db, mine, approvals)
        raw += raw_batch(db, theirs)
    figures = Figures(size, load_s, detect / measured * 1e6, raw / measured * 1e6)
    print(
        f"{label} {size:>7,} on file (bulk load {load_s:5.1f} s): detection "
        f"{figures.detection_us:6.0f} µs/project | raw two indexed SELECTs + INSERT "
        f"{figures.raw_us:6.0f} µs | ratio {figures.detection_us / figures.raw_us:4.2f}",
        flush=True,
    )
    if size == SIZES[-1]:
        print(f"{label} plans at {size:,}: {plans(db)}", flush=True)
    return figures


def growth(label: str, figures: list[Figures]) -> None:
    if len(figures) < 2:
        return
    small, large = figures[0], figures[-1]
    detection = large.detection_us / small.detection_us
    raw = large.raw_us / small.raw_us
    print(
        f"{label} growth {large.size // 1000}k/{small.size // 1000}k: detection x{detection:.2f}, "
        f"raw x{raw:.2f}; detection's over the raw statements' x{detection / raw:.2f}",
        flush=True,
    )


def sqlite_databases(tmp: str) -> Iterator[tuple[int, Database]]:
    for size in SIZES:
        path = Path(tmp) / f"bench-dup-{size}.sqlite3"
        db = Database.from_url(f"sqlite:///{path}")
        try:
            yield size, db
        finally:
            db.dispose()
            path.unlink(missing_ok=True)


def main() -> None:
    args = [a for a in sys.argv[1:] if a.isdigit()]
    measured = int(args[0] if args else os.environ.get("YRDGW_BENCH_DUPLICATES_MEASURED", "2000"))
    configure_logging("console", "warning")
    print(
        f"duplicates: detection per accepted project, {measured:,} measured in transactions of "
        f"{BATCH} (clock around the calls); raw = the same two indexed SELECTs + INSERT",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="yrdgw-bench-dup-") as tmp:
        found = [measure("SQLite    ", db, size, measured) for size, db in sqlite_databases(tmp)]
        growth("SQLite    ", found)
    found = []
    for size in SIZES:
        with postgres_schema() as pg:
            if pg is None:
                break
            found.append(measure("PostgreSQL", pg, size, measured))
    growth("PostgreSQL", found)


if __name__ == "__main__":
    main()
