"""Reading and verifying the audit log; signed tree heads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519

from adapters.registry import AdapterRegistry
from gateway.errors import InvalidArgument
from gateway.security.audit_chain import (
    ChainCheck,
    EntryFields,
    StoredEntry,
    sign_tree_head,
    verify_chain,
)
from gateway.security.signing import key_id_of, raw_public_key
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.audit_verify import StorageCheck, StorageVerifier
from gateway.storage.audit_store import AuditStore, read_snapshot
from gateway.storage.db import Database

MAX_PAGE = 5000
DEFAULT_PAGE = 500
MAX_SEQUENCE = 2**63 - 1
"""Largest sequence a database integer holds (the wire's uint64 goes further)."""


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The gateway's signed statement of the log's size and head."""

    size: int
    head_hash: bytes
    signed_at: dt.datetime
    key_id: str
    signature: bytes


class AuditReader:
    """Pages, verifies and signs the head of the audit log."""

    def __init__(
        self,
        db: Database,
        gateway_key: ed25519.Ed25519PrivateKey | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.gateway_key = gateway_key
        self.clock = clock

    def page(self, start: int, size: int) -> tuple[Sequence[StoredEntry], int]:
        """Entries from start; returns them and the next sequence (0 at the end)."""
        limit = page_limit(size, maximum=MAX_PAGE, default=DEFAULT_PAGE)
        if start > MAX_SEQUENCE:
            raise InvalidArgument(
                f"start_sequence must be at most {MAX_SEQUENCE}",
                field_errors={"start_sequence": "out of range"},
            )
        with self.db.transaction() as session:
            rows, last = page_of(AuditStore(session).page(max(start, 1), limit + 1), limit)
        return rows, (last.sequence + 1 if last is not None else 0)

    def tree_head(self) -> TreeHead:
        """Sign the current head."""
        if self.gateway_key is None:
            raise RuntimeError("this reader has no gateway key to sign with")
        with self.db.transaction() as session:
            size, head = AuditStore(session).head()
        now = self.clock()
        return TreeHead(
            size,
            head,
            now,
            key_id_of(raw_public_key(self.gateway_key)),
            sign_tree_head(self.gateway_key, size, head, now),
        )

    def verify(self) -> ChainCheck:
        """Walk the chain in pages up to the head recorded when the walk starts, and check it
        ends at that head (entries appended meanwhile are left for the next walk)."""
        with self.db.transaction() as session:
            size, head = AuditStore(session).head()

        def entries() -> Iterator[tuple[EntryFields, bytes]]:
            start = 1
            while 0 < start <= size:
                rows, start = self.page(start, min(MAX_PAGE, size - start + 1))
                for entry in rows:
                    yield entry, entry.entry_hash

        check = verify_chain(entries())
        if not check.ok:
            return check
        if (size, head) != (check.entries, check.head_hash):
            # Entries removed from the end leave a shorter chain that is valid by itself.
            return ChainCheck(
                False,
                check.entries,
                check.head_hash,
                f"the log ends at entry {check.entries} but its recorded head is entry {size}",
            )
        return check

    def verify_storage(self, adapters: AdapterRegistry | None = None) -> StorageCheck:
        """``verify``, and every stored row compared with the log (docs/protocol.md §8.3), all in
        one consistent read; names the first bad row. With ``adapters``, a methodology's
        reference (as its region's adapter makes it) is checked too."""
        with read_snapshot(self.db.engine) as rows:
            return StorageVerifier(rows, adapters).run()
