"""The one intake of signed requests: records (publish), transfers, retirements, recognition
decisions. An envelope is well formed, of the expected content type, signed by the caller's own
key (the registry's, or the calling administrator's) over exactly these bytes, and exactly the
next of its signer's chain (replay, gap and fork refused), and signed within the allowed skew
of the gateway's clock (``sign_time``, checked only for an envelope that would take a new place
in the chain: a replay is recognised first); then it takes its place in the chain and is stored.
A request repeated with byte-identical content is answered as the first.

What needs no database — the envelope's shape, its signing input and hash, the signature itself
when this process has seen the key before, and the payload's parsing — is done before the
transaction (:func:`prepare_signed`, :func:`receive`), so the time under the write lock is spent
on the database alone; what it finds is raised where those checks always stood, so answers and
their order do not depend on what was done early. The key's row is still read under its lock on
every request: its region, owner, revocation and chain head are never taken from memory, only its
public key (a key id is the hash of its public key, so that part of the row never changes).

Locks are taken in the order every writer uses: the signing key, then the audit head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2

from gateway import errors, validation
from gateway.security.identity import Identity
from gateway.security.signing import (
    EnvelopeFields,
    envelope_hash,
    key_id_of,
    signing_input,
    verify,
)
from gateway.storage import signers
from gateway.storage.audit_log import AuditLog, audit_log_of
from gateway.storage.db import UnitOfWork
from gateway.storage.direct import Writes

M = TypeVar("M", bound=ProtoMessage)

DEFAULT_SIGN_TIME_SKEW = dt.timedelta(minutes=10)
"""How far ``sign_time`` may be from the gateway's clock, either way (the gateway's setting
``sign_time_skew_s`` is passed in at assembly)."""

MAX_SEQUENCE = 2**63 - 1
"""Largest envelope sequence: what a signed 64-bit database integer holds."""
_KEY_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

# -- the envelope's own checks --------------------------------------------------------------------


def envelope_fields(env: envelope_pb2.SignedEnvelope) -> EnvelopeFields:
    """The signed fields of an envelope, after checking their shapes."""
    content_type, key_id, payload = env.content_type, env.key_id, env.payload
    previous_hash, signature, sequence = env.previous_hash, env.signature, env.sequence
    has_time = env.HasField("sign_time")
    seconds, nanos = env.sign_time.seconds, env.sign_time.nanos
    if (
        content_type
        and _KEY_ID.fullmatch(key_id)
        and 1 <= sequence <= MAX_SEQUENCE
        and len(previous_hash) == 32
        and len(signature) == 64
        and has_time
        and 0 <= nanos < 1_000_000_000
        and payload
    ):
        return EnvelopeFields(
            content_type, payload, key_id, sequence, previous_hash, seconds, nanos
        )
    problems: dict[str, str] = {}
    if not content_type:
        problems["content_type"] = "required"
    if not _KEY_ID.fullmatch(key_id):
        problems["key_id"] = "must be 32 lowercase hex characters"
    if not 1 <= sequence <= MAX_SEQUENCE:
        problems["sequence"] = f"must be 1 to {MAX_SEQUENCE}"
    if len(previous_hash) != 32:
        problems["previous_hash"] = "must be 32 bytes"
    if len(signature) != 64:
        problems["signature"] = "must be 64 bytes"
    if not has_time:
        problems["sign_time"] = "required"
    elif not 0 <= nanos < 1_000_000_000:
        problems["sign_time"] = "nanos out of range"
    if not payload:
        problems["payload"] = "required"
    raise errors.EnvelopeMalformed("malformed envelope", field_errors=problems)


def sign_time_refusal(
    fields: EnvelopeFields, now: dt.datetime | None, skew: dt.timedelta | None
) -> errors.DomainError | None:
    """The refusal of an envelope whose ``sign_time`` is more than ``skew`` from ``now`` (None:
    within it, or no window applies). Exact: compared in nanoseconds, whatever the values."""
    if now is None or skew is None:
        return None
    signed_ns = fields.sign_time_seconds * 1_000_000_000 + fields.sign_time_nanos
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    now_ns = ((now - _EPOCH) // _MICROSECOND) * 1000
    max_ns = (skew // _MICROSECOND) * 1000
    if abs(signed_ns - now_ns) <= max_ns:
        return None
    ahead = signed_ns > now_ns
    return errors.SignTimeOutOfRange(
        f"sign_time is {'ahead of' if ahead else 'behind'} the gateway's clock by more than "
        f"{skew.total_seconds():g} s",
        metadata={
            "key_id": fields.key_id,
            "sign_time": f"{fields.sign_time_seconds}.{fields.sign_time_nanos:09d}",
            "gateway_time": f"{now_ns // 1_000_000_000}.{now_ns % 1_000_000_000:09d}",
            "max_skew_seconds": f"{skew.total_seconds():g}",
        },
        field_errors={"sign_time": "outside the allowed skew of the gateway's clock"},
    )


class SigningKey(Protocol):
    """What the signer's check reads of a key's row (an ORM row or ``signers.SignerKey``)."""

    @property
    def key_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def revoked_at(self) -> dt.datetime | None: ...


def check_signer(
    key: SigningKey | None, fields: EnvelopeFields, region: str, owner: str = "registry"
) -> None:
    """The key exists, belongs to the caller's region and owner (the registry, or that
    administrator), and is not revoked."""
    if key is not None and key.region == region and key.owner == owner and key.revoked_at is None:
        return
    meta = {"key_id": fields.key_id}
    if key is None:
        raise errors.SigningKeyUnknown(f"no signing key {fields.key_id}", metadata=meta)
    if key.region != region:
        raise errors.SigningKeyWrongRegion(
            f"key {key.key_id} signs for {key.region}, the caller is {region}",
            metadata={**meta, "key_region": key.region, "caller_region": region},
        )
    if key.owner != owner:
        raise errors.SigningKeyNotForRecords(
            f"key {key.key_id} belongs to {key.owner}, not to the caller ({owner})",
            metadata=meta,
        )
    if key.revoked_at is not None:
        raise errors.SigningKeyRevoked(f"key {key.key_id} was revoked", metadata=meta)


def check_chain(
    conn: Connection,
    key_id: str,
    last_sequence: int,
    last_hash: bytes,
    fields: EnvelopeFields,
    digest: bytes,
    earlier: bytes | None = None,
    untimely: errors.DomainError | None = None,
) -> None:
    """The envelope is exactly the next of its signer's chain (replay, gap and fork refused),
    then its ``sign_time`` is within the allowed skew (``untimely``: its refusal, from
    :func:`sign_time_refusal`, raised only for an envelope the chain would take).

    ``earlier`` is the hash of an envelope with the same sequence accepted earlier in the same
    batch, when there is one.
    """
    if fields.sequence == last_sequence + 1 and fields.previous_hash == last_hash:
        if untimely is not None:
            raise untimely
        return
    meta = {
        "key_id": key_id,
        "expected_sequence": str(last_sequence + 1),
        "sequence": str(fields.sequence),
    }
    if fields.sequence <= last_sequence:
        stored = earlier or signers.envelope_hash_at(conn, key_id, fields.sequence)
        if stored == digest:
            raise errors.EnvelopeReplayed(
                f"envelope {fields.sequence} of key {key_id} was accepted before", metadata=meta
            )
        raise errors.SequenceReused(
            f"sequence {fields.sequence} of key {key_id} is taken by another envelope",
            metadata=meta,
        )
    if fields.sequence > last_sequence + 1:
        raise errors.SequenceGap(
            f"expected sequence {last_sequence + 1}, got {fields.sequence}", metadata=meta
        )
    if fields.previous_hash != last_hash:
        raise errors.PreviousHashMismatch(
            "previous_hash is not the hash of the signer's last accepted envelope",
            metadata={**meta, "expected_previous_hash": last_hash.hex()},
        )


# -- a signed request other than a record ---------------------------------------------------------

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
    untimely: errors.DomainError | None = None
    """The refusal of its ``sign_time`` (raised at the chain check; None: within the skew)."""


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
    audit: AuditLog
    """The audit head, locked, through which the transaction appends its entries."""
    chained: bool = False
    """The signer's chain has already moved on to this envelope (only the envelope row is left
    to store)."""
    untimely: errors.DomainError | None = None
    """The refusal of its ``sign_time``, raised at the chain check unless it is a replay."""

    @property
    def payload(self) -> bytes:
        return self.fields.payload


def prepare_signed(
    caller: Identity,
    env: envelope_pb2.SignedEnvelope,
    content_type: str,
    *,
    now: dt.datetime | None = None,
    skew: dt.timedelta | None = None,
) -> PreparedEnvelope:
    """The checks that need no database, in the order :func:`open_signed` makes them: the caller
    signs as a region, the envelope is well formed and of the expected content type. The
    signature is verified too when the key is known, but a bad one is only reported once the key
    itself has passed its checks (so the answer is the same as if nothing had been done early).
    With ``now`` and ``skew``, the ``sign_time`` window applies (see :func:`check_chain`)."""
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
    untimely = sign_time_refusal(fields, now, skew)
    return PreparedEnvelope(env, fields, signed, digest, public_key, valid, untimely)


def open_signed(
    session: Session,
    caller: Identity,
    env: envelope_pb2.SignedEnvelope,
    content_type: str,
    *,
    now: dt.datetime | None = None,
    skew: dt.timedelta | None = None,
) -> SignedRequest:
    """The envelope is well formed, of the expected content type, and signed by the caller's own
    key (the registry's, or the calling administrator's); locks the key, then the audit head."""
    prepared = prepare_signed(caller, env, content_type, now=now, skew=skew)
    return open_prepared(UnitOfWork.of(session), caller, prepared)


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
    if advance and prepared.valid and prepared.untimely is None:
        assert prepared.verified_with is not None
        expected = signers.ExpectedHead(
            caller.region,
            caller.actor,
            prepared.verified_with,
            fields.sequence - 1,
            fields.previous_hash,
        )
        if signers.advance_chain(
            conn, fields.key_id, fields.sequence, prepared.digest, expected=expected
        ):
            head = SignerHead(fields.key_id, caller.region, fields.sequence, prepared.digest)
            return SignedRequest(
                head, fields, prepared.digest, prepared.envelope, audit_log_of(unit), chained=True
            )
    key = signers.key_for_update(conn, fields.key_id)
    check_signer(key, fields, caller.region, owner=caller.actor)
    assert key is not None
    audit = audit_log_of(unit)
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
    return SignedRequest(
        head, fields, prepared.digest, prepared.envelope, audit, untimely=prepared.untimely
    )


def store_signed(session: Session, request: SignedRequest, now: dt.datetime) -> None:
    """The chain check, then the envelope row and the signer's new head (under the audit-head
    lock ``open_signed`` took, so envelope ids are allocated in commit order)."""
    unit = UnitOfWork.of(session)
    advance(unit, request)
    store_envelope(unit.conn, request, now)


def advance(unit: UnitOfWork, request: SignedRequest) -> None:
    """The chain check, and the signer's new head: the part of ``store_signed`` that can refuse
    (its envelope row is written by ``store_envelope``, which can be sent later)."""
    key, fields = request.key, request.fields
    if request.chained:
        return
    check_chain(
        unit.conn,
        key.key_id,
        key.last_sequence,
        key.last_hash,
        fields,
        request.digest,
        untimely=request.untimely,
    )
    signers.advance_chain(unit.conn, key.key_id, fields.sequence, request.digest)
    key.last_sequence, key.last_hash = fields.sequence, request.digest
    request.chained = True


def store_envelope(
    conn: Connection, request: SignedRequest, now: dt.datetime, writes: Writes | None = None
) -> None:
    """The envelope row of a request whose chain moved on (see ``advance``): written now, or
    added to ``writes``."""
    key, fields = request.key, request.fields
    assert request.chained, "the chain is checked before the envelope is stored"
    signers.insert_envelope(
        conn,
        {
            "envelope_hash": request.digest,
            "key_id": key.key_id,
            "region": key.region,
            "sequence": fields.sequence,
            "previous_hash": fields.previous_hash,
            "content_type": fields.content_type,
            "payload": fields.payload,
            "sign_time_seconds": fields.sign_time_seconds,
            "sign_time_nanos": fields.sign_time_nanos,
            "signature": request.envelope.signature,
            "received_at": now,
        },
        writes,
    )


# -- a request with a parsed body, answered once -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming(Generic[M]):
    """A signed request checked as far as it can be before its transaction."""

    prepared: PreparedEnvelope
    body: M
    """The payload parsed (empty when it does not parse)."""
    invalid: errors.DomainError | None
    """Why the payload is refused (None: it is not), raised once the signature is checked."""
    check: str | None
    """The number the caller gives the signer's check (set on its refusals' metadata)."""

    @property
    def payload_sha256(self) -> bytes:
        return hashlib.sha256(self.prepared.fields.payload).digest()

    @property
    def key_id(self) -> str:
        return self.prepared.fields.key_id


def decode(
    kind: type[M], payload: bytes, validate: Callable[[M], None] | None = None
) -> tuple[M, errors.DomainError | None]:
    """The payload parsed as ``kind`` and validated (the validation layer's rules, then
    ``validate``'s), or the error to raise where those checks stand (after the signature's)."""
    try:
        message = kind.FromString(payload)
    except (DecodeError, RecursionError) as exc:
        err = errors.PayloadMalformed(f"payload is not a {kind.DESCRIPTOR.name}")
        err.__cause__ = exc
        return kind(), err
    invalid = validation.refusal(message)
    if invalid is not None:
        return message, invalid
    if validate is not None:
        try:
            validate(message)
        except errors.DomainError as exc:
            return message, exc
    return message, None


def _numbered(exc: errors.DomainError, check: str | None) -> None:
    """A refusal of the signer's check, with that check's number (the envelope's own shape and
    content type keep none)."""
    if check is not None and not isinstance(
        exc, (errors.EnvelopeMalformed, errors.PayloadMalformed)
    ):
        exc.metadata.setdefault("check", check)


def receive(
    caller: Identity,
    env: envelope_pb2.SignedEnvelope,
    content_type: str,
    kind: type[M],
    validate: Callable[[M], None] | None = None,
    *,
    check: str | None = None,
    now: dt.datetime | None = None,
    skew: dt.timedelta | None = None,
) -> Incoming[M]:
    """What can be checked before the transaction (see ``prepare_signed``), and the payload
    parsed as ``kind`` (its refusal waits for the signature's check). ``check`` numbers the
    signer's check in the caller's list of checks; ``now`` and ``skew`` the ``sign_time``
    window."""
    try:
        prepared = prepare_signed(caller, env, content_type, now=now, skew=skew)
    except errors.DomainError as exc:
        _numbered(exc, check)
        raise
    body, invalid = decode(kind, prepared.fields.payload, validate)
    return Incoming(prepared, body, invalid, check)


def open_incoming(unit: UnitOfWork, caller: Identity, incoming: Incoming[Any]) -> SignedRequest:
    """The caller's key signed exactly these bytes (its chain moved on at once when it could);
    then the payload's own refusal, if any."""
    try:
        signed = open_prepared(unit, caller, incoming.prepared, advance=True)
    except errors.DomainError as exc:
        _numbered(exc, incoming.check)
        raise
    if incoming.invalid is not None:
        raise incoming.invalid
    return signed


def repeat(
    unit: UnitOfWork, caller: Identity, signed: SignedRequest, name: str, now: dt.datetime
) -> None:
    """A request repeated under its id with byte-identical content. Resent as the very same
    envelope, nothing is stored; signed anew, its envelope takes its place in the signer's
    chain (so a client that re-signs its retries stays in step) and is audited."""
    try:
        advance(unit, signed)
    except errors.EnvelopeReplayed:
        return
    store_envelope(unit.conn, signed, now)
    signed.audit.append(
        kind="request.repeated",
        subject=name,
        actor_region=caller.region or "",
        actor=caller.actor,
        detail={"envelope_hash": signed.digest.hex(), "sequence": signed.fields.sequence},
        now=now,
    )
