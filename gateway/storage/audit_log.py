"""The one appender of the hash-chained audit log (Core statements, under the head's lock).

Every writer of the log — ledger, publish, keys, recognition, reconciliation — appends through
:class:`AuditLog`, and every entry's hash is ``gateway.security.audit_chain``'s. The head row is
locked (FOR UPDATE on PostgreSQL; SQLite has one writer) and read once per transaction, so
appends from several gateway processes queue up instead of forking the chain, and each entry
chains on the head without reading it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from gateway.security.audit_chain import EntryHasher, canonical_json
from gateway.storage.db import UnitOfWork
from gateway.storage.direct import Statement, Writes
from gateway.storage.models import AuditEntryRow, AuditHeadRow


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
ENTRY_COLUMNS = (
    "sequence",
    "kind",
    "subject",
    "actor_region",
    "actor",
    "detail",
    "previous_hash",
    "entry_hash",
    "created_at",
)
"""The columns of the rows :meth:`AuditLog.extend` returns, in their order."""


class AuditLog:
    """Appends to the audit log for a transaction that holds the head's lock (see
    :func:`audit_log`). Use one per transaction (``audit_log_of`` keeps it on the unit of work)."""

    def __init__(self, conn: Connection, sequence: int, head_hash: bytes) -> None:
        self.conn = conn
        self.sequence = sequence
        """The log's size: the head's sequence."""
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
        sequence, previous = self.sequence + 1, self.head_hash
        body = canonical_json(detail)
        digest = EntryHasher(actor_region, actor, now)(sequence, kind, subject, body, previous)
        entry = {
            "v_sequence": sequence,
            "v_kind": kind,
            "v_subject": subject,
            "v_actor_region": actor_region,
            "v_actor": actor,
            "v_detail": body,
            "v_previous_hash": previous,
            "v_entry_hash": digest,
            "v_created_at": now,
        }
        head = {"new_sequence": sequence, "new_hash": digest}
        if writes is None:
            _INSERT_ENTRY.execute(self.conn, entry)
            _MOVE_HEAD.execute(self.conn, head)
        else:
            writes.add(_INSERT_ENTRY, entry)
            writes.replace("audit_head", _MOVE_HEAD, head)
        self.sequence, self.head_hash = sequence, digest

    def extend(
        self,
        entries: Iterable[tuple[str, str, bytes]],
        *,
        actor_region: str,
        actor: str,
        now: dt.datetime,
        stored_now: Any,
    ) -> list[tuple[Any, ...]]:
        """Chain many entries of one actor and time — (kind, subject, detail already in
        canonical JSON) — after the head, and move the head (now) to the last. Returns their
        rows in ``ENTRY_COLUMNS`` order, ``stored_now`` as their time, for the caller to write in
        bulk in this transaction (a publish batch writes thousands with COPY)."""
        hasher = EntryHasher(actor_region, actor, now)
        sequence, last = self.sequence, self.head_hash
        rows: list[tuple[Any, ...]] = []
        for kind, subject, detail in entries:
            sequence += 1
            digest = hasher(sequence, kind, subject, detail, last)
            rows.append(
                (sequence, kind, subject, actor_region, actor, detail, last, digest, stored_now)
            )
            last = digest
        if rows:
            _MOVE_HEAD.execute(self.conn, {"new_sequence": sequence, "new_hash": last})
            self.sequence, self.head_hash = sequence, last
        return rows


def audit_log(conn: Connection) -> AuditLog:
    """Lock the audit head (held to the commit) and read it."""
    row = _LOCK_HEAD.first(conn)
    if row is None:
        raise RuntimeError("audit_head row missing: the database was not migrated")
    sequence, head_hash = row
    return AuditLog(conn, sequence, head_hash)


def audit_log_of(unit: UnitOfWork) -> AuditLog:
    """The transaction's audit log, its head locked and read once (requests sharing a
    transaction chain their entries on it; a partial rollback makes the next one read it
    again)."""
    log = unit.memo.get("audit")
    if not isinstance(log, AuditLog):
        log = unit.memo["audit"] = audit_log(unit.conn)
    return log
