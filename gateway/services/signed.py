"""A signed request other than a record (transfer, retirement, recognition decision): the caller's
own key signed exactly these bytes; then, once the request is known to be new, the envelope takes
its place in the signer's chain and is stored.

Locks are taken in the order every writer uses: the signing key, then the audit head.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2

from gateway import errors
from gateway.security.identity import Identity
from gateway.security.signing import EnvelopeFields, envelope_hash, signing_input, verify
from gateway.services.publish import check_chain, check_signer, envelope_fields
from gateway.storage.models import AuditHeadRow, EnvelopeRow, SigningKeyRow


@dataclass
class SignedRequest:
    """A verified envelope and the key that signed it (locked for the transaction)."""

    key: SigningKeyRow
    fields: EnvelopeFields
    digest: bytes
    envelope: envelope_pb2.SignedEnvelope

    @property
    def payload(self) -> bytes:
        return self.fields.payload


def lock_audit_head(session: Session) -> None:
    """Take the audit head's row lock (held to the commit)."""
    session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()


def open_signed(
    session: Session, caller: Identity, env: envelope_pb2.SignedEnvelope, content_type: str
) -> SignedRequest:
    """The envelope is well formed, of the expected content type, and signed by the caller's own
    key (the registry's, or the calling administrator's); locks the key, then the audit head."""
    if caller.region is None:
        raise errors.PermissionDenied("the gateway signs no requests of its own")
    fields = envelope_fields(env)
    if fields.content_type != content_type:
        raise errors.PayloadMalformed(
            f"content type must be {content_type}",
            field_errors={"content_type": f"expected {content_type}"},
        )
    key = session.execute(
        select(SigningKeyRow).where(SigningKeyRow.key_id == fields.key_id).with_for_update()
    ).scalar_one_or_none()
    check_signer(key, fields, caller.region, owner=caller.actor)
    assert key is not None
    lock_audit_head(session)
    signed = signing_input(fields)
    if not verify(key.public_key, fields, env.signature, signed=signed):
        raise errors.SignatureInvalid(
            "the signature does not verify", metadata={"key_id": key.key_id}
        )
    return SignedRequest(key, fields, envelope_hash(fields, env.signature, signed=signed), env)


def store_signed(session: Session, request: SignedRequest, now: dt.datetime) -> None:
    """The chain check, then the envelope row and the signer's new head (under the audit-head
    lock ``open_signed`` took, so envelope ids are allocated in commit order)."""
    key, fields = request.key, request.fields
    check_chain(session, key.key_id, key.last_sequence, key.last_hash, fields, request.digest)
    next_id = (session.execute(select(func.max(EnvelopeRow.id))).scalar() or 0) + 1
    session.execute(
        insert(EnvelopeRow),
        [
            {
                "id": next_id,
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
            }
        ],
    )
    key.last_sequence, key.last_hash = fields.sequence, request.digest
