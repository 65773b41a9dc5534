"""Statements of batch reconciliation: holdings snapshots, the staged comparison in SQL, and the
signed reports. Inside a caller's transaction; never commits.

A snapshot's blocks arrive on the backend's bulk path (COPY, or executemany) in a temporary table
of the transaction; set-based statements then keep, per snapshot, the totals of both sides per
origin and state (``snapshot_totals``) and the blocks that one side holds and the other does not
hold identically (``snapshot_blocks``): a block both hold alike can never differ, and most do.
A registry block that the ledger's blocks inside it tile exactly counts as held alike too, as do
those blocks (where the ledger has split what the registry holds whole); the registry's own
blocks arrive joined into runs (``SnapshotBuilder``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Select,
    String,
    Table,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from gateway.security.audit_chain import SortedRowsDigest
from gateway.storage import reconciliation_sql as sql
from gateway.storage.bulk import BulkInsert
from gateway.storage.models import (
    AuditEntryRow,
    HoldingsSnapshotRow,
    ReconciliationReportRow,
    SnapshotBlockRow,
    SnapshotTotalRow,
    SnapshotTransferRow,
    TransferRow,
    UnitBlockRow,
)

REGISTRY, LEDGER = "registry", "ledger"
"""The two sides of a snapshot's blocks."""
Block = tuple[str, int, int, str]
"""A block one side holds: (origin, first serial, last serial (grams, inclusive), state)."""
BLOCK_COLUMNS = ("origin_region", "serial_start", "serial_end", "state")
"""The columns of a block's row, in :data:`Block`'s order."""


def block_table(name: str, *leading: Column[str]) -> Table:
    """A temporary table of blocks (``leading`` columns, then :data:`BLOCK_COLUMNS`): no log, no
    index while it fills."""
    return Table(
        name,
        MetaData(),
        *leading,
        Column("origin_region", String(6), nullable=False),
        Column("serial_start", BigInteger, nullable=False),
        Column("serial_end", BigInteger, nullable=False),
        Column("state", String(20), nullable=False),
        prefixes=["TEMPORARY"],
    )


