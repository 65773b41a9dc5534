"""A signed request other than a record (transfer, retirement, recognition decision): the caller's
own key signed exactly these bytes; then, once the request is known to be new, the envelope takes
its place in the signer's chain and is stored.

Locks are taken in the order every writer uses: the signing key, then the audit head.

What needs no database — the envelope's shape, its signing input and hash, and the signature
itself when this process has seen the key before — is done by :func:`prepare_signed` before the
transaction, so the time under the write lock is spent on the database alone. The key's row is
still read under its lock on every request: its region, owner, revocation and chain head are
never taken from memory, only its public key (a key id is the hash of its public key, so that
part of the row never changes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, literal_column, select, update
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2

from gateway import errors
from gateway.security.identity import Identity
from gateway.security.signing import (
    EnvelopeFields,
    envelope_hash,
    key_id_of,
    signing_input,
    verify,
)
from gateway.services.publish import check_chain, check_signer, envelope_fields
from gateway.storage.db import UnitOfWork
from gateway.storage.direct import Statement, Writes
from gateway.storage.models import EnvelopeRow, SigningKeyRow
from gateway.storage.repositories import AuditChain, audit_chain


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_KEYS = _table(SigningKeyRow)
_ENVELOPES = _table(EnvelopeRow)

_KEY_COLUMNS = tuple(_KEYS.c)
_KEY_FOR_UPDATE = Statement(
    select(*_KEY_COLUMNS).where(_KEYS.c.key_id == bindparam("key_id")).with_for_update()
)
# The signer's chain moves on only if the key is still the caller's, unrevoked, the very key the
# signature verified with, and its head is the envelope's predecessor: one statement (which takes
# the key's row lock) instead of a locked read and a write. No row matched: the careful path.
_ADVANCE_CHAIN = Statement(
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
_LOCK_KEYS = (
    select(_KEYS.c.key_id)
    .where(_KEYS.c.key_id.in_(bindparam("key_ids", expanding=True)))
    .order_by(_KEYS.c.key_id)
    .with_for_update()
)
_STORE_HEAD = Statement(
    update(_KEYS)
    .where(_KEYS.c.key_id == bindparam("k_id"))
    .values(last_sequence=bindparam("k_sequence"), last_hash=bindparam("k_digest"))
)
_ENVELOPE_COLUMNS = (
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
# The next envelope id is taken from max(id) in the insert itself (under the audit-head lock, so
# ids are allocated in commit order): one round trip, not two.
_INSERT_ENVELOPE = Statement(
    insert(_ENVELOPES).from_select(
        ["id", *_ENVELOPE_COLUMNS],
        select(
            func.coalesce(func.max(_ENVELOPES.c.id), 0) + literal_column("1"),
            *(bindparam(f"e_{name}", type_=_ENVELOPES.c[name].type) for name in _ENVELOPE_COLUMNS),
        ),
    )
)

_PUBLIC_KEYS: dict[str, bytes] = {}
"""Public keys by key id, as read from the key directory in earlier requests. Only what can never
change is kept: whether a key may sign is read from its locked row every time."""


@dataclass(frozen=True, slots=True)
class PreparedEnvelope:
    """An envelope checked as far as it can be without the database."""

    envelope: envelope_pb2.SignedEnvelope
    fields: EnvelopeFields
    signed: bytes
    """The signing input."""
    digest: bytes
    verified_with: bytes | None
    """The public key the signature was checked with (None: the key was not known yet)."""
    valid: bool
    """Whether it verified with that key."""


@dataclass(slots=True)
class SignerHead:
    """The signing key of a request, and the head of its chain (the row is locked)."""

    key_id: str
    region: str
    last_sequence: int
    last_hash: bytes


@dataclass
class SignedRequest:
    """A verified envelope and the key that signed it (locked for the transaction)."""

    key: SignerHead
    fields: EnvelopeFields
    digest: bytes
    envelope: envelope_pb2.SignedEnvelope
    audit: AuditChain
    """The audit head, locked, through which the transaction appends its entries."""
    chained: bool = False
    """The signer's chain has already moved on to this envelope (only the envelope row is left
    to store)."""

    @property
    def payload(self) -> bytes:
        return self.fields.payload


def lock_signing_keys(conn: Connection, key_ids: Sequence[str]) -> None:
    """Lock the rows of several signing keys in key-id order, for a transaction that will handle
    requests of each (a group commit): every writer takes signing keys before the audit head, and
    in one order, so such transactions in several processes cannot deadlock. SQLite has a single
    writer and needs none of it."""
    wanted = sorted(set(key_ids))
    if len(wanted) > 1 and conn.dialect.name != "sqlite":
        conn.execute(_LOCK_KEYS, {"key_ids": wanted}).all()


def lock_audit_head(session: Session) -> None:
    """Take the audit head's row lock (held to the commit)."""
    audit_chain(session.connection())


def prepare_signed(
    caller: Identity, env: envelope_pb2.SignedEnvelope, content_type: str
) -> PreparedEnvelope:
    """The checks that need no database, in the order :func:`open_signed` makes them: the caller
    signs as a region, the envelope is well formed and of the expected content type. The
    signature is verified too when the key is known, but a bad one is only reported once the key
    itself has passed its checks (so the answer is the same as if nothing had been done early)."""
    if caller.region is None:
        raise errors.PermissionDenied("the gateway signs no requests of its own")
    fields = envelope_fields(env)
    if fields.content_type != content_type:
        raise errors.PayloadMalformed(
            f"content type must be {content_type}",
            field_errors={"content_type": f"expected {content_type}"},
        )
    signed = signing_input(fields)
    digest = envelope_hash(fields, env.signature, signed=signed)
    public_key = _PUBLIC_KEYS.get(fields.key_id)
    valid = public_key is not None and verify(public_key, fields, env.signature, signed=signed)
    return PreparedEnvelope(env, fields, signed, digest, public_key, valid)


