"""The hand-written encodings of the publish and feed hot paths give exactly what the reference
code gives: the generated protobuf classes, ``canonical_json`` and
``gateway.security.audit_chain.entry_hash``; and the signature worker's verdicts are the
library's."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from yrd.interop.v1 import envelope_pb2, records_pb2, registry_service_pb2

from gateway import errors, protowire
from gateway.rpc.convert import (
    envelope_result,
    feed_events_bytes,
    feed_response,
    publish_response,
)
from gateway.security.audit_chain import ENTRY_TAG, EntryFields, EntryHasher, entry_hash
from gateway.security.signing import raw_public_key
from gateway.services.exchange import FeedItem, PublishOutcome, StoredEnvelope, fill_envelope
from gateway.services.publish import _detail, _reference_detail
from gateway.services.verifier import SignatureWorker

UINT64 = st.integers(0, 2**64 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)


@given(UINT64)
def test_varint_is_the_protobuf_encoding(value: int) -> None:
    encoded = envelope_pb2.SignedEnvelope(sequence=value).SerializeToString()
    assert encoded == (b"\x20" + protowire.varint(value) if value else b"")


@given(INT64)
def test_negative_integers_encode_as_64_bit_twos_complement(value: int) -> None:
    stamp = envelope_pb2.SignedEnvelope()
    stamp.sign_time.seconds = value
    assert stamp.sign_time.SerializeToString() == protowire.timestamp(value, 0)


def _issuance(draw: st.DrawFn) -> records_pb2.Record:
    return records_pb2.Record(
        issuance=records_pb2.Issuance(
            name=draw(st.text(max_size=40)),
            region="330000",
            quantity_grams=draw(INT64),
            serials=records_pb2.SerialRange(start=draw(INT64), end=draw(INT64)),
            native_ids=draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
        ),
        envelope_hash="ab" * 32,
    )


@st.composite
def feed_items(draw: st.DrawFn) -> FeedItem:
    envelope = StoredEnvelope(
        content_type=draw(st.text(max_size=200)),
        payload=draw(st.binary(max_size=20_000)),
        key_id=draw(st.text(max_size=40)),
        sequence=draw(UINT64),
        previous_hash=draw(st.binary(max_size=40)),
        sign_time_seconds=draw(st.integers(-62135596800, 253402300799)),
        sign_time_nanos=draw(st.integers(0, 999_999_999)),
        signature=draw(st.binary(max_size=70)),
    )
    item = FeedItem(
        position=draw(st.integers(1, 2**63 - 1)),
        body=_issuance(draw).SerializeToString(),
        envelope_row=envelope,
        envelope_record_index=draw(st.integers(0, 2**31 - 1)),
        accepted_at=draw(TIMES),
    )
    native = draw(st.sampled_from(["", "payload", "reason"]))
    if native == "payload":
        item.native_payload = draw(st.binary(min_size=1, max_size=300))
        item.native_content_type = draw(st.text(max_size=50))
    elif native == "reason":
        item.native_unavailable_reason = draw(st.text(min_size=1, max_size=100))
    return item


def _reference_response(items: list[FeedItem]) -> registry_service_pb2.SubscribeResponse:
    response = registry_service_pb2.SubscribeResponse()
    for item in items:
        event = response.events.add()
        event.cursor = str(item.position)
        event.record.MergeFromString(item.body)
        fill_envelope(event.envelope, item.envelope_row)
        event.accept_time.FromDatetime(item.accepted_at)
        event.envelope_record_index = item.envelope_record_index
        if item.native_payload:
            event.native_payload = item.native_payload
            event.native_content_type = item.native_content_type
        elif item.native_unavailable_reason:
            event.native_unavailable_reason = item.native_unavailable_reason
    return response


@settings(max_examples=60, deadline=None)
@given(st.lists(feed_items(), min_size=1, max_size=4))
def test_feed_events_decode_to_the_reference_message(items: list[FeedItem]) -> None:
    reference = _reference_response(items)
    assert feed_response(items) == reference
    parsed = registry_service_pb2.SubscribeResponse.FromString(feed_events_bytes(items))
    assert parsed.SerializeToString() == reference.SerializeToString()


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
