"""Batch reconciliation of a region's holdings with the ledger.

A registry submits a snapshot of the blocks it believes it holds and the transfers it believes
completed since its previous snapshot. In the same transaction, under the audit-head lock that
every writer of blocks and transfers takes, the gateway copies its own side (the blocks the ledger
gives that region) into the same staging table and notes the audit log's size. A run then compares
the two sides in SQL, in the ITL's stages:

1. totals per origin and state;
2. unit blocks: serial ranges only the registry claims, only the ledger gives it, or on which the
   two disagree about the state — merged into maximal ranges, never one row per gram;
3. transfers: completed in the ledger (by the audit log, between the previous snapshot and this one)
   but unknown to the registry, and the reverse.

The report is signed by the gateway key, stored, and appended to the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import structlog
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Select, func, insert, literal, or_, select, text
from sqlalchemy.orm import Session
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from gateway import errors
from gateway.security.identity import Identity, Role
from gateway.security.reports import sign_report
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.storage.audit_log import audit_log
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    HoldingsSnapshotRow,
    ReconciliationReportRow,
    SnapshotBlockRow,
    SnapshotTransferRow,
    TransferRow,
    UnitBlockRow,
)

log = structlog.get_logger("yrdgw.reconciliation")

REGISTRY, LEDGER = "registry", "ledger"
STATE_OF_PROTO: dict[int, str] = {
    records_pb2.UNIT_BLOCK_STATE_ACTIVE: "active",
    records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER: "reserved",
    records_pb2.UNIT_BLOCK_STATE_RETIRED: "retired",
    records_pb2.UNIT_BLOCK_STATE_CANCELLED: "cancelled",
}
PROTO_OF_STATE = {v: k for k, v in STATE_OF_PROTO.items()}
Kind = reconciliation_pb2.DiscrepancyKind
Status = reconciliation_pb2.ReconciliationStatus
STAGES = ("totals", "unit blocks", "transfers")
MAX_SNAPSHOT_BLOCKS = 2_000_000
_INSERT_CHUNK = 5000
_TRANSFER_NAME = re.compile(r"^regions/[0-9]{6}/transfers/[^/]{1,120}$")
_REGION = re.compile(r"^[0-9]{6}$")

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as a run moves through its stages."""


