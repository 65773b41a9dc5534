"""Statements of batch reconciliation: holdings snapshots, the staged comparison in SQL, and the
signed reports. Inside a caller's transaction; never commits.

A snapshot's blocks arrive on the backend's bulk path (COPY, or executemany) in a temporary table
of the transaction; set-based statements then keep, per snapshot, the totals of both sides per
origin and state (``snapshot_totals``) and the blocks that one side holds and the other does not
hold identically (``snapshot_blocks``): a block both hold alike can never differ, and most do."""

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
_INCOMING = Table(
    "snapshot_incoming",
    MetaData(),
    Column("origin_region", String(6), nullable=False),
    Column("serial_start", BigInteger, nullable=False),
    Column("serial_end", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),
    prefixes=["TEMPORARY"],
)
"""The registry's blocks while their snapshot is stored: a temporary table of the transaction
(no log, no index while it fills)."""
_INSERT_INCOMING = BulkInsert(_INCOMING, ("origin_region", "serial_start", "serial_end", "state"))
_UNMATCHED = Table(
    "snapshot_unmatched",
    MetaData(),
    Column("side", String(8), nullable=False),
    Column("origin_region", String(6), nullable=False),
    Column("serial_start", BigInteger, nullable=False),
    Column("serial_end", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),
    prefixes=["TEMPORARY"],
)
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
            conn.exec_driver_sql(_INDEX_INCOMING_SQLITE)
        else:
            conn.exec_driver_sql("ANALYZE snapshot_incoming")

    def first_overlap(self) -> tuple[str, int] | None:
        """(origin, serial) where two of the staged registry blocks first overlap, if any do."""
        row = self.session.execute(text(_OVERLAP)).first()
        return None if row is None else (row[0], row[1])

    def keep_differences(
        self, sid: int, region: str, registry_totals: Mapping[tuple[str, str], int]
    ) -> None:
        """Snapshot ``sid`` of ``region``: the staged registry blocks and the blocks the ledger
        gives ``region`` now that the other side does not hold identically (a ledger block held
        and the registry's alike but active count as identical), and the totals of
        both sides per (origin, state) — the registry's as given (``registry_totals``), the
        ledger's derived (the blocks both hold alike count alike); then the staging table goes."""
        params = {"sid": sid, "region": region}
        conn = self.session.connection()
        sqlite = conn.dialect.name == "sqlite"
        for table in (_UNMATCHED, _TILED):
            table.drop(conn, checkfirst=True)
            table.create(conn)
        for statement in (_UNMATCHED_REGISTRY, _UNMATCHED_LEDGER):
            self.session.execute(text(statement), params)
        conn.exec_driver_sql(_INDEX_UNMATCHED[0].format(temp="temp." if sqlite else ""))
        if not sqlite:
            conn.exec_driver_sql("ANALYZE snapshot_unmatched")
        self.session.execute(text(_TILE))
        for statement in _INDEX_TILED_SQLITE if sqlite else ("ANALYZE snapshot_tiled",):
            conn.exec_driver_sql(statement)
        for statement in (_KEEP_REGISTRY_ONLY, _KEEP_LEDGER_ONLY):
            self.session.execute(text(statement), params)
        for table in (_INCOMING, _UNMATCHED, _TILED):
            table.drop(conn)
        totals = {key: [grams, grams] for key, grams in registry_totals.items()}
        for side, origin, state, grams in self.session.execute(text(_KEPT_GRAMS), params):
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
            for origin, state, reg, led in self.session.execute(text(_TOTALS), {"sid": sid})
        ]

    def ranges(self, sid: int) -> list[tuple[str, str, str | None, str | None, int, int]]:
        """Stage 2: (kind, origin, registry state, ledger state, first, last serial) of each
        maximal range on which the sides differ; kind is REGISTRY_ONLY, LEDGER_ONLY or
        STATE_MISMATCH. Units the ledger holds as held do not differ from the registry's
        active ones."""
        return [
            (kind, origin, rs, ls, int(lo), int(hi))
            for kind, origin, rs, ls, lo, hi in self.session.execute(text(_RANGES), {"sid": sid})
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


# Ordered by start alone (as the lookup index is): of two blocks starting at one serial, whichever
# comes second overlaps the first, so the first overlap found is the same in any order of ties.
_OVERLAP = """
SELECT o, s FROM (
  SELECT origin_region AS o, serial_start AS s,
         MAX(serial_end) OVER (
           PARTITION BY origin_region ORDER BY serial_start
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM snapshot_incoming
) t WHERE reach >= s ORDER BY o, s LIMIT 1
"""
# Built once the rows are in (a sort, not an insert per row); PostgreSQL hashes instead.
_INDEX_INCOMING_SQLITE = (
    "CREATE INDEX temp.ix_snapshot_incoming ON snapshot_incoming (origin_region, serial_start)"
)

_KEPT_GRAMS = """
SELECT side, origin_region, state, SUM(serial_end - serial_start + 1)
FROM snapshot_blocks WHERE snapshot_id = :sid GROUP BY side, origin_region, state
"""

# A block the ledger holds as held (an open duplicate case holds its issuance) matches the
# registry's block as held or as active: registries learn of holds late. The equivalence is
# one-way — a block the registry calls held that the ledger has active differs.
_UNMATCHED_REGISTRY = """
INSERT INTO snapshot_unmatched (side, origin_region, serial_start, serial_end, state)
SELECT 'registry', i.origin_region, i.serial_start, i.serial_end, i.state
FROM snapshot_incoming i
WHERE NOT EXISTS (
  SELECT 1 FROM unit_blocks u
  WHERE u.origin_region = i.origin_region AND u.serial_start = i.serial_start
    AND u.serial_end = i.serial_end AND u.holder_region = :region
    AND (u.state = i.state OR (u.state = 'held' AND i.state = 'active')))
"""

_UNMATCHED_LEDGER = """
INSERT INTO snapshot_unmatched (side, origin_region, serial_start, serial_end, state)
SELECT 'ledger', u.origin_region, u.serial_start, u.serial_end, u.state
FROM unit_blocks u
WHERE u.holder_region = :region AND NOT EXISTS (
  SELECT 1 FROM snapshot_incoming i
  WHERE i.origin_region = u.origin_region AND i.serial_start = u.serial_start
    AND i.serial_end = u.serial_end
    AND (i.state = u.state OR (u.state = 'held' AND i.state = 'active')))
"""
# Built once the rows are in: the range join of _TILE looks ledger blocks up by their start on
# both backends; PostgreSQL hashes the lookups of the tiled pairs instead.
_INDEX_UNMATCHED = (
    "CREATE INDEX {temp}ix_snapshot_unmatched"
    " ON snapshot_unmatched (side, origin_region, serial_start)",
)
_INDEX_TILED_SQLITE = (
    "CREATE INDEX temp.ix_snapshot_tiled_registry"
    " ON snapshot_tiled (origin_region, registry_start)",
    "CREATE INDEX temp.ix_snapshot_tiled_ledger ON snapshot_tiled (origin_region, ledger_start)",
)

# The ledger keeps finer blocks than the registry where it has split a block the registry has not
# (a retirement, a transfer out and back; the registry's own arrive joined into runs): a registry
# block that the ledger's unmatched blocks inside it tile exactly, each in an equivalent state, is
# held alike too, and so are those ledger blocks. The ledger's blocks never overlap, so blocks
# inside the registry's whose grams add up to its grams cover it exactly.
_TILE = """
INSERT INTO snapshot_tiled (origin_region, registry_start, ledger_start)
SELECT o, rs, us FROM (
  SELECT r.origin_region AS o, r.serial_start AS rs, u.serial_start AS us,
         r.serial_end - r.serial_start + 1 AS grams,
         SUM(u.serial_end - u.serial_start + 1)
           OVER (PARTITION BY r.origin_region, r.serial_start) AS covered
  FROM snapshot_unmatched r JOIN snapshot_unmatched u
    ON u.side = 'ledger' AND u.origin_region = r.origin_region
   AND u.serial_start >= r.serial_start AND u.serial_start <= r.serial_end
   AND u.serial_end <= r.serial_end
   AND (u.state = r.state OR (u.state = 'held' AND r.state = 'active'))
  WHERE r.side = 'registry'
) t WHERE covered = grams
"""

_KEEP_REGISTRY_ONLY = """
INSERT INTO snapshot_blocks (snapshot_id, side, origin_region, serial_start, serial_end, state)
SELECT :sid, 'registry', r.origin_region, r.serial_start, r.serial_end, r.state
FROM snapshot_unmatched r
WHERE r.side = 'registry' AND NOT EXISTS (
  SELECT 1 FROM snapshot_tiled t
  WHERE t.origin_region = r.origin_region AND t.registry_start = r.serial_start)
"""

_KEEP_LEDGER_ONLY = """
INSERT INTO snapshot_blocks (snapshot_id, side, origin_region, serial_start, serial_end, state)
SELECT :sid, 'ledger', u.origin_region, u.serial_start, u.serial_end, u.state
FROM snapshot_unmatched u
WHERE u.side = 'ledger' AND NOT EXISTS (
  SELECT 1 FROM snapshot_tiled t
  WHERE t.origin_region = u.origin_region AND t.ledger_start = u.serial_start)
"""

# -- stage 1: totals per origin and state --------------------------------------------------------

# Held grams count with the active ones on both sides (a registry may report held units as active);
# stage 2 still tells a block the registry calls held that the ledger has active.
_TOTALS = """
SELECT origin_region, st, SUM(registry_grams), SUM(ledger_grams) FROM (
  SELECT origin_region, CASE WHEN state = 'held' THEN 'active' ELSE state END AS st,
         registry_grams, ledger_grams
  FROM snapshot_totals WHERE snapshot_id = :sid
) t
GROUP BY origin_region, st HAVING SUM(registry_grams) <> SUM(ledger_grams)
ORDER BY origin_region, st
"""


# -- stage 2: serial ranges ----------------------------------------------------------------------

# A block both sides hold identically (same origin, serials and state) cannot differ (snapshots
# stored since migration 0008 keep no such blocks; older ones have them all), and blocks of
# one side never overlap, so only the unmatched blocks are compared. Each side's adjacent blocks
# of one state are first joined into runs (a registry that splits or joins blocks differently
# holds the same runs), and runs both sides hold identically drop out the same way: the grams each
# side holds in each state are unchanged by both steps. The remaining runs' boundaries cut the
# serial line into elementary segments; on each segment each side has at most one run. The run
# covering a segment is the last one that started at or before it: carried forward with a running
# count of run starts (a group number) and a window over that group. Differing segments are
# classified — a segment the ledger holds as held and the registry as active does not differ (see
# _KEEP_REGISTRY_ONLY) —, then adjacent segments of the same kind and states are merged (gaps and
# islands).
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
edges AS (
  SELECT side, origin_region, serial_start, serial_end, state,
         CASE WHEN LAG(serial_end) OVER (PARTITION BY side, origin_region ORDER BY serial_start)
                   = serial_start - 1
               AND LAG(state) OVER (PARTITION BY side, origin_region ORDER BY serial_start) = state
              THEN 0 ELSE 1 END AS brk
  FROM unmatched
),
numbered AS (
  SELECT side, origin_region, serial_start, serial_end, state,
         SUM(brk) OVER (PARTITION BY side, origin_region ORDER BY serial_start
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
  FROM edges
),
runs AS (
  SELECT side, origin_region, MIN(serial_start) AS serial_start, MAX(serial_end) AS serial_end,
         MIN(state) AS state
  FROM numbered GROUP BY side, origin_region, run
),
differing AS (
  SELECT r.side, r.origin_region, r.serial_start, r.serial_end, r.state FROM runs r
  WHERE NOT EXISTS (
    SELECT 1 FROM runs m
    WHERE m.side <> r.side AND m.origin_region = r.origin_region
      AND m.serial_start = r.serial_start AND m.serial_end = r.serial_end AND m.state = r.state)
),
ev AS (
  SELECT origin_region AS o, serial_start AS p,
         CASE WHEN side = 'registry' THEN serial_end END AS r_end,
         CASE WHEN side = 'registry' THEN state END AS r_state,
         CASE WHEN side = 'ledger' THEN serial_end END AS l_end,
         CASE WHEN side = 'ledger' THEN state END AS l_state
  FROM differing
  UNION ALL
  SELECT origin_region, serial_end + 1, NULL, NULL, NULL, NULL FROM differing
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
  WHERE (rs IS NULL AND ls IS NOT NULL) OR (rs IS NOT NULL AND ls IS NULL)
     OR (rs <> ls AND NOT (ls = 'held' AND rs = 'active'))
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
