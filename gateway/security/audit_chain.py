"""The audit log's hash chain and signed tree heads. Pure functions, no I/O.

entry_hash = SHA-256 over a length-prefixed encoding of (domain tag, sequence, kind, subject,
actor region, actor, detail, previous hash, creation time in microseconds). Each entry names its
predecessor's hash, so changing, removing or reordering any entry breaks every later hash.
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


def entry_hash(e: EntryFields) -> bytes:
    """The hash of one entry, chaining it to its predecessor."""
    return hashlib.sha256(
        b"".join(
            [
                _f(ENTRY_TAG),
                _f(struct.pack(">Q", e.sequence)),
                _f(e.kind.encode()),
                _f(e.subject.encode()),
                _f(e.actor_region.encode()),
                _f(e.actor.encode()),
                _f(e.detail),
                _f(e.previous_hash),
                _f(struct.pack(">q", _micros(e.created_at))),
            ]
        )
    ).digest()


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of walking the chain."""

    ok: bool
    entries: int
    """Entries that verified, from the first."""
    head_hash: bytes
    problem: str = ""

    @property
    def first_bad_entry(self) -> int | None:
        """Sequence of the first entry that fails, None when the whole log verifies."""
        return None if self.ok else self.entries + 1


def verify_chain(entries: Iterable[tuple[EntryFields, bytes]]) -> ChainCheck:
    """Walk (fields, stored hash) pairs from sequence 1 and check every link and hash."""
    previous = GENESIS
    count = 0
    for fields, stored in entries:
        count += 1
        if fields.sequence != count:
            return ChainCheck(
                False, count - 1, previous, f"expected sequence {count}, found {fields.sequence}"
            )
        if fields.previous_hash != previous:
            return ChainCheck(
                False, count - 1, previous, f"entry {count} does not link to entry {count - 1}"
            )
        if entry_hash(fields) != stored:
            return ChainCheck(
                False, count - 1, previous, f"entry {count} hash does not match its content"
            )
        previous = stored
    return ChainCheck(True, count, previous)


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
