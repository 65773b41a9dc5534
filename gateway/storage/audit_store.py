"""Reads of the audit log: its head, and its entries in order. (Appends go through the audit
log's appender; these never write.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.security.audit_chain import GENESIS, StoredEntry
from gateway.storage.models import AuditEntryRow, AuditHeadRow

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
