"""Every hand-written wire encoder of ``gateway.protowire`` gives exactly the bytes the protobuf
library gives (its generated classes' ``SerializeToString``, or its own encoder for bare tags and
varints), on many inputs; the feed's events decode to the message built field by field."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.internal import encoder
from hypothesis import given, settings
from hypothesis import strategies as st
from yrd.interop.v1 import envelope_pb2, records_pb2, registry_service_pb2

from gateway import protowire
from gateway.rpc.convert import feed_response
from gateway.services.exchange import FeedItem, StoredEnvelope, fill_envelope

UINT64 = st.integers(0, 2**64 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
TIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
TEXT = st.text(max_size=40)


@given(UINT64)
def test_varint_is_the_protobuf_encoding(value: int) -> None:
    encoded = envelope_pb2.SignedEnvelope(sequence=value).SerializeToString()
    assert encoded == (b"\x20" + protowire.varint(value) if value else b"")
    assert protowire.varint(value) == encoder._VarintBytes(value)


@given(INT64)
def test_negative_integers_encode_as_64_bit_twos_complement(value: int) -> None:
    stamp = envelope_pb2.SignedEnvelope()
    stamp.sign_time.seconds = value
    assert stamp.sign_time.SerializeToString() == protowire.timestamp(value, 0)


@given(st.integers(1, 2**29 - 1), st.sampled_from([protowire.VARINT, protowire.LEN]))
def test_tag_is_the_protobuf_encoding(field_number: int, wire_type: int) -> None:
    assert protowire.tag(field_number, wire_type) == encoder.TagBytes(field_number, wire_type)


@given(st.binary(min_size=1, max_size=20_000))
def test_delimited_is_a_bytes_field(data: bytes) -> None:
    expected = envelope_pb2.SignedEnvelope(payload=data).SerializeToString()
    assert protowire.delimited(protowire.tag(2, protowire.LEN), data) == expected


@given(INT64, INT32)
def test_timestamp_is_the_protobuf_encoding(seconds: int, nanos: int) -> None:
    expected = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
    assert protowire.timestamp(seconds, nanos) == expected


@given(TIMES)
def test_timestamp_of_a_datetime_is_from_datetime(when: dt.datetime) -> None:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    assert protowire.timestamp_of(when) == stamp.SerializeToString()


@st.composite
def methodologies(draw: st.DrawFn) -> records_pb2.Methodology:
    m = records_pb2.Methodology(
        name=draw(TEXT),
        region=draw(TEXT),
        methodology_id=draw(TEXT),
        version=draw(TEXT),
        title=draw(st.text(max_size=300)),
        category=draw(st.sampled_from(records_pb2.ScenarioCategory.values())),
        status=draw(st.sampled_from(records_pb2.MethodologyStatus.values())),
    )
    if draw(st.booleans()):
        m.eligibility.max_capacity.value = draw(TEXT)
        m.eligibility.max_capacity.unit = draw(TEXT)
    return m


@st.composite
def projects(draw: st.DrawFn) -> records_pb2.Project:
    p = records_pb2.Project(
        name=draw(TEXT),
        region=draw(TEXT),
        project_id=draw(TEXT),
        title=draw(st.text(max_size=300)),
        status=draw(st.sampled_from(records_pb2.ProjectStatus.values())),
    )
    p.methodology.methodology_id = draw(TEXT)
    p.crediting_period.start.year = draw(st.integers(0, 9999))
    if draw(st.booleans()):
        p.capacity.value, p.capacity.unit = draw(TEXT), draw(TEXT)
    return p


@st.composite
def issuances(draw: st.DrawFn) -> records_pb2.Issuance:
    return records_pb2.Issuance(
        name=draw(TEXT),
        region=draw(TEXT),
        issuance_id=draw(TEXT),
        project=draw(TEXT),
        vintage=draw(INT32),
        quantity_grams=draw(INT64),
        serials=records_pb2.SerialRange(start=draw(INT64), end=draw(INT64)),
        native_ids=draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
    )


@settings(max_examples=300)
@given(
    record=methodologies() | projects() | issuances(),
    when=TIMES,
    digest=st.binary(min_size=32, max_size=32),
)
def test_record_body_is_the_record_message(
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
    when: dt.datetime,
    digest: bytes,
) -> None:
    reference = records_pb2.Record(envelope_hash=digest.hex())
    if isinstance(record, records_pb2.Methodology):
        reference.methodology.CopyFrom(record)
    elif isinstance(record, records_pb2.Project):
        reference.project.CopyFrom(record)
    else:
        reference.issuance.CopyFrom(record)
    reference.accepted_time.FromDatetime(when)
    body = protowire.record_body(
        record, protowire.record_accepted_time(when), protowire.record_envelope_hash(digest)
    )
    assert records_pb2.Record.FromString(body) == reference
    if not isinstance(record, records_pb2.Issuance) or len(record.native_ids) < 2:
        # (a map's entries are written in no promised order)
        assert body == reference.SerializeToString()


def test_record_envelope_hash_takes_only_a_32_byte_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        protowire.record_envelope_hash(bytes(31))


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
    record = records_pb2.Record(issuance=draw(issuances()), envelope_hash="ab" * 32)
    item = FeedItem(
        position=draw(st.integers(1, 2**63 - 1)),
        body=record.SerializeToString(),
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
    parsed = registry_service_pb2.SubscribeResponse.FromString(protowire.feed_events(items))
    assert parsed.SerializeToString() == reference.SerializeToString()
