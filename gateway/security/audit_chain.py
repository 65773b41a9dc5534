"""The audit log's hash chain and signed tree heads. Pure functions, no I/O.

entry_hash = SHA-256 over a length-prefixed encoding of (domain tag, sequence, kind, subject,
actor region, actor, detail, previous hash, creation time in microseconds). Each entry names its
predecessor's hash, so changing, removing or reordering any entry breaks every later hash.

The hash rule has not changed since v1. What an entry's ``detail`` commits to is versioned by its
``v`` key (absent: rule 1; ``DETAIL_RULE``: the rule new entries are written under), see
docs/protocol.md §8.3.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

ENTRY_TAG = b"yrd-interop/v1/audit-entry"
TREE_HEAD_TAG = b"yrd-interop/v1/tree-head"
GENESIS = bytes(32)
DETAIL_RULE = 2
"""The detail rule new entries of the kinds it extends are written under (their ``v`` key)."""
ENTRY_KINDS = frozenset(
    {
        "signing_key.registered",
        "signing_key.revoked",
        "methodology.accepted",
        "project.accepted",
        "issuance.accepted",
        "transfer.proposed",
        "transfer.completed",
        "transfer.rejected",
        "transfer.cancelled",
        "transfer.expired",
        "request.repeated",
        "units.retired",
        "recognition.requested",
        "recognition.approved",
        "recognition.rejected",
        "recognition.revoked",
        "reconciliation.snapshot",
        "reconciliation.report",
        "duplicate_case.opened",
        "duplicate_case.hold",
        "duplicate_case.decision",
        "duplicate_case.resolved",
        "external_list.imported",
    }
)
"""Every entry kind of the protocol (docs/protocol.md §8.1). A verifier reports an entry of any
other kind as a finding: it cannot tell what that entry changed, so it must not skip it."""


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _f(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _micros(when: dt.datetime) -> int:
    delta = when.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class EntryFields:
    """What an audit entry's hash covers."""

    sequence: int
    kind: str
    subject: str
    actor_region: str
    actor: str
    detail: bytes
    previous_hash: bytes
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredEntry(EntryFields):
    """An entry as the log holds it: the hashed fields and the hash stored with them."""

    entry_hash: bytes


class EntryHasher:
    """The entry hash for entries sharing an actor and a creation time (a batch of them): the
    parts they share are encoded once. The one definition of the encoding; ``entry_hash`` is
    this for a single entry."""

    __slots__ = ("_actor", "_kinds", "_time")
    _TAG = _f(ENTRY_TAG) + struct.pack(">I", 8)  # the tag, then the sequence's length

    def __init__(self, actor_region: str, actor: str, created_at: dt.datetime) -> None:
        self._actor = _f(actor_region.encode()) + _f(actor.encode())
        self._time = _f(struct.pack(">q", _micros(created_at)))
        self._kinds: dict[str, bytes] = {}

    def __call__(
        self, sequence: int, kind: str, subject: str, detail: bytes, previous_hash: bytes
    ) -> bytes:
        kind_f = self._kinds.get(kind)
        if kind_f is None:
            kind_f = self._kinds[kind] = _f(kind.encode())
        return hashlib.sha256(
            b"".join(
                (
                    self._TAG,
                    struct.pack(">Q", sequence),
                    kind_f,
                    _f(subject.encode()),
                    self._actor,
                    _f(detail),
                    _f(previous_hash),
                    self._time,
                )
            )
        ).digest()


def entry_hash(e: EntryFields) -> bytes:
    """The hash of one entry, chaining it to its predecessor."""
    return EntryHasher(e.actor_region, e.actor, e.created_at)(
        e.sequence, e.kind, e.subject, e.detail, e.previous_hash
    )


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of walking the chain (and, offline, of comparing the stored rows with it)."""

    ok: bool
    entries: int
    """Entries that verified, from the first."""
    head_hash: bytes
    problem: str = ""
    table: str = ""
    """The table of the first bad row ("audit_entries" for the log itself); "" when ok."""
    key: str = ""
    """That row's key, e.g. ``sequence=7`` or ``id=3``."""

    @property
    def first_bad_entry(self) -> int | None:
        """Sequence of the first entry that fails, None when the whole log verifies (or when
        the log verifies and a stored row does not)."""
        if self.ok or self.table not in ("", "audit_entries", "audit_head"):
            return None
        return self.entries + 1

    @property
    def where(self) -> str:
        """``table key`` of the first bad row ("" when ok)."""
        return f"{self.table} {self.key}".strip()


