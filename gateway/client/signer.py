"""Envelope signing: one key's per-signer sequence and hash chain, and checks of received
envelopes' signatures."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import timestamp_pb2
from yrd.interop.v1 import envelope_pb2, key_service_pb2

from gateway.security.signing import (
    GENESIS_HASH,
    EnvelopeFields,
    envelope_hash,
    key_id_of,
    raw_public_key,
    sign,
    signing_input,
    verify,
)


def envelope_fields_of(env: envelope_pb2.SignedEnvelope) -> EnvelopeFields:
    """The signed fields of a received envelope (for checking another region's signature)."""
    return EnvelopeFields(
        content_type=env.content_type,
        payload=env.payload,
        key_id=env.key_id,
        sequence=env.sequence,
        previous_hash=env.previous_hash,
        sign_time_seconds=env.sign_time.seconds,
        sign_time_nanos=env.sign_time.nanos,
    )


def envelope_signature_ok(env: envelope_pb2.SignedEnvelope, public_key: bytes) -> bool:
    """Whether the envelope carries a valid signature by public_key over its exact bytes."""
    return key_id_of(public_key) == env.key_id and verify(
        public_key, envelope_fields_of(env), env.signature
    )


def admin_signed_payload(
    env: envelope_pb2.SignedEnvelope,
    keys: dict[str, key_service_pb2.SigningKey],
    region: str,
    admin: str,
) -> bytes | None:
    """The payload of a decision's envelope when it is signed by that administrator's registered
    key (``keys`` by key id); None otherwise."""
    key = keys.get(env.key_id)
    if key is None or key.owner != f"admin/{admin}" or key.region != region:
        return None
    return env.payload if envelope_signature_ok(env, key.public_key) else None


@dataclass
class EnvelopeSigner:
    """Signs envelopes with one key, keeping the per-signer sequence and hash chain."""

    private_key: ed25519.Ed25519PrivateKey
    sequence: int = 0
    """Sequence of the last envelope signed (0 before the first)."""
    previous_hash: bytes = GENESIS_HASH
    """Hash of the last envelope signed."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Derived once: deriving it costs more than the signature itself.
        self._key_id = key_id_of(raw_public_key(self.private_key))

    def head(self) -> tuple[int, bytes]:
        """(sequence, hash) of the last envelope signed."""
        with self._lock:
            return self.sequence, self.previous_hash

    def rewind(self, sequence: int, previous_hash: bytes) -> None:
        """Move the chain head back (envelopes signed after it were refused, or never sent)."""
        with self._lock:
            self.sequence, self.previous_hash = sequence, previous_hash

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(
        self, content_type: str, payload: bytes, now: dt.datetime | None = None
    ) -> envelope_pb2.SignedEnvelope:
        """The next envelope of this signer's chain, carrying payload unchanged."""
        when = now or dt.datetime.now(dt.UTC)
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(when)
        with self._lock:
            fields = EnvelopeFields(
                content_type=content_type,
                payload=payload,
                key_id=self.key_id,
                sequence=self.sequence + 1,
                previous_hash=self.previous_hash,
                sign_time_seconds=ts.seconds,
                sign_time_nanos=ts.nanos,
            )
            signed = signing_input(fields)
            signature = sign(self.private_key, fields, signed=signed)
            self.sequence = fields.sequence
            self.previous_hash = envelope_hash(fields, signature, signed=signed)
        return envelope_pb2.SignedEnvelope(
            content_type=content_type,
            payload=payload,
            key_id=fields.key_id,
            sequence=fields.sequence,
            previous_hash=fields.previous_hash,
            sign_time=ts,
            signature=signature,
        )
