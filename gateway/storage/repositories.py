"""Repositories: typed access to rows inside a caller's transaction. They never commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from gateway.security.audit_chain import GENESIS, EntryFields, canonical_json, entry_hash
from gateway.storage.direct import Statement, Writes
from gateway.storage.models import AuditEntryRow, AuditHeadRow, SigningKeyRow


def next_entry(
    sequence: int,
    head_hash: bytes,
    kind: str,
    subject: str,
    actor_region: str,
    actor: str,
    detail: Mapping[str, Any],
    now: dt.datetime,
) -> tuple[EntryFields, bytes]:
    """The entry that follows a head (its sequence and hash), and the entry's own hash."""
    fields = EntryFields(
        sequence=sequence + 1,
        kind=kind,
        subject=subject,
        actor_region=actor_region,
        actor=actor,
        detail=canonical_json(detail),
        previous_hash=head_hash,
        created_at=now,
    )
    return fields, entry_hash(fields)


class AuditLogRepository:
    """Appends to and reads the hash-chained audit log."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _head(self) -> AuditHeadRow:
        # The head row is locked (FOR UPDATE on PostgreSQL; SQLite has one writer) so concurrent
        # appends from several gateway processes queue up instead of forking the chain.
        head = self.session.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            raise RuntimeError("audit_head row missing: the database was not migrated")
        return head

    def append(
        self,
        *,
        kind: str,
        subject: str,
        actor_region: str,
        actor: str,
        detail: Mapping[str, Any],
        now: dt.datetime,
    ) -> AuditEntryRow:
        """Append one entry after the current head."""
        head = self._head()
        fields, digest = next_entry(
            head.sequence, head.head_hash, kind, subject, actor_region, actor, detail, now
        )
        row = AuditEntryRow(
            sequence=fields.sequence,
            kind=kind,
            subject=subject,
            actor_region=actor_region,
            actor=actor,
            detail=fields.detail,
            previous_hash=fields.previous_hash,
            entry_hash=digest,
            created_at=now,
        )
        self.session.add(row)
        head.sequence, head.head_hash = fields.sequence, digest
        self.session.flush()
        return row

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


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_HEAD, _ENTRIES = _table(AuditHeadRow), _table(AuditEntryRow)
_LOCK_HEAD = Statement(
    select(_HEAD.c.sequence, _HEAD.c.head_hash).where(_HEAD.c.id == 1).with_for_update()
)
_INSERT_ENTRY = Statement(
    insert(_ENTRIES).values({c.key: bindparam(f"v_{c.key}", type_=c.type) for c in _ENTRIES.c})
)
_MOVE_HEAD = Statement(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(sequence=bindparam("new_sequence"), head_hash=bindparam("new_hash"))
)


class AuditChain:
    """Core appends to the audit log for a transaction that holds the head's lock: the head is
    read once, under the lock, and each entry chains on it without reading it again.

    Use one per transaction, and no other appender in that transaction.
    """

    def __init__(self, conn: Connection, sequence: int, head_hash: bytes) -> None:
        self.conn = conn
        self.sequence = sequence
        self.head_hash = head_hash

    def append(
        self,
        *,
        kind: str,
        subject: str,
        actor_region: str,
        actor: str,
        detail: Mapping[str, Any],
        now: dt.datetime,
        writes: Writes | None = None,
    ) -> None:
        """Append one entry after the head, and move the head to it (now, or with ``writes``)."""
        fields, digest = next_entry(
            self.sequence, self.head_hash, kind, subject, actor_region, actor, detail, now
        )
        entry = {
            "v_sequence": fields.sequence,
            "v_kind": kind,
            "v_subject": subject,
            "v_actor_region": actor_region,
            "v_actor": actor,
            "v_detail": fields.detail,
            "v_previous_hash": fields.previous_hash,
            "v_entry_hash": digest,
            "v_created_at": now,
        }
        head = {"new_sequence": fields.sequence, "new_hash": digest}
        if writes is None:
            _INSERT_ENTRY.execute(self.conn, entry)
            _MOVE_HEAD.execute(self.conn, head)
        else:
            writes.add(_INSERT_ENTRY, entry)
            writes.replace("audit_head", _MOVE_HEAD, head)
        self.sequence, self.head_hash = fields.sequence, digest


def audit_chain(conn: Connection) -> AuditChain:
    """Lock the audit head (held to the commit) and read it."""
    row = _LOCK_HEAD.first(conn)
    if row is None:
        raise RuntimeError("audit_head row missing: the database was not migrated")
    sequence, head_hash = row
    return AuditChain(conn, sequence, head_hash)


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
