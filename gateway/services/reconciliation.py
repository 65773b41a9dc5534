"""Batch reconciliation of a region's holdings with the ledger.

A registry submits a snapshot of the blocks it believes it holds and the transfers it believes
completed since its previous snapshot. In the same transaction, under the audit-head lock that
every writer of blocks and transfers takes, the gateway compares them with its own side (the
blocks the ledger gives that region), keeps the totals of both sides and the blocks they do not
hold alike, and notes the audit log's size. A run then compares
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from cryptography.hazmat.primitives.asymmetric import ed25519
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from gateway import errors
from gateway.contract import reconciliation_name, snapshot_name
from gateway.security.audit_chain import DETAIL_RULE, totals_digest
from gateway.security.identity import Identity, Role
from gateway.security.reports import sign_report
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.snapshots import REGION_CODE, SnapshotBuilder
from gateway.storage.audit_log import audit_log
from gateway.storage.db import Database
from gateway.storage.models import HoldingsSnapshotRow
from gateway.storage.reconciliation_store import ReconciliationStore

log = structlog.get_logger("yrdgw.reconciliation")

Kind = reconciliation_pb2.DiscrepancyKind
Status = reconciliation_pb2.ReconciliationStatus
STAGES = ("totals", "unit blocks", "transfers")
MAX_SNAPSHOT_AHEAD = dt.timedelta(minutes=5)
"""How far after the gateway's clock a snapshot_time may be."""
DEFAULT_REPORT_PAGE, MAX_REPORT_PAGE = 50, 500

Phases = Callable[[dict[str, float]], None]
"""``observe(seconds)``: a stored snapshot's phases — ``receive`` (the stream read and checked,
into the spool), ``stage`` (the rows on the backend's bulk path into the staging table) and
``difference`` (the set-based keeping of what differs, the totals, the audit entry, the commit)."""
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