def _audit(unit: UnitOfWork) -> AuditChain:
    """The audit head, locked and read once per transaction (requests sharing a transaction
    chain their entries on it; a partial rollback makes the next one read it again)."""
    audit = unit.memo.get("audit")
    if not isinstance(audit, AuditChain):
        audit = unit.memo["audit"] = audit_chain(unit.conn)
    return audit


def open_signed(
    session: Session, caller: Identity, env: envelope_pb2.SignedEnvelope, content_type: str
) -> SignedRequest:
    """The envelope is well formed, of the expected content type, and signed by the caller's own
    key (the registry's, or the calling administrator's); locks the key, then the audit head."""
    return open_prepared(UnitOfWork.of(session), caller, prepare_signed(caller, env, content_type))


def open_prepared(
    unit: UnitOfWork, caller: Identity, prepared: PreparedEnvelope, *, advance: bool = False
) -> SignedRequest:
    """:func:`open_signed` for an envelope :func:`prepare_signed` checked already.

    With ``advance``, an envelope that verified before the transaction and is exactly the next
    of its signer's chain takes its place in it at once (nothing else can refuse it later but
    errors that roll the transaction back); anything else takes the careful path, whose answers
    and their order are those of :func:`open_signed`.
    """
    assert caller.region is not None
    conn = unit.conn
    fields = prepared.fields
    if advance and prepared.valid:
        moved = _ADVANCE_CHAIN.execute(
            conn,
            {
                "k_id": fields.key_id,
                "k_region": caller.region,
                "k_owner": caller.actor,
                "k_public": prepared.verified_with,
                "k_previous_sequence": fields.sequence - 1,
                "k_previous_hash": fields.previous_hash,
                "k_sequence": fields.sequence,
                "k_digest": prepared.digest,
            },
        )
        if moved == 1:
            head = SignerHead(fields.key_id, caller.region, fields.sequence, prepared.digest)
            return SignedRequest(
                head, fields, prepared.digest, prepared.envelope, _audit(unit), chained=True
            )
    row = _KEY_FOR_UPDATE.first(conn, {"key_id": fields.key_id})
    found = (
        None
        if row is None
        else SigningKeyRow(**{c.key: v for c, v in zip(_KEY_COLUMNS, row, strict=True)})
    )
    check_signer(found, fields, caller.region, owner=caller.actor)
    assert found is not None
    key = found
    audit = _audit(unit)
    if prepared.verified_with == key.public_key:
        valid = prepared.valid
    else:
        valid = verify(key.public_key, fields, prepared.envelope.signature, signed=prepared.signed)
    if key_id_of(key.public_key) == key.key_id:
        _PUBLIC_KEYS[key.key_id] = key.public_key
    if not valid:
        raise errors.SignatureInvalid(
            "the signature does not verify", metadata={"key_id": key.key_id}
        )
    head = SignerHead(key.key_id, key.region, key.last_sequence, key.last_hash)
    return SignedRequest(head, fields, prepared.digest, prepared.envelope, audit)


def store_signed(session: Session, request: SignedRequest, now: dt.datetime) -> None:
    """The chain check, then the envelope row and the signer's new head (under the audit-head
    lock ``open_signed`` took, so envelope ids are allocated in commit order)."""
    unit = UnitOfWork.of(session)
    advance_chain(unit, request)
    insert_envelope(unit.conn, request, now)


def advance_chain(unit: UnitOfWork, request: SignedRequest) -> None:
    """The chain check, and the signer's new head: the part of ``store_signed`` that can refuse
    (its envelope row is written by ``insert_envelope``, which can be sent later)."""
    key, fields = request.key, request.fields
    if request.chained:
        return
    check_chain(unit.session, key.key_id, key.last_sequence, key.last_hash, fields, request.digest)
    _STORE_HEAD.execute(
        unit.conn,
        {"k_id": key.key_id, "k_sequence": fields.sequence, "k_digest": request.digest},
    )
    key.last_sequence, key.last_hash = fields.sequence, request.digest
    request.chained = True


def insert_envelope(
    conn: Connection, request: SignedRequest, now: dt.datetime, writes: Writes | None = None
) -> None:
    """The envelope row of a request whose chain moved on (see ``advance_chain``): written now,
    or added to ``writes``."""
    key, fields = request.key, request.fields
    assert request.chained, "the chain is checked before the envelope is stored"
    row = {
        "e_envelope_hash": request.digest,
        "e_key_id": key.key_id,
        "e_region": key.region,
        "e_sequence": fields.sequence,
        "e_previous_hash": fields.previous_hash,
        "e_content_type": fields.content_type,
        "e_payload": fields.payload,
        "e_sign_time_seconds": fields.sign_time_seconds,
        "e_sign_time_nanos": fields.sign_time_nanos,
        "e_signature": request.envelope.signature,
        "e_received_at": now,
    }
    if writes is None:
        _INSERT_ENVELOPE.execute(conn, row)
    else:
        writes.add(_INSERT_ENVELOPE, row)