@dataclass(frozen=True, slots=True)
class HeldRange:
    """One block a registry says it holds: origin, serials (grams, inclusive) and ledger state."""

    origin: str
    start: int
    end: int
    state: str

    @property
    def grams(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """A stored snapshot."""

    name: str
    region: str
    snapshot_time: dt.datetime
    block_count: int
    quantity_grams: int


@dataclass(slots=True)
class SnapshotBuilder:
    """Collects and checks a snapshot's parts as they stream in (before any database work)."""

    snapshot_time: dt.datetime | None = None
    transfer_names: set[str] = field(default_factory=set)
    blocks: list[HeldRange] = field(default_factory=list)

    def header(self, snapshot_time: dt.datetime, transfer_names: Iterable[str]) -> None:
        if self.snapshot_time is not None:
            raise errors.SnapshotInvalid("the snapshot header comes once, first")
        self.snapshot_time = snapshot_time
        for name in transfer_names:
            if not _TRANSFER_NAME.match(name):
                raise errors.SnapshotInvalid(
                    f"{name!r} is not a transfer name (regions/{{source}}/transfers/{{id}})",
                    field_errors={"header.completed_transfer_ids": name[:200]},
                )
            self.transfer_names.add(name)

    def add(self, blocks: Iterable[tuple[str, int, int, int]]) -> None:
        """Add (origin, start, end, proto state) tuples."""
        if self.snapshot_time is None:
            raise errors.SnapshotInvalid("the snapshot header must come first")
        for origin, start, end, state in blocks:
            where = f"block {len(self.blocks)}"
            if not _REGION.match(origin):
                raise errors.SnapshotInvalid(
                    f"{where}: origin must be a six-digit region code",
                    field_errors={"blocks.origin_region": where},
                )
            if not 0 <= start <= end:
                raise errors.SnapshotInvalid(
                    f"{where}: serials need 0 <= start <= end",
                    field_errors={"blocks.serials": where},
                )
            if state not in STATE_OF_PROTO:
                raise errors.SnapshotInvalid(
                    f"{where}: the state must be set", field_errors={"blocks.state": where}
                )
            self.blocks.append(HeldRange(origin, start, end, STATE_OF_PROTO[state]))
        if len(self.blocks) > MAX_SNAPSHOT_BLOCKS:
            raise errors.SnapshotInvalid(f"a snapshot holds at most {MAX_SNAPSHOT_BLOCKS} blocks")


class ReconciliationService:
    """Stores snapshots, runs the staged comparison, signs and keeps the reports."""

    def __init__(
        self, db: Database, gateway_key: ed25519.Ed25519PrivateKey, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.gateway_key = gateway_key
        self.clock = clock

    # -- snapshots ------------------------------------------------------------------------------

    def submit(self, caller: Identity, snapshot: SnapshotBuilder) -> SnapshotSummary:
        """Store a registry's snapshot and the ledger's side of it, in one transaction."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise errors.RoleNotAllowed("only a registry submits its holdings")
        return self.store_snapshot(caller.region, snapshot, submitted_by=str(caller))

    def store_snapshot(
        self, region: str, snapshot: SnapshotBuilder, *, submitted_by: str
    ) -> SnapshotSummary:
        """Store a snapshot for ``region``: the registry's, or one an operator loads from a file."""
        if snapshot.snapshot_time is None:
            raise errors.SnapshotInvalid("the snapshot has no header")
        now = self.clock()
        if snapshot.snapshot_time > now + dt.timedelta(minutes=5):
            raise errors.SnapshotInvalid(
                "the snapshot time is in the future",
                field_errors={"header.snapshot_time": "in the future"},
            )
        quantity = sum(b.grams for b in snapshot.blocks)
        with self.db.transaction() as session:
            # Every writer of blocks and transfers holds this lock: both sides describe one moment.
            audit = audit_log(session.connection())
            size = audit.sequence
            row = HoldingsSnapshotRow(
                region=region,
                snapshot_time=snapshot.snapshot_time,
                received_at=now,
                audit_sequence=size,
                submitted_by=submitted_by,
                block_count=len(snapshot.blocks),
                quantity_grams=quantity,
            )
            session.add(row)
            session.flush()
            sid = row.id
            for i in range(0, len(snapshot.blocks), _INSERT_CHUNK):
                session.execute(
                    insert(SnapshotBlockRow),
                    [
                        {
                            "snapshot_id": sid,
                            "side": REGISTRY,
                            "origin_region": b.origin,
                            "serial_start": b.start,
                            "serial_end": b.end,
                            "state": b.state,
                        }
                        for b in snapshot.blocks[i : i + _INSERT_CHUNK]
                    ],
                )
            overlap = _first_overlap(session, sid)
            if overlap is not None:
                origin, start = overlap
                raise errors.SnapshotInvalid(
                    f"blocks of {origin} overlap at serial {start}: each serial is held once",
                    field_errors={"blocks": f"{origin}:{start}"},
                )
            session.execute(
                insert(SnapshotBlockRow).from_select(
                    ["snapshot_id", "side", "origin_region", "serial_start", "serial_end", "state"],
                    select(
                        literal(sid),
                        literal(LEDGER),
                        UnitBlockRow.origin_region,
                        UnitBlockRow.serial_start,
                        UnitBlockRow.serial_end,
                        UnitBlockRow.state,
                    ).where(UnitBlockRow.holder_region == region),
                )
            )
            if snapshot.transfer_names:
                session.execute(
                    insert(SnapshotTransferRow),
                    [{"snapshot_id": sid, "transfer_name": n} for n in snapshot.transfer_names],
                )
            name = f"regions/{region}/snapshots/{sid}"
            audit.append(
                kind="reconciliation.snapshot",
                subject=name,
                actor_region=region,
                actor=submitted_by,
                detail={
                    "snapshot_time": snapshot.snapshot_time.isoformat(),
                    "blocks": len(snapshot.blocks),
                    "quantity_grams": quantity,
                    "completed_transfers": sorted(snapshot.transfer_names),
                },
                now=now,
            )
        log.info("reconcile.snapshot", snapshot=name, blocks=len(snapshot.blocks), grams=quantity)
        return SnapshotSummary(name, region, snapshot.snapshot_time, len(snapshot.blocks), quantity)

    def ledger_holdings(self, region: str) -> tuple[dt.datetime, list[HeldRange], list[str]]:
        """What the ledger says ``region`` holds now, and every transfer completed for it: the
        snapshot a registry in perfect agreement would submit."""
        with self.db.transaction() as session:
            blocks = [
                HeldRange(*r)
                for r in session.execute(
                    select(
                        UnitBlockRow.origin_region,
                        UnitBlockRow.serial_start,
                        UnitBlockRow.serial_end,
                        UnitBlockRow.state,
                    )
                    .where(UnitBlockRow.holder_region == region)
                    .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
                )
            ]
            names = list(
                session.execute(
                    _completed_for(region, upto=2**62)
                    .with_only_columns(AuditEntryRow.subject)
                    .order_by(AuditEntryRow.sequence)
                ).scalars()
            )
        return self.clock(), blocks, names

    # -- runs -----------------------------------------------------------------------------------

    def run(
        self, caller: Identity, region: str, progress: Progress | None = None
    ) -> reconciliation_pb2.ReconciliationReport:
        """Reconcile ``region``'s latest snapshot; store, sign and audit the report."""
        region = region or (caller.region or "")
        _authorise(caller, region)
        with self.db.transaction() as session:
            snap = _latest_snapshot(session, region)
        if snap is None:
            raise errors.SnapshotMissing(
                f"{region} has submitted no holdings snapshot", metadata={"region": region}
            )
        return self._run(caller, snap, progress)

    def run_scheduled(
        self, regions: Sequence[str]
    ) -> list[reconciliation_pb2.ReconciliationReport]:
        """The scheduled job: every region with a new snapshot is reconciled; a region whose latest
        snapshot was reconciled already gets a MANUAL_INTERVENTION_REQUIRED report (its registry
        did not send a fresh one); a region that never sent one is skipped with a log line."""
        gateway = Identity(Role.GATEWAY, None)
        reports = []
        for region in regions:
            with self.db.transaction() as session:
                snap = _latest_snapshot(session, region)
                done = (
                    snap is not None
                    and session.execute(
                        select(func.count())
                        .select_from(ReconciliationReportRow)
                        .where(ReconciliationReportRow.snapshot_id == snap.id)
                    ).scalar_one()
                    > 0
                )
            if snap is None:
                log.info("reconcile.skipped", region=region, reason="no snapshot ever submitted")
                continue
            if done:
                report = self._report(region, snap, [], stale=True)
                reports.append(self._store(gateway, snap, report))
                continue
            reports.append(self._run(gateway, snap))
        return reports

    def _run(
        self, caller: Identity, snap: HoldingsSnapshotRow, progress: Progress | None = None
    ) -> reconciliation_pb2.ReconciliationReport:
        found: list[reconciliation_pb2.Discrepancy] = []
        with self.db.transaction() as session:
            previous = session.execute(
                select(func.max(HoldingsSnapshotRow.audit_sequence)).where(
                    HoldingsSnapshotRow.region == snap.region,
                    HoldingsSnapshotRow.id < snap.id,
                )
            ).scalar()
            stages: list[Callable[[], list[reconciliation_pb2.Discrepancy]]] = [
                lambda: compare_totals(session, snap.id),
                lambda: compare_ranges(session, snap.id),
                lambda: compare_transfers(
                    session, snap.id, snap.region, previous or 0, snap.audit_sequence
                ),
            ]
            for i, (stage, compare) in enumerate(zip(STAGES, stages, strict=True)):
                if progress:
                    progress(stage, i, len(STAGES))
                found += compare()
            if progress:
                progress("done", len(STAGES), len(STAGES))
        report = self._report(snap.region, snap, found, stale=False)
        return self._store(caller, snap, report)

    def _report(
        self,
        region: str,
        snap: HoldingsSnapshotRow,
        found: list[reconciliation_pb2.Discrepancy],
        *,
        stale: bool,
    ) -> reconciliation_pb2.ReconciliationReport:
        report = reconciliation_pb2.ReconciliationReport(region=region, discrepancies=found)
        report.snapshot_time.FromDatetime(snap.snapshot_time)
        kinds = {d.kind for d in found}
        if stale:
            report.status = Status.RECONCILIATION_STATUS_MANUAL_INTERVENTION_REQUIRED
        elif Kind.DISCREPANCY_KIND_TOTAL_MISMATCH in kinds:
            report.status = Status.RECONCILIATION_STATUS_TOTALS_INCONSISTENT
        elif kinds & {
            Kind.DISCREPANCY_KIND_REGISTRY_ONLY,
            Kind.DISCREPANCY_KIND_LEDGER_ONLY,
            Kind.DISCREPANCY_KIND_STATE_MISMATCH,
        }:
            report.status = Status.RECONCILIATION_STATUS_UNIT_BLOCKS_INCONSISTENT
        elif kinds:
            report.status = Status.RECONCILIATION_STATUS_TRANSFERS_INCONSISTENT
        else:
            report.status = Status.RECONCILIATION_STATUS_COMPLETED
        return report

    def _store(
        self,
        caller: Identity,
        snap: HoldingsSnapshotRow,
        report: reconciliation_pb2.ReconciliationReport,
    ) -> reconciliation_pb2.ReconciliationReport:
        now = self.clock()
        status = Status.Name(report.status).removeprefix("RECONCILIATION_STATUS_")
        with self.db.transaction() as session:
            audit = audit_log(session.connection())
            row = ReconciliationReportRow(
                name="",
                region=snap.region,
                snapshot_id=snap.id,
                status=status,
                finished_at=now,
                body=b"",
            )
            session.add(row)
            session.flush()
            report.name = row.name = f"reconciliations/{row.id}"
            report.finish_time.FromDatetime(now)
            sign_report(self.gateway_key, report)
            row.body = report.SerializeToString()
            audit.append(
                kind="reconciliation.report",
                subject=report.name,
                actor_region=caller.region or "",
                actor=caller.actor,
                detail={
                    "region": snap.region,
                    "snapshot": f"regions/{snap.region}/snapshots/{snap.id}",
                    "status": status,
                    "counts": discrepancy_counts(report),
                    "report_sha256": hashlib.sha256(row.body).hexdigest(),
                },
                now=now,
            )
        log.info(
            "reconcile.report",
            report=report.name,
            region=snap.region,
            status=status,
            discrepancies=len(report.discrepancies),
        )
        return report

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> reconciliation_pb2.ReconciliationReport:
        with self.db.transaction() as session:
            body = session.execute(
                select(ReconciliationReportRow.body).where(ReconciliationReportRow.name == name)
            ).scalar_one_or_none()
        if body is None:
            raise errors.ReportNotFound(f"no report {name!r}", metadata={"name": name[:300]})
        return reconciliation_pb2.ReconciliationReport.FromString(body)

    def list(
        self, *, region: str = "", page_size: int = 0, before: int = 0
    ) -> tuple[list[reconciliation_pb2.ReconciliationReport], int]:
        """Reports newest first; returns the page and the id to continue before (0 at the end)."""
        limit = page_limit(page_size, maximum=500, default=50)
        stmt = (
            select(ReconciliationReportRow.id, ReconciliationReportRow.body)
            .order_by(ReconciliationReportRow.id.desc())
            .limit(limit + 1)
        )
        if before:
            stmt = stmt.where(ReconciliationReportRow.id < before)
        if region:
            stmt = stmt.where(ReconciliationReportRow.region == region)
        with self.db.transaction() as session:
            rows, last = page_of(session.execute(stmt).all(), limit)
        reports = [reconciliation_pb2.ReconciliationReport.FromString(b) for _, b in rows]
        return reports, (last[0] if last is not None else 0)


def _authorise(caller: Identity, region: str) -> None:
    if not _REGION.match(region):
        raise errors.InvalidArgument(
            "region must be a six-digit code", field_errors={"region": region[:20]}
        )
    if caller.role is Role.GATEWAY:
        return
    if caller.role is not Role.ADMIN:
        raise errors.RoleNotAllowed("administrators run reconciliations")
    if caller.region != region:
        raise errors.WrongRegion(
            f"an administrator of {caller.region} cannot reconcile {region}",
            metadata={"region": region},
        )


def _latest_snapshot(session: Session, region: str) -> HoldingsSnapshotRow | None:
    return session.execute(
        select(HoldingsSnapshotRow)
        .where(HoldingsSnapshotRow.region == region)
        .order_by(HoldingsSnapshotRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def discrepancy_counts(report: reconciliation_pb2.ReconciliationReport) -> dict[str, int]:
    """Number of discrepancies per kind (short kind names), kinds with none left out."""
    counts: dict[str, int] = {}
    for d in report.discrepancies:
        key = Kind.Name(d.kind).removeprefix("DISCREPANCY_KIND_")
        counts[key] = counts.get(key, 0) + 1
    return counts


def _first_overlap(session: Session, sid: int) -> tuple[str, int] | None:
    row = session.execute(text(_OVERLAP), {"sid": sid, "side": REGISTRY}).first()
    return None if row is None else (row[0], row[1])


_OVERLAP = """
SELECT o, s FROM (
  SELECT origin_region AS o, serial_start AS s,
         MAX(serial_end) OVER (
           PARTITION BY origin_region ORDER BY serial_start, serial_end
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM snapshot_blocks WHERE snapshot_id = :sid AND side = :side
) t WHERE reach >= s ORDER BY o, s LIMIT 1
"""


# -- stage 1: totals -----------------------------------------------------------------------------

_TOTALS = """
SELECT origin_region, state,
       SUM(CASE WHEN side = 'registry' THEN serial_end - serial_start + 1 ELSE 0 END) AS reg,
       SUM(CASE WHEN side = 'ledger' THEN serial_end - serial_start + 1 ELSE 0 END) AS led
FROM snapshot_blocks WHERE snapshot_id = :sid
GROUP BY origin_region, state
HAVING SUM(CASE WHEN side = 'registry' THEN serial_end - serial_start + 1 ELSE 0 END)
    <> SUM(CASE WHEN side = 'ledger' THEN serial_end - serial_start + 1 ELSE 0 END)
ORDER BY origin_region, state
"""


def compare_totals(session: Session, sid: int) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 1: grams per origin and state, registry against ledger."""
    return [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TOTAL_MISMATCH,
            origin_region=origin,
            quantity_grams=abs(int(reg) - int(led)),
            detail=f"{state}: registry {int(reg)} g, ledger {int(led)} g",
        )
        for origin, state, reg, led in session.execute(text(_TOTALS), {"sid": sid})
    ]


# -- stage 2: serial ranges ----------------------------------------------------------------------

# A block both sides hold identically (same origin, serials and state) cannot differ, and blocks of
# one side never overlap, so only the unmatched blocks are compared. Their boundaries cut the
# serial line into elementary segments; on each segment each side has at most one block. The block
# covering a segment is the last one that started at or before it: carried forward with a running
# count of block starts (a group number) and a window over that group. Differing segments are
# classified, then adjacent segments of the same kind and states are merged (gaps and islands).
_RANGES = """
WITH unmatched AS (
  SELECT s.side, s.origin_region, s.serial_start, s.serial_end, s.state
  FROM snapshot_blocks s
  WHERE s.snapshot_id = :sid AND NOT EXISTS (
    SELECT 1 FROM snapshot_blocks m
    WHERE m.snapshot_id = :sid
      AND m.side = CASE s.side WHEN 'registry' THEN 'ledger' ELSE 'registry' END
      AND m.origin_region = s.origin_region AND m.serial_start = s.serial_start
      AND m.serial_end = s.serial_end AND m.state = s.state)
),
ev AS (
  SELECT origin_region AS o, serial_start AS p,
         CASE WHEN side = 'registry' THEN serial_end END AS r_end,
         CASE WHEN side = 'registry' THEN state END AS r_state,
         CASE WHEN side = 'ledger' THEN serial_end END AS l_end,
         CASE WHEN side = 'ledger' THEN state END AS l_state
  FROM unmatched
  UNION ALL
  SELECT origin_region, serial_end + 1, NULL, NULL, NULL, NULL FROM unmatched
),
pts AS (
  SELECT o, p, MAX(r_end) AS r_end, MAX(r_state) AS r_state,
         MAX(l_end) AS l_end, MAX(l_state) AS l_state
  FROM ev GROUP BY o, p
),
carried AS (
  SELECT o, p, LEAD(p) OVER (PARTITION BY o ORDER BY p) - 1 AS e, r_end, r_state, l_end, l_state,
         COUNT(r_end) OVER (PARTITION BY o ORDER BY p
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rg,
         COUNT(l_end) OVER (PARTITION BY o ORDER BY p
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS lg
  FROM pts
),
segs AS (
  SELECT o, p AS s, e,
         MAX(r_end) OVER (PARTITION BY o, rg) AS r_end,
         MAX(r_state) OVER (PARTITION BY o, rg) AS r_state,
         MAX(l_end) OVER (PARTITION BY o, lg) AS l_end,
         MAX(l_state) OVER (PARTITION BY o, lg) AS l_state
  FROM carried
),
cls AS (
  SELECT o, s, e,
         CASE WHEN r_end >= s THEN r_state END AS rs,
         CASE WHEN l_end >= s THEN l_state END AS ls
  FROM segs WHERE e IS NOT NULL
),
diff AS (
  SELECT o, s, e, rs, ls,
         CASE WHEN rs IS NULL THEN 'LEDGER_ONLY'
              WHEN ls IS NULL THEN 'REGISTRY_ONLY'
              ELSE 'STATE_MISMATCH' END AS kind
  FROM cls
  WHERE (rs IS NULL AND ls IS NOT NULL) OR (rs IS NOT NULL AND ls IS NULL) OR rs <> ls
),
marked AS (
  SELECT o, s, e, rs, ls, kind,
         CASE WHEN LAG(e) OVER (PARTITION BY o, kind, COALESCE(rs, ''), COALESCE(ls, '')
                                ORDER BY s) = s - 1 THEN 0 ELSE 1 END AS brk
  FROM diff
),
grouped AS (
  SELECT o, s, e, rs, ls, kind,
         SUM(brk) OVER (PARTITION BY o, kind, COALESCE(rs, ''), COALESCE(ls, '') ORDER BY s
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS g
  FROM marked
)
SELECT kind, o, rs, ls, MIN(s) AS lo, MAX(e) AS hi
FROM grouped GROUP BY kind, o, rs, ls, g
ORDER BY kind, o, rs, ls, lo
"""

_RANGE_KIND = {
    "REGISTRY_ONLY": Kind.DISCREPANCY_KIND_REGISTRY_ONLY,
    "LEDGER_ONLY": Kind.DISCREPANCY_KIND_LEDGER_ONLY,
    "STATE_MISMATCH": Kind.DISCREPANCY_KIND_STATE_MISMATCH,
}


def compare_ranges(session: Session, sid: int) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 2: one discrepancy per kind, origin and pair of states, with its merged ranges."""
    found: dict[tuple[str, str, str | None, str | None], reconciliation_pb2.Discrepancy] = {}
    for kind, origin, rs, ls, lo, hi in session.execute(text(_RANGES), {"sid": sid}):
        key = (kind, origin, rs, ls)
        d = found.get(key)
        if d is None:
            if kind == "REGISTRY_ONLY":
                detail = f"the registry holds these as {rs}; the ledger does not give them to it"
            elif kind == "LEDGER_ONLY":
                detail = f"the ledger gives these to the registry as {ls}; it does not claim them"
            else:
                detail = f"the registry says {rs}, the ledger says {ls}"
            d = found[key] = reconciliation_pb2.Discrepancy(
                kind=_RANGE_KIND[kind], origin_region=origin, detail=detail
            )
        d.ranges.append(records_pb2.SerialRange(start=int(lo), end=int(hi)))
        d.quantity_grams += int(hi) - int(lo) + 1
    return list(found.values())


# -- stage 3: transfers --------------------------------------------------------------------------


# A transfer's completion is an audit entry; the window between two snapshots is a range of audit
# sequence numbers, so a transfer completing while a snapshot is taken falls on exactly one side.
def _completed_for(region: str, upto: int, after: int | None = None) -> Select[str, int]:
    """Transfers completed with ``region`` on either side, by the audit entries of their
    completion: (name, grams), at audit sequences up to ``upto`` (and after ``after``)."""
    entry, transfer = AuditEntryRow, TransferRow
    stmt = (
        select(entry.subject, transfer.quantity_grams)
        .join(transfer, transfer.name == entry.subject)
        .where(
            entry.kind == "transfer.completed",
            entry.sequence <= upto,
            or_(transfer.source_region == region, transfer.destination_region == region),
        )
    )
    return stmt if after is None else stmt.where(entry.sequence > after)


def compare_transfers(
    session: Session, sid: int, region: str, after: int, upto: int
) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 3: transfers completed in the window that the registry does not list, and transfers
    it lists that the ledger has not completed for it (by the snapshot)."""
    listed = select(SnapshotTransferRow.transfer_name).where(SnapshotTransferRow.snapshot_id == sid)
    window = _completed_for(region, upto, after)
    unknown_to_registry = window.where(AuditEntryRow.subject.not_in(listed)).order_by(
        AuditEntryRow.subject
    )
    completed = _completed_for(region, upto).with_only_columns(AuditEntryRow.subject)
    unknown_to_ledger = (
        select(
            SnapshotTransferRow.transfer_name,
            TransferRow.state,
            func.coalesce(TransferRow.quantity_grams, 0),
        )
        .outerjoin(TransferRow, TransferRow.name == SnapshotTransferRow.transfer_name)
        .where(
            SnapshotTransferRow.snapshot_id == sid,
            SnapshotTransferRow.transfer_name.not_in(completed),
        )
        .order_by(SnapshotTransferRow.transfer_name)
    )
    found = [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY,
            transfer_ids=[name],
            quantity_grams=int(grams),
            detail="completed in the ledger; the registry does not list it",
        )
        for name, grams in session.execute(unknown_to_registry)
    ]
    found += [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_LEDGER,
            transfer_ids=[name],
            quantity_grams=int(grams),
            detail=(
                "no such transfer in the ledger"
                if state is None
                else f"the ledger has it {state}, not completed for {region}"
            ),
        )
        for name, state, grams in session.execute(unknown_to_ledger)
    ]
    return found