class ReconciliationService:
    """Stores snapshots, runs the staged comparison, signs and keeps the reports."""

    def __init__(
        self, db: Database, gateway_key: ed25519.Ed25519PrivateKey, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.gateway_key = gateway_key
        self.clock = clock
        self.observe_phases: Phases | None = None
        """Called with each stored snapshot's phases (the server's metrics)."""

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
        if snapshot.snapshot_time > now + MAX_SNAPSHOT_AHEAD:
            raise errors.SnapshotInvalid(
                "the snapshot time is in the future",
                field_errors={"header.snapshot_time": "in the future"},
            )
        quantity, count = snapshot.quantity_grams, snapshot.block_count
        received = time.perf_counter()
        with snapshot.spool, self.db.transaction() as session:
            store = ReconciliationStore(session)
            store.stage_registry_blocks(snapshot.rows())
            staged = time.perf_counter()
            store.index_staged()
            overlap = None if snapshot.in_order else store.first_overlap()
            if overlap is not None:
                origin, start = overlap
                raise errors.SnapshotInvalid(
                    f"blocks of {origin} overlap at serial {start}: each serial is held once",
                    field_errors={"blocks": f"{origin}:{start}"},
                )
            # Every writer of blocks and transfers holds this lock: both sides describe one moment.
            audit = audit_log(session.connection())
            size = audit.sequence
            sid = store.add_snapshot(
                region=region,
                snapshot_time=snapshot.snapshot_time,
                received_at=now,
                audit_sequence=size,
                submitted_by=submitted_by,
                block_count=count,
                quantity_grams=quantity,
            )
            store.keep_differences(sid, region, snapshot.totals)
            store.add_transfer_names(sid, snapshot.transfer_names)
            kept = store.kept_block_digests(sid)
            name = snapshot_name(region, sid)
            audit.append(
                kind="reconciliation.snapshot",
                subject=name,
                actor_region=region,
                actor=submitted_by,
                detail={
                    # Detail rule 2 (docs/protocol.md §8.3): the rows stored for the snapshot,
                    # each side's kept blocks and the totals, by digest.
                    "v": DETAIL_RULE,
                    "stored_blocks": {side: count for side, (count, _) in kept.items()},
                    "stored_blocks_sha256": {side: digest for side, (_, digest) in kept.items()},
                    "totals_sha256": totals_digest(store.kept_totals(sid)),
                    "snapshot_time": snapshot.snapshot_time.isoformat(),
                    "blocks": count,
                    "quantity_grams": quantity,
                    "completed_transfers": sorted(snapshot.transfer_names),
                },
                now=now,
            )
        phases = {
            "receive": received - snapshot.started,
            "stage": staged - received,
            "difference": time.perf_counter() - staged,
        }
        if self.observe_phases is not None:
            self.observe_phases(phases)
        log.info(
            "reconcile.snapshot",
            snapshot=name,
            blocks=count,
            grams=quantity,
            **{f"{k}_s": round(v, 3) for k, v in phases.items()},
        )
        return SnapshotSummary(name, region, snapshot.snapshot_time, count, quantity)

    def ledger_holdings(self, region: str) -> tuple[dt.datetime, list[HeldRange], list[str]]:
        """What the ledger says ``region`` holds now, and every transfer completed for it: the
        snapshot a registry in perfect agreement would submit."""
        with self.db.transaction() as session:
            store = ReconciliationStore(session)
            blocks = [HeldRange(*r) for r in store.ledger_blocks(region)]
            names = store.completed_transfers(region)
        return self.clock(), blocks, names

    # -- runs -----------------------------------------------------------------------------------

    def run(
        self, caller: Identity, region: str, progress: Progress | None = None
    ) -> reconciliation_pb2.ReconciliationReport:
        """Reconcile ``region``'s latest snapshot; store, sign and audit the report."""
        region = region or (caller.region or "")
        _authorise(caller, region)
        with self.db.transaction() as session:
            snap = ReconciliationStore(session).latest_snapshot(region)
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
                store = ReconciliationStore(session)
                snap = store.latest_snapshot(region)
                done = snap is not None and store.has_report(snap.id)
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
            store = ReconciliationStore(session)
            previous = store.previous_audit_sequence(snap.region, snap.id)
            stages: list[Callable[[], list[reconciliation_pb2.Discrepancy]]] = [
                lambda: compare_totals(store, snap.id),
                lambda: compare_ranges(store, snap.id),
                lambda: compare_transfers(
                    store, snap.id, snap.region, previous, snap.audit_sequence
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
            store = ReconciliationStore(session)
            report_id = store.add_report(
                region=snap.region, snapshot_id=snap.id, status=status, finished_at=now
            )
            report.name = reconciliation_name(report_id)
            report.finish_time.FromDatetime(now)
            sign_report(self.gateway_key, report)
            body = report.SerializeToString()
            store.finish_report(report_id, report.name, body)
            audit.append(
                kind="reconciliation.report",
                subject=report.name,
                actor_region=caller.region or "",
                actor=caller.actor,
                detail={
                    "region": snap.region,
                    "snapshot": snapshot_name(snap.region, snap.id),
                    "status": status,
                    "counts": discrepancy_counts(report),
                    "report_sha256": hashlib.sha256(body).hexdigest(),
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
            body = ReconciliationStore(session).report_body(name)
        if body is None:
            raise errors.ReportNotFound(f"no report {name!r}", metadata={"name": name[:300]})
        return reconciliation_pb2.ReconciliationReport.FromString(body)

    def list(
        self, *, region: str = "", page_size: int = 0, before: int = 0
    ) -> tuple[list[reconciliation_pb2.ReconciliationReport], int]:
        """Reports newest first; returns the page and the id to continue before (0 at the end)."""
        limit = page_limit(page_size, maximum=MAX_REPORT_PAGE, default=DEFAULT_REPORT_PAGE)
        with self.db.transaction() as session:
            found = ReconciliationStore(session).report_page(
                region=region, before=before, limit=limit + 1
            )
        rows, last = page_of(found, limit)
        reports = [reconciliation_pb2.ReconciliationReport.FromString(b) for _, b in rows]
        return reports, (last[0] if last is not None else 0)


def _authorise(caller: Identity, region: str) -> None:
    if not REGION_CODE.fullmatch(region):
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


def discrepancy_counts(report: reconciliation_pb2.ReconciliationReport) -> dict[str, int]:
    """Number of discrepancies per kind (short kind names), kinds with none left out."""
    counts: dict[str, int] = {}
    for d in report.discrepancies:
        key = Kind.Name(d.kind).removeprefix("DISCREPANCY_KIND_")
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- the stages: discrepancies from the store's comparisons ----------------------------------


def compare_totals(store: ReconciliationStore, sid: int) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 1: grams per origin and state, registry against ledger."""
    return [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TOTAL_MISMATCH,
            origin_region=origin,
            quantity_grams=abs(reg - led),
            detail=f"{state}: registry {reg} g, ledger {led} g",
        )
        for origin, state, reg, led in store.totals(sid)
    ]


_RANGE_KIND = {
    "REGISTRY_ONLY": Kind.DISCREPANCY_KIND_REGISTRY_ONLY,
    "LEDGER_ONLY": Kind.DISCREPANCY_KIND_LEDGER_ONLY,
    "STATE_MISMATCH": Kind.DISCREPANCY_KIND_STATE_MISMATCH,
}


def compare_ranges(store: ReconciliationStore, sid: int) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 2: one discrepancy per kind, origin and pair of states, with its merged ranges."""
    found: dict[tuple[str, str, str | None, str | None], reconciliation_pb2.Discrepancy] = {}
    for kind, origin, rs, ls, lo, hi in store.ranges(sid):
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
        d.ranges.append(records_pb2.SerialRange(start=lo, end=hi))
        d.quantity_grams += hi - lo + 1
    return list(found.values())


def compare_transfers(
    store: ReconciliationStore, sid: int, region: str, after: int, upto: int
) -> list[reconciliation_pb2.Discrepancy]:
    """Stage 3: transfers completed in the window that the registry does not list, and transfers
    it lists that the ledger has not completed for it (by the snapshot)."""
    found = [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY,
            transfer_ids=[name],
            quantity_grams=grams,
            detail="completed in the ledger; the registry does not list it",
        )
        for name, grams in store.transfers_unknown_to_registry(sid, region, after, upto)
    ]
    found += [
        reconciliation_pb2.Discrepancy(
            kind=Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_LEDGER,
            transfer_ids=[name],
            quantity_grams=grams,
            detail=(
                "no such transfer in the ledger"
                if state is None
                else f"the ledger has it {state}, not completed for {region}"
            ),
        )
        for name, state, grams in store.transfers_unknown_to_ledger(sid, region, upto)
    ]
    return found
