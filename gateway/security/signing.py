"""Signed envelopes: the exact signing input, Ed25519 sign and verify. Pure, no I/O.

The signing input is an unambiguous length-prefixed encoding (each field: 4-byte big-endian
length, then the bytes) of the domain tag, content type, key id, sequence (8 bytes), previous
hash, timestamp (seconds and nanos, 12 bytes) and the SHA-256 of the payload. The payload bytes are
never re-serialised: the signature covers the bytes as produced.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

DOMAIN_TAG = b"yrd-interop/v1/envelope"
GENESIS_HASH = bytes(32)
"""previous_hash of a signer's first envelope."""


@dataclass(frozen=True, slots=True)
class EnvelopeFields:
    """Everything an envelope signature covers."""

    content_type: str
    payload: bytes
    key_id: str
    sequence: int
    previous_hash: bytes
    sign_time_seconds: int
    sign_time_nanos: int


def key_id_of(public_key: bytes) -> str:
    """Key id of a raw Ed25519 public key: first 32 hex characters of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:32]


_P = 2**255 - 19
_SMALL_ORDER_Y = frozenset(
    {
        0,  # order 4
        1,  # the identity
        _P - 1,  # order 2
        0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,  # order 8
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,  # order 8
        _P,  # non-canonical 0
        _P + 1,  # non-canonical 1
    }
)
"""y-coordinates of the Ed25519 points of small order (and their non-canonical encodings), as
libsodium's blocklist has them: a key whose point is one of these verifies forged signatures."""


def is_weak_public_key(raw: bytes) -> bool:
    """Whether a raw 32-byte Ed25519 public key encodes a point of small order (either sign):
    anyone can make signatures that verify under such a key, so nothing signed with it is
    attributable. Keys of 32 bytes only."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    return y in _SMALL_ORDER_Y


def raw_public_key(private_key: ed25519.Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a private key."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> ed25519.Ed25519PublicKey:
    """The key object for raw bytes, cached: the same few registry keys sign every envelope."""
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def signing_input(fields: EnvelopeFields) -> bytes:
    """The exact bytes an envelope signature is computed over."""
    if fields.sequence < 0 or fields.sequence >= 2**64:
        raise ValueError("sequence out of range")
    return b"".join(
        [
            _field(DOMAIN_TAG),
            _field(fields.content_type.encode()),
            _field(fields.key_id.encode()),
            _field(struct.pack(">Q", fields.sequence)),
            _field(fields.previous_hash),
            _field(struct.pack(">qI", fields.sign_time_seconds, fields.sign_time_nanos)),
            _field(hashlib.sha256(fields.payload).digest()),
        ]
    )


def envelope_hash(
    fields: EnvelopeFields, signature: bytes, *, signed: bytes | None = None
) -> bytes:
    """SHA-256 identifying an envelope: over its signing input and signature.

    ``signed`` is the signing input when the caller has it already (it is costly to rebuild).
    """
    data = signed if signed is not None else signing_input(fields)
    return hashlib.sha256(data + _field(signature)).digest()


def sign(
    private_key: ed25519.Ed25519PrivateKey, fields: EnvelopeFields, *, signed: bytes | None = None
) -> bytes:
    """Ed25519 signature of an envelope's signing input (``signed``, when the caller has it)."""
    return private_key.sign(signed if signed is not None else signing_input(fields))


def verify(
    public_key: bytes, fields: EnvelopeFields, signature: bytes, *, signed: bytes | None = None
) -> bool:
    """Whether signature is a valid Ed25519 signature of the envelope by public_key."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        _public_key(public_key).verify(
            signature, signed if signed is not None else signing_input(fields)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