class ChainWalker:
    """Checks entries one by one from sequence 1: each link and hash."""

    __slots__ = ("count", "previous")

    def __init__(self) -> None:
        self.count = 0
        self.previous = GENESIS

    def step(self, fields: EntryFields, stored: bytes) -> str | None:
        """The problem with the next entry, or None (and the walk moves past it)."""
        count = self.count + 1
        if fields.sequence != count:
            return f"expected sequence {count}, found {fields.sequence}"
        if fields.previous_hash != self.previous:
            return f"entry {count} does not link to entry {count - 1}"
        if entry_hash(fields) != stored:
            return f"entry {count} hash does not match its content"
        self.count, self.previous = count, stored
        return None

    def failed(self, problem: str) -> ChainCheck:
        return ChainCheck(
            False,
            self.count,
            self.previous,
            problem,
            "audit_entries",
            f"sequence={self.count + 1}",
        )


def verify_chain(entries: Iterable[tuple[EntryFields, bytes]]) -> ChainCheck:
    """Walk (fields, stored hash) pairs from sequence 1 and check every link and hash."""
    walker = ChainWalker()
    for fields, stored in entries:
        problem = walker.step(fields, stored)
        if problem is not None:
            return walker.failed(problem)
    return ChainCheck(True, walker.count, walker.previous)


def detail_rule(detail: Mapping[str, Any]) -> int:
    """The detail rule an entry was written under (1 when it has no ``v``)."""
    v = detail.get("v", 1)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def blocks_digest(rows: Iterable[tuple[str, int, int, str]]) -> str:
    """Hex SHA-256 of (origin, first serial, last serial, state) rows in sorted order, each as
    canonical JSON followed by a newline (what rule 2 commits a snapshot's stored blocks to)."""
    return _rows_digest(rows)


def totals_digest(rows: Iterable[tuple[str, str, int, int]]) -> str:
    """Hex SHA-256 of (origin, state, registry grams, ledger grams) rows in sorted order, each as
    canonical JSON followed by a newline (what rule 2 commits a snapshot's totals to)."""
    return _rows_digest(rows)


def _rows_digest(rows: Iterable[tuple[str | int, ...]]) -> str:
    digest = SortedRowsDigest()
    for row in sorted(rows):
        digest.add(row)
    return digest.hexdigest()


class SortedRowsDigest:
    """``blocks_digest`` (or ``totals_digest``) of rows given one at a time, already in sorted
    order, without holding them: a row out of order raises ``ValueError`` (the digest would
    differ from the sorted rows')."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._previous: tuple[str | int, ...] | None = None
        self.count = 0

    def add(self, row: tuple[str | int, ...]) -> None:
        if self._previous is not None and row < self._previous:
            raise ValueError(f"rows out of order: {row!r} after {self._previous!r}")
        self._previous = row
        self.count += 1
        self._hash.update(json.dumps(list(row), separators=(",", ":")).encode() + b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


EXTERNAL_ROW_FIELDS = (
    "subject",
    "scheme",
    "scheme_project_id",
    "title",
    "owner_credit_code",
    "latitude",
    "longitude",
    "datum",
    "grid_account",
    "category",
    "capacity_value",
    "capacity_unit",
    "registration_date",
    "credit_start",
    "credit_end",
)
"""What an ``external_list.imported`` entry commits to of each external project it stores (its
stored columns but the import's time, operator and list digest, which the entry itself gives)."""


def external_row_digest(row: Mapping[str, Any]) -> str:
    """Hex SHA-256 of an external project as stored: the canonical JSON object of its
    ``EXTERNAL_ROW_FIELDS`` (a date as ``YYYY-MM-DD``, an absent value as null)."""
    values = {
        k: (v.isoformat() if isinstance(v, dt.date) else v)
        for k, v in ((k, row[k]) for k in EXTERNAL_ROW_FIELDS)
    }
    return hashlib.sha256(canonical_json(values)).hexdigest()


def tree_head_input(size: int, head_hash: bytes, signed_at: dt.datetime) -> bytes:
    """The bytes a signed tree head's signature covers."""
    return b"".join(
        [
            _f(TREE_HEAD_TAG),
            _f(struct.pack(">Q", size)),
            _f(head_hash),
            _f(struct.pack(">q", _micros(signed_at))),
        ]
    )


def sign_tree_head(
    key: ed25519.Ed25519PrivateKey, size: int, head_hash: bytes, signed_at: dt.datetime
) -> bytes:
    """Signature of the gateway over a tree head."""
    return key.sign(tree_head_input(size, head_hash, signed_at))


def verify_tree_head(
    public_key: bytes, size: int, head_hash: bytes, signed_at: dt.datetime, signature: bytes
) -> bool:
    """Whether a tree head signature is valid."""
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, tree_head_input(size, head_hash, signed_at)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
