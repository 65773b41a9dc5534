"""Signers' chains and the envelopes they signed: the one chain advance and the one envelope-id
allocation, for every signed request (records, transfers, retirements, recognition decisions).

Statements are Core, compiled once and run on the DBAPI cursor (``gateway.storage.direct``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, literal_column, select, update

from gateway.storage.direct import Statement, Writes
from gateway.storage.models import EnvelopeRow, SigningKeyRow


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_KEYS = _table(SigningKeyRow)
_ENVELOPES = _table(EnvelopeRow)


@dataclass(slots=True)
class SignerKey:
    """A signing key's row, as the intake checks it (read under its lock)."""

    key_id: str
    region: str
    owner: str
    public_key: bytes
    revoked_at: dt.datetime | None
    last_sequence: int
    last_hash: bytes


_KEY_COLUMNS = tuple(_KEYS.c[f.name] for f in fields(SignerKey))
_KEY_FOR_UPDATE = Statement(
    select(*_KEY_COLUMNS).where(_KEYS.c.key_id == bindparam("key_id")).with_for_update()
)
_LOCK_KEYS = (
    select(_KEYS.c.key_id)
    .where(_KEYS.c.key_id.in_(bindparam("key_ids", expanding=True)))
    .order_by(_KEYS.c.key_id)
    .with_for_update()
)
_MOVE_HEAD = Statement(
    update(_KEYS)
    .where(_KEYS.c.key_id == bindparam("k_id"))
    .values(last_sequence=bindparam("k_sequence"), last_hash=bindparam("k_digest"))
)
# The same move, made only if the key is still the caller's, unrevoked, the very key the signature
# verified with, and its head is the envelope's predecessor: one statement (which takes the key's
# row lock) instead of a locked read and a write.
_MOVE_HEAD_IF_NEXT = Statement(
    update(_KEYS)
    .where(
        _KEYS.c.key_id == bindparam("k_id"),
        _KEYS.c.region == bindparam("k_region"),
        _KEYS.c.owner == bindparam("k_owner"),
        _KEYS.c.revoked_at.is_(None),
        _KEYS.c.public_key == bindparam("k_public"),
        _KEYS.c.last_sequence == bindparam("k_previous_sequence"),
        _KEYS.c.last_hash == bindparam("k_previous_hash"),
    )
    .values(last_sequence=bindparam("k_sequence"), last_hash=bindparam("k_digest"))
)
_ENVELOPE_AT = Statement(
    select(_ENVELOPES.c.envelope_hash).where(
        _ENVELOPES.c.key_id == bindparam("key_id"), _ENVELOPES.c.sequence == bindparam("sequence")
    )
)

ENVELOPE_COLUMNS = (
    "envelope_hash",
    "key_id",
    "region",
    "sequence",
    "previous_hash",
    "content_type",
    "payload",
    "sign_time_seconds",
    "sign_time_nanos",
    "signature",
    "received_at",
)
"""An envelope row's columns after its id."""
# Envelope ids are allocated as max(id) + 1, under the audit-head lock every writer of envelopes
# holds, so they follow commit order.
_NEXT_ENVELOPE_ID = func.coalesce(func.max(_ENVELOPES.c.id), 0) + literal_column("1")
_NEXT_ID = Statement(select(_NEXT_ENVELOPE_ID))
# One envelope: its id taken in the insert itself, one round trip, not two.
_INSERT_ENVELOPE = Statement(
    insert(_ENVELOPES).from_select(
        ["id", *ENVELOPE_COLUMNS],
        select(
            _NEXT_ENVELOPE_ID,
            *(bindparam(f"e_{name}", type_=_ENVELOPES.c[name].type) for name in ENVELOPE_COLUMNS),
        ),
    )
)


def key_for_update(conn: Connection, key_id: str) -> SignerKey | None:
    """The signing key's row, locked to the commit (None: no such key)."""
    row = _KEY_FOR_UPDATE.first(conn, {"key_id": key_id})
    return None if row is None else SignerKey(*row)


def lock_keys(conn: Connection, key_ids: Sequence[str]) -> None:
    """Lock the rows of several signing keys in key-id order, for a transaction that will handle
    requests of each (a group commit): every writer takes signing keys before the audit head, and
    in one order, so such transactions in several processes cannot deadlock. SQLite has a single
    writer and needs none of it."""
    wanted = sorted(set(key_ids))
    if len(wanted) > 1 and conn.dialect.name != "sqlite":
        conn.execute(_LOCK_KEYS, {"key_ids": wanted}).all()


@dataclass(frozen=True, slots=True)
class ExpectedHead:
    """What a signer's row must still say for its chain to move without reading it first."""

    region: str
    owner: str
    public_key: bytes
    sequence: int
    hash: bytes


def advance_chain(
    conn: Connection,
    key_id: str,
    sequence: int,
    digest: bytes,
    *,
    expected: ExpectedHead | None = None,
) -> bool:
    """Move a signer's chain head to (``sequence``, ``digest``). With ``expected``, only if the
    row still says so (see ``ExpectedHead``); returns whether the head moved."""
    if expected is None:
        _MOVE_HEAD.execute(conn, {"k_id": key_id, "k_sequence": sequence, "k_digest": digest})
        return True
    moved = _MOVE_HEAD_IF_NEXT.execute(
        conn,
        {
            "k_id": key_id,
            "k_region": expected.region,
            "k_owner": expected.owner,
            "k_public": expected.public_key,
            "k_previous_sequence": expected.sequence,
            "k_previous_hash": expected.hash,
            "k_sequence": sequence,
            "k_digest": digest,
        },
    )
    return moved == 1


def envelope_hash_at(conn: Connection, key_id: str, sequence: int) -> bytes | None:
    """The hash of the envelope a key signed at ``sequence``, if one was accepted."""
    row = _ENVELOPE_AT.first(conn, {"key_id": key_id, "sequence": sequence})
    return None if row is None else bytes(row[0])


def insert_envelope(
    conn: Connection, values: Mapping[str, Any], writes: Writes | None = None
) -> None:
    """Store one envelope (``values`` by ``ENVELOPE_COLUMNS``), its id the next: now, or added to
    ``writes``."""
    row = {f"e_{name}": values[name] for name in ENVELOPE_COLUMNS}
    if writes is None:
        _INSERT_ENVELOPE.execute(conn, row)
    else:
        writes.add(_INSERT_ENVELOPE, row)


def next_envelope_id(conn: Connection) -> int:
    """The id the next envelope takes (a batch takes this and the ones after it)."""
    row = _NEXT_ID.first(conn)
    assert row is not None
    return int(row[0])
