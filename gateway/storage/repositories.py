"""Repositories: typed access to rows inside a caller's transaction. They never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit import GENESIS, EntryFields
from gateway.storage.models import AuditEntryRow, AuditHeadRow, SigningKeyRow


class AuditLogRepository:
    """Reads the hash-chained audit log (appends go through ``gateway.storage.audit_log``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, start: int, limit: int) -> Sequence[AuditEntryRow]:
        """Entries with sequence >= start, in order."""
        stmt = (
            select(AuditEntryRow)
            .where(AuditEntryRow.sequence >= start)
            .order_by(AuditEntryRow.sequence)
            .limit(limit)
        )
        return self.session.execute(stmt).scalars().all()

    def head(self) -> tuple[int, bytes]:
        """(size, head hash) of the log."""
        head = self.session.get(AuditHeadRow, 1)
        return (0, GENESIS) if head is None else (head.sequence, head.head_hash)


def entry_fields(row: AuditEntryRow) -> EntryFields:
    """The hashed fields of a stored entry."""
    return EntryFields(
        sequence=row.sequence,
        kind=row.kind,
        subject=row.subject,
        actor_region=row.actor_region,
        actor=row.actor,
        detail=row.detail,
        previous_hash=row.previous_hash,
        created_at=row.created_at,
    )


class SigningKeyRepository:
    """The directory of record-signing keys."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key_id: str) -> SigningKeyRow | None:
        return self.session.get(SigningKeyRow, key_id)

    def get_for_update(self, key_id: str) -> SigningKeyRow | None:
        stmt = select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update()
        return self.session.execute(stmt).scalar_one_or_none()

    def add(self, row: SigningKeyRow) -> None:
        self.session.add(row)
        self.session.flush()

    def list(self, region: str | None, include_revoked: bool) -> Sequence[SigningKeyRow]:
        stmt = select(SigningKeyRow).order_by(SigningKeyRow.region, SigningKeyRow.key_id)
        if region:
            stmt = stmt.where(SigningKeyRow.region == region)
        if not include_revoked:
            stmt = stmt.where(SigningKeyRow.revoked_at.is_(None))
        return self.session.execute(stmt).scalars().all()