_INCOMING = block_table("snapshot_incoming")
"""The registry's blocks while their snapshot is stored."""
_INSERT_INCOMING = BulkInsert(_INCOMING, BLOCK_COLUMNS, binary=True)
_UNMATCHED = block_table("snapshot_unmatched", Column("side", String(8), nullable=False))
"""Each side's blocks that no block of the other side matches exactly, while a snapshot is
stored."""
_TILED = Table(
    "snapshot_tiled",
    MetaData(),
    Column("origin_region", String(6), nullable=False),
    Column("registry_start", BigInteger, nullable=False),
    Column("ledger_start", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
"""Unmatched registry blocks that unmatched ledger blocks tile exactly, pair by pair."""


class ReconciliationStore:
    """Snapshots, comparisons and reports, inside a caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- snapshots ------------------------------------------------------------------------------

    def add_snapshot(
        self,
        *,
        region: str,
        snapshot_time: dt.datetime,
        received_at: dt.datetime,
        audit_sequence: int,
        submitted_by: str,
        block_count: int,
        quantity_grams: int,
    ) -> int:
        """Store a snapshot's header; returns its id."""
        row = HoldingsSnapshotRow(
            region=region,
            snapshot_time=snapshot_time,
            received_at=received_at,
            audit_sequence=audit_sequence,
            submitted_by=submitted_by,
            block_count=block_count,
            quantity_grams=quantity_grams,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def stage_registry_blocks(self, chunks: Iterable[Iterable[Block]]) -> None:
        """Take the registry's (origin, start, end, state) rows, a chunk at a time, into this
        transaction's temporary table (the backend's bulk path, no index while it fills);
        ``index_staged`` then readies it for the comparison, ``keep_differences`` stores what
        differs and drops it."""
        conn = self.session.connection()
        _INCOMING.drop(conn, checkfirst=True)
        _INCOMING.create(conn)
        _INSERT_INCOMING.run_pieces(conn, chunks)

    def index_staged(self) -> None:
        """Ready the staged rows for the set-based statements: an index built once on SQLite (a
        sort, not an insert per row), fresh statistics on PostgreSQL (which hashes instead)."""
        conn = self.session.connection()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(sql.INDEX_INCOMING_SQLITE)
        else:
            conn.exec_driver_sql("ANALYZE snapshot_incoming")

    def first_overlap(self) -> tuple[str, int] | None:
        """(origin, serial) where two of the staged registry blocks first overlap, if any do."""
        row = self.session.execute(text(sql.OVERLAP)).first()
        return None if row is None else (row[0], row[1])

    def keep_differences(
        self, sid: int, region: str, registry_totals: Mapping[tuple[str, str], int]
    ) -> None:
        """Snapshot ``sid`` of ``region``: the staged registry blocks and the blocks the ledger
        gives ``region`` now that the other side does not hold identically (a ledger block held
        and the registry's alike but active count as identical) or tile, and the totals of
        both sides per (origin, state) — the registry's as given (``registry_totals``), the
        ledger's derived (the blocks both hold alike count alike); then the temporary tables
        go."""
        params = {"sid": sid, "region": region}
        conn = self.session.connection()
        sqlite = conn.dialect.name == "sqlite"
        for table in (_UNMATCHED, _TILED):
            table.drop(conn, checkfirst=True)
            table.create(conn)
        for statement in (sql.UNMATCHED_REGISTRY, sql.UNMATCHED_LEDGER):
            self.session.execute(text(statement), params)
        conn.exec_driver_sql(sql.INDEX_UNMATCHED.format(temp="temp." if sqlite else ""))
        if not sqlite:
            conn.exec_driver_sql("ANALYZE snapshot_unmatched")
        self.session.execute(text(sql.TILE))
        for statement in sql.INDEX_TILED_SQLITE if sqlite else ("ANALYZE snapshot_tiled",):
            conn.exec_driver_sql(statement)
        for statement in (sql.KEEP_REGISTRY_ONLY, sql.KEEP_LEDGER_ONLY):
            self.session.execute(text(statement), params)
        for table in (_INCOMING, _UNMATCHED, _TILED):
            table.drop(conn)
        totals = {key: [grams, grams] for key, grams in registry_totals.items()}
        for side, origin, state, grams in self.session.execute(text(sql.KEPT_GRAMS), params):
            pair = totals.setdefault((origin, state), [0, 0])
            if side == REGISTRY:  # held by the registry, not by the ledger
                pair[1] -= int(grams)
            else:
                pair[1] += int(grams)
        rows = [
            {
                "snapshot_id": sid,
                "origin_region": origin,
                "state": state,
                "registry_grams": registry,
                "ledger_grams": ledger,
            }
            for (origin, state), (registry, ledger) in sorted(totals.items())
        ]
        if rows:
            self.session.execute(insert(SnapshotTotalRow), rows)

    def kept_blocks(self, sid: int) -> dict[str, list[Block]]:
        """The blocks ``snapshot_blocks`` keeps for snapshot ``sid``, per side."""
        t = SnapshotBlockRow
        kept: dict[str, list[Block]] = {REGISTRY: [], LEDGER: []}
        stmt = select(t.side, t.origin_region, t.serial_start, t.serial_end, t.state)
        for side, origin, start, end, state in self.session.execute(
            stmt.where(t.snapshot_id == sid)
        ):
            kept.setdefault(side, []).append((origin, int(start), int(end), state))
        return kept

    def kept_block_digests(self, sid: int) -> dict[str, tuple[int, str]]:
        """Per side, how many blocks ``snapshot_blocks`` keeps for snapshot ``sid`` and their
        ``blocks_digest``, streamed in the index's order (blocks of a side never share an origin
        and first serial, so that order is the sorted one): memory flat in their number."""
        t = SnapshotBlockRow
        stmt = (
            select(t.side, t.origin_region, t.serial_start, t.serial_end, t.state)
            .where(t.snapshot_id == sid)
            .order_by(t.side, t.origin_region, t.serial_start)
            .execution_options(yield_per=20_000)
        )
        digests = {REGISTRY: SortedRowsDigest(), LEDGER: SortedRowsDigest()}
        for side, origin, start, end, state in self.session.execute(stmt):
            digests.setdefault(side, SortedRowsDigest()).add((origin, int(start), int(end), state))
        return {side: (d.count, d.hexdigest()) for side, d in digests.items()}

    def kept_totals(self, sid: int) -> list[tuple[str, str, int, int]]:
        """(origin, state, registry grams, ledger grams) rows ``snapshot_totals`` keeps for
        snapshot ``sid``."""
        t = SnapshotTotalRow
        stmt = select(t.origin_region, t.state, t.registry_grams, t.ledger_grams).where(
            t.snapshot_id == sid
        )
        return [(o, st, int(r), int(led)) for o, st, r, led in self.session.execute(stmt)]

    def add_transfer_names(self, sid: int, names: Iterable[str]) -> None:
        """The transfers the registry lists as completed in snapshot ``sid``."""
        rows = [{"snapshot_id": sid, "transfer_name": n} for n in names]
        if rows:
            self.session.execute(insert(SnapshotTransferRow), rows)

    def latest_snapshot(self, region: str) -> HoldingsSnapshotRow | None:
        return self.session.execute(
            select(HoldingsSnapshotRow)
            .where(HoldingsSnapshotRow.region == region)
            .order_by(HoldingsSnapshotRow.id.desc())
            .limit(1)
        ).scalar_one_or_none()

    def previous_audit_sequence(self, region: str, sid: int) -> int:
        """The audit log's size when ``region``'s snapshot before ``sid`` was taken (0: none)."""
        previous = self.session.execute(
            select(func.max(HoldingsSnapshotRow.audit_sequence)).where(
                HoldingsSnapshotRow.region == region, HoldingsSnapshotRow.id < sid
            )
        ).scalar()
        return previous or 0

    # -- the ledger's side now ------------------------------------------------------------------

    def ledger_blocks(self, region: str) -> list[tuple[str, int, int, str]]:
        """(origin, start, end, state) of every block the ledger gives ``region``, in order."""
        rows = self.session.execute(
            select(
                UnitBlockRow.origin_region,
                UnitBlockRow.serial_start,
                UnitBlockRow.serial_end,
                UnitBlockRow.state,
            )
            .where(UnitBlockRow.holder_region == region)
            .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
        )
        return [(o, s, e, st) for o, s, e, st in rows]

    def completed_transfers(self, region: str) -> list[str]:
        """Names of every transfer completed with ``region`` on either side, in audit order."""
        return list(
            self.session.execute(
                _completed_for(region, upto=2**62)
                .with_only_columns(AuditEntryRow.subject)
                .order_by(AuditEntryRow.sequence)
            ).scalars()
        )

    # -- the stages -----------------------------------------------------------------------------

    def totals(self, sid: int) -> list[tuple[str, str, int, int]]:
        """Stage 1: (origin, state, registry grams, ledger grams) where the two differ; held
        grams count as active on both sides."""
        return [
            (origin, state, int(reg), int(led))
            for origin, state, reg, led in self.session.execute(text(sql.TOTALS), {"sid": sid})
        ]

    def ranges(self, sid: int) -> list[tuple[str, str, str | None, str | None, int, int]]:
        """Stage 2: (kind, origin, registry state, ledger state, first, last serial) of each
        maximal range on which the sides differ; kind is REGISTRY_ONLY, LEDGER_ONLY or
        STATE_MISMATCH. Units the ledger holds as held do not differ from the registry's
        active ones."""
        return [
            (kind, origin, rs, ls, int(lo), int(hi))
            for kind, origin, rs, ls, lo, hi in self.session.execute(text(sql.RANGES), {"sid": sid})
        ]

    def transfers_unknown_to_registry(
        self, sid: int, region: str, after: int, upto: int
    ) -> list[tuple[str, int]]:
        """Stage 3: (name, grams) of transfers completed for ``region`` at audit sequences in
        (after, upto] that snapshot ``sid`` does not list."""
        listed = select(SnapshotTransferRow.transfer_name).where(
            SnapshotTransferRow.snapshot_id == sid
        )
        stmt = (
            _completed_for(region, upto, after)
            .where(AuditEntryRow.subject.not_in(listed))
            .order_by(AuditEntryRow.subject)
        )
        return [(name, int(grams)) for name, grams in self.session.execute(stmt)]

    def transfers_unknown_to_ledger(
        self, sid: int, region: str, upto: int
    ) -> list[tuple[str, str | None, int]]:
        """Stage 3: (name, ledger state or None, grams) of transfers snapshot ``sid`` lists that
        the ledger has not completed for ``region`` by audit sequence ``upto``."""
        completed = _completed_for(region, upto).with_only_columns(AuditEntryRow.subject)
        stmt = (
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
        return [(name, state, int(grams)) for name, state, grams in self.session.execute(stmt)]

    # -- reports --------------------------------------------------------------------------------

    def has_report(self, sid: int) -> bool:
        """Whether snapshot ``sid`` was reconciled already."""
        count = self.session.execute(
            select(func.count())
            .select_from(ReconciliationReportRow)
            .where(ReconciliationReportRow.snapshot_id == sid)
        ).scalar_one()
        return bool(count > 0)

    def add_report(
        self, *, region: str, snapshot_id: int, status: str, finished_at: dt.datetime
    ) -> int:
        """Start a report's row (named and filled by ``finish_report``); returns its id."""
        row = ReconciliationReportRow(
            name="",
            region=region,
            snapshot_id=snapshot_id,
            status=status,
            finished_at=finished_at,
            body=b"",
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def finish_report(self, report_id: int, name: str, body: bytes) -> None:
        """Give a report started in this transaction its name and signed body."""
        row = self.session.get(ReconciliationReportRow, report_id)
        assert row is not None
        row.name, row.body = name, body

    def report_body(self, name: str) -> bytes | None:
        return self.session.execute(
            select(ReconciliationReportRow.body).where(ReconciliationReportRow.name == name)
        ).scalar_one_or_none()

    def report_page(self, *, region: str, before: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (id, body) of reports, newest first, with ids below ``before`` (0:
        from the newest), of ``region`` (empty: all)."""
        stmt = (
            select(ReconciliationReportRow.id, ReconciliationReportRow.body)
            .order_by(ReconciliationReportRow.id.desc())
            .limit(limit)
        )
        if before:
            stmt = stmt.where(ReconciliationReportRow.id < before)
        if region:
            stmt = stmt.where(ReconciliationReportRow.region == region)
        return [(i, b) for i, b in self.session.execute(stmt)]


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
