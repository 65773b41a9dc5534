"""The hand-written encodings of the publish hot path give exactly what the reference code gives
(``canonical_json`` and ``gateway.security.audit_chain.entry_hash``; the wire encoders are tested in
``test_protowire``); and the signature worker's verdicts are the library's."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2

from gateway import errors
from gateway.rpc.convert import envelope_result, publish_response
from gateway.security.audit_chain import ENTRY_TAG, EntryFields, EntryHasher, entry_hash
from gateway.security.signing import raw_public_key
from gateway.services.exchange import PublishOutcome
from gateway.services.publish import _detail, _reference_detail
from gateway.services.verifier import SignatureWorker

UINT64 = st.integers(0, 2**64 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)


@settings(max_examples=200)
@given(
    hash_hex=st.binary(min_size=32, max_size=32).map(bytes.hex),
    key_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    sequence=UINT64,
    index=st.integers(0, 2**31 - 1),
    record_id=st.integers(1, 2**63 - 1),
    body=st.binary(max_size=100),
    revision_of=st.none() | st.integers(1, 2**63 - 1),
    issuance=st.booleans(),
    numbers=st.tuples(INT64, INT64, INT64),
)
def test_audit_detail_template_is_canonical_json(
    hash_hex: str,
    key_id: str,
    sequence: int,
    index: int,
    record_id: int,
    body: bytes,
    revision_of: int | None,
    issuance: bool,
    numbers: tuple[int, int, int],
) -> None:
    record = (
        records_pb2.Issuance(
            quantity_grams=numbers[0],
            serials=records_pb2.SerialRange(start=numbers[1], end=numbers[2]),
        )
        if issuance
        else records_pb2.Methodology(version="1.0")
    )
    args = (hash_hex, key_id, sequence, index, record_id, body, revision_of, record)
    assert _detail(*args) == _reference_detail(*args)


@settings(max_examples=200)
@given(
    sequence=st.integers(1, 2**63 - 1),
    kind=st.sampled_from(["methodology.accepted", "project.accepted", "issuance.accepted"]),
    subject=st.text(max_size=80),
    actor_region=st.text(max_size=8),
    actor=st.text(max_size=30),
    detail=st.binary(max_size=300),
    previous=st.binary(min_size=32, max_size=32),
    created_at=TIMES,
)
def test_batch_audit_hash_is_entry_hash(
    sequence: int,
    kind: str,
    subject: str,
    actor_region: str,
    actor: str,
    detail: bytes,
    previous: bytes,
    created_at: dt.datetime,
) -> None:
    """The batch hasher (shared parts encoded once) gives ``entry_hash``, and both give the
    documented encoding: SHA-256 over length-prefixed (tag, sequence, kind, subject, actor
    region, actor, detail, previous hash, creation time in microseconds)."""
    chain = EntryHasher(actor_region, actor, created_at)
    digest = chain(sequence, kind, subject, detail, previous)
    assert digest == entry_hash(
        EntryFields(sequence, kind, subject, actor_region, actor, detail, previous, created_at)
    )

    def lp(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    micros = (created_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    parts = (
        ENTRY_TAG,
        struct.pack(">Q", sequence),
        kind.encode(),
        subject.encode(),
        actor_region.encode(),
        actor.encode(),
        detail,
        previous,
        struct.pack(">q", micros),
    )
    assert digest == hashlib.sha256(b"".join(lp(p) for p in parts)).digest()


def test_worker_verdicts_are_the_library_verdicts() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public = raw_public_key(key)
    other = raw_public_key(ed25519.Ed25519PrivateKey.generate())
    signed = [b"first", b"", b"x" * 70_000]  # bigger than a pipe's buffer
    items = [(public, key.sign(data), data) for data in signed]
    items.append((public, key.sign(b"one"), b"two"))  # signature over other bytes
    items.append((other, key.sign(b"one"), b"one"))  # someone else's key
    items.append((bytes(32), key.sign(b"one"), b"one"))  # not a curve point
    worker = SignatureWorker()
    try:
        pending = worker.submit(items)
        assert pending is not None
        assert worker.submit(items[:1]) is None  # busy: the caller verifies itself
        assert pending.verdicts() == [True, True, True, False, False, False]
        again = worker.submit(items[:2])
        assert again is not None
        assert again.verdicts() == [True, True]
    finally:
        worker.close()
    assert not worker.running
    assert worker.submit(items[:1]) is None


def test_a_worker_that_dies_gives_no_verdicts_and_is_replaced() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    items = [(raw_public_key(key), key.sign(b"data"), b"data")] * 3
    worker = SignatureWorker()
    try:
        pending = worker.submit(items * 1000)  # answered only after some 0.3 s of verifying
        assert pending is not None
        process = worker._process  # the real child, ended as a crash would end it
        assert process is not None
        process.kill()
        process.wait()
        assert pending.verdicts() is None  # the batch is then verified by its own thread
        again = worker.submit(items)
        assert again is not None
        assert again.verdicts() == [True, True, True]
    finally:
        worker.close()


def test_publish_response_holds_each_result_in_order() -> None:
    outcomes = [
        PublishOutcome(bytes(range(32)), ("regions/330000/issuances/1",)),
        PublishOutcome(
            bytes(32),
            error=errors.SerialsOverlap("overlap", field_errors={"serials": "taken"}),
        ),
        PublishOutcome(bytes([7]) * 32, ("a", "b")),
    ]
    response = publish_response(outcomes)
    assert list(response.results) == [envelope_result(o) for o in outcomes]
    assert [r.accepted for r in response.results] == [True, False, True]
