"""Reads of the audit log: its head, and its entries in order. (Appends go through the audit
log's appender; these never write.)"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select, tuple_
from sqlalchemy.orm import Session

from gateway.security.audit_chain import GENESIS, StoredEntry
from gateway.storage.models import (
    AuditEntryRow,
    AuditHeadRow,
    Base,
    EnvelopeRow,
    IssuanceRow,
    RecordRow,
)

_ENTRY_COLUMNS = (
    AuditEntryRow.sequence,
    AuditEntryRow.kind,
    AuditEntryRow.subject,
    AuditEntryRow.actor_region,
    AuditEntryRow.actor,
    AuditEntryRow.detail,
    AuditEntryRow.previous_hash,
    AuditEntryRow.created_at,
    AuditEntryRow.entry_hash,
)
"""In the order of StoredEntry's fields."""


class AuditStore:
    """The audit log's head and entries, inside a caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self) -> tuple[int, bytes]:
        """(size, head hash) of the log."""
        head = self.session.get(AuditHeadRow, 1)
        return (0, GENESIS) if head is None else (head.sequence, head.head_hash)

    def page(self, start: int, limit: int) -> list[StoredEntry]:
        """Up to ``limit`` entries with sequence >= start, in order."""
        stmt = (
            select(*_ENTRY_COLUMNS)
            .where(AuditEntryRow.sequence >= start)
            .order_by(AuditEntryRow.sequence)
            .limit(limit)
        )
        return [StoredEntry(*row) for row in self.session.execute(stmt)]


# -- reads for `audit verify`: the stored rows the log is compared with --------------------------

_CHUNK = 500
_ENVELOPE_COLUMNS = (
    EnvelopeRow.id,
    EnvelopeRow.envelope_hash,
    EnvelopeRow.key_id,
    EnvelopeRow.region,
    EnvelopeRow.sequence,
    EnvelopeRow.previous_hash,
    EnvelopeRow.content_type,
    EnvelopeRow.payload,
    EnvelopeRow.sign_time_seconds,
    EnvelopeRow.sign_time_nanos,
    EnvelopeRow.signature,
    EnvelopeRow.received_at,
)
_RECORD_COLUMNS = (
    RecordRow.id,
    RecordRow.name,
    RecordRow.version,
    RecordRow.kind,
    RecordRow.region,
    RecordRow.envelope_id,
    RecordRow.envelope_record_index,
    RecordRow.body,
    RecordRow.accepted_at,
    EnvelopeRow.envelope_hash,
)
TABLE_ORDER: dict[str, tuple[str, ...]] = {
    "envelopes": ("id",),
    "records": ("id",),
    "signing_keys": ("key_id",),
    "methodologies": ("region", "methodology_id", "version"),
    "projects": ("region", "project_id"),
    "issuances": ("region", "issuance_id"),
    "unit_blocks": ("origin_region", "serial_start", "id"),
    "transfers": ("id",),
    "retirements": ("id",),
    "recognitions": ("id",),
    "holdings_snapshots": ("id",),
    "snapshot_blocks": ("snapshot_id", "side", "origin_region", "serial_start", "id"),
    "snapshot_totals": ("snapshot_id", "origin_region", "state"),
    "snapshot_transfers": ("snapshot_id", "transfer_name"),
    "reconciliation_reports": ("id",),
    "external_projects": ("subject",),
    "identity_subjects": ("subject",),
    "duplicate_cases": ("case_id",),
    "case_holds": ("case_id", "issuance"),
    "case_decisions": ("id",),
    "case_findings": ("id",),
}
"""The tables ``audit verify`` streams, each in an order that is unique (keyset pages)."""


class StoredRows:
    """Reads of a database under verification, on one connection (the caller holds one
    transaction over all of them, so every read sees the same state)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def head(self) -> tuple[int, bytes]:
        """(size, head hash) of the log."""
        row = self.conn.execute(
            select(AuditHeadRow.sequence, AuditHeadRow.head_hash).where(AuditHeadRow.id == 1)
        ).first()
        return (0, GENESIS) if row is None else (row[0], row[1])

    def entries(self, start: int, limit: int) -> list[StoredEntry]:
        """Up to ``limit`` entries with sequence >= start, in order."""
        stmt = (
            select(*_ENTRY_COLUMNS)
            .where(AuditEntryRow.sequence >= start)
            .order_by(AuditEntryRow.sequence)
            .limit(limit)
        )
        return [StoredEntry(*row) for row in self.conn.execute(stmt)]

    def envelopes_by_hash(self, hashes: Collection[bytes]) -> list[Row[Any]]:
        """The envelope rows whose ``envelope_hash`` is among ``hashes`` (``_ENVELOPE_COLUMNS``)."""
        wanted = list(hashes)
        out: list[Row[Any]] = []
        for i in range(0, len(wanted), _CHUNK):
            stmt = select(*_ENVELOPE_COLUMNS).where(
                EnvelopeRow.envelope_hash.in_(wanted[i : i + _CHUNK])
            )
            out.extend(self.conn.execute(stmt))
        return out

    def records_by_id(self, ids: Collection[int]) -> list[Row[Any]]:
        """The record rows among ``ids`` with their envelope's hash (``_RECORD_COLUMNS``)."""
        wanted = list(ids)
        out: list[Row[Any]] = []
        for i in range(0, len(wanted), _CHUNK):
            stmt = (
                select(*_RECORD_COLUMNS)
                .outerjoin(EnvelopeRow, EnvelopeRow.id == RecordRow.envelope_id)
                .where(RecordRow.id.in_(wanted[i : i + _CHUNK]))
            )
            out.extend(self.conn.execute(stmt))
        return out

    def by_name(self, table: str, names: Collection[str]) -> list[dict[str, Any]]:
        """The rows of ``table`` (which has a unique ``name``) among ``names``."""
        t = Base.metadata.tables[table]
        wanted = list(names)
        out: list[dict[str, Any]] = []
        for i in range(0, len(wanted), _CHUNK):
            stmt = select(t).where(t.c.name.in_(wanted[i : i + _CHUNK]))
            out.extend(dict(r._mapping) for r in self.conn.execute(stmt))
        return out

    def stream(
        self, table: str, columns: Sequence[str] = (), page: int = 2000
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` (one of ``TABLE_ORDER``) as a dict — of ``columns`` and the
        order's, or all — in that order, read in keyset pages. A ``unit_blocks`` row also has
        the ``issuance_project`` and ``issuance_vintage`` of the issuance it names."""
        t = Base.metadata.tables[table]
        order = [t.c[name] for name in TABLE_ORDER[table]]
        wanted: list[Any] = [t.c[c] for c in columns if c not in TABLE_ORDER[table]]
        base = select(*order, *wanted) if columns else select(t)
        if table == "unit_blocks":
            base = base.add_columns(
                IssuanceRow.project_name.label("issuance_project"),
                IssuanceRow.vintage.label("issuance_vintage"),
            ).outerjoin(IssuanceRow, IssuanceRow.name == t.c.issuance_name)
        last: tuple[Any, ...] | None = None
        while True:
            stmt = base.order_by(*order).limit(page)
            if last is not None:
                stmt = stmt.where(tuple_(*order) > tuple_(*last))
            rows = [dict(r._mapping) for r in self.conn.execute(stmt)]
            yield from rows
            if len(rows) < page:
                return
            last = tuple(rows[-1][c.key] for c in order)

    def count(self, table: str) -> int:
        return int(
            self.conn.execute(
                select(func.count()).select_from(Base.metadata.tables[table])
            ).scalar()
            or 0
        )


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[StoredRows]:
    """One transaction over every read of a verification: REPEATABLE READ and READ ONLY on
    PostgreSQL (a consistent snapshot that never blocks writers); on SQLite the gateway's one
    kind of transaction (it holds the write lock while it lasts)."""
    conn = engine.connect()
    try:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield StoredRows(conn)
    finally:
        conn.close()
