"""The envelope signature: exact signing input, sign and verify, tamper detection."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

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

KEY = ed25519.Ed25519PrivateKey.generate()
PUBLIC = raw_public_key(KEY)
FIELDS = EnvelopeFields(
    content_type="application/vnd.yrd.310000+json",
    payload=b'{"record_type": "methodology"}',
    key_id=key_id_of(PUBLIC),
    sequence=1,
    previous_hash=GENESIS_HASH,
    sign_time_seconds=1_764_000_000,
    sign_time_nanos=123,
)


def test_signature_verifies_with_the_signers_key_only() -> None:
    signature = sign(KEY, FIELDS)
    assert verify(PUBLIC, FIELDS, signature)
    other = raw_public_key(ed25519.Ed25519PrivateKey.generate())
    assert not verify(other, FIELDS, signature)


@pytest.mark.parametrize(
    "change",
    [
        {"content_type": "application/vnd.yrd.320000+xml"},
        {"payload": b'{"record_type": "methodology" }'},
        {"key_id": "0" * 32},
        {"sequence": 2},
        {"previous_hash": b"\x01" * 32},
        {"sign_time_seconds": 1_764_000_001},
        {"sign_time_nanos": 124},
    ],
)
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    signature = sign(KEY, FIELDS)
    assert not verify(PUBLIC, dataclasses.replace(FIELDS, **change), signature)  # type: ignore[arg-type]


def test_signing_input_is_unambiguous_across_field_boundaries() -> None:
    a = dataclasses.replace(FIELDS, content_type="ab", key_id="c")
    b = dataclasses.replace(FIELDS, content_type="a", key_id="bc")
    assert signing_input(a) != signing_input(b)
    assert signing_input(FIELDS).startswith(b"\x00\x00\x00\x17yrd-interop/v1/envelope")


def test_malformed_keys_and_signatures_are_rejected_not_raised() -> None:
    signature = sign(KEY, FIELDS)
    assert not verify(PUBLIC[:31], FIELDS, signature)
    assert not verify(PUBLIC, FIELDS, signature[:63])
    assert not verify(PUBLIC, FIELDS, bytes(64))


def test_envelope_hash_covers_the_signature() -> None:
    signature = sign(KEY, FIELDS)
    assert envelope_hash(FIELDS, signature) != envelope_hash(FIELDS, bytes(64))
    assert len(envelope_hash(FIELDS, signature)) == 32


def test_key_id_is_stable_hex() -> None:
    assert key_id_of(PUBLIC) == key_id_of(PUBLIC)
    assert len(key_id_of(PUBLIC)) == 32
    int(key_id_of(PUBLIC), 16)


@given(payload=st.binary(max_size=512), sequence=st.integers(min_value=1, max_value=2**64 - 1))
def test_roundtrip_for_any_payload_and_sequence(payload: bytes, sequence: int) -> None:
    fields = dataclasses.replace(FIELDS, payload=payload, sequence=sequence)
    assert verify(PUBLIC, fields, sign(KEY, fields))
