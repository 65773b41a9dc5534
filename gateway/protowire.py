"""Every hand-written protobuf encoding of the gateway, for the hot paths that only wrap bytes they
already hold: the stored record body (a ``Record`` around an adapter's message) and the feed's
events (a ``FeedEvent`` around a stored body and envelope columns).

Building a message there would parse the stored bytes and copy every field only to serialise them
again; here the bytes are concatenated as the encoder would emit them (fields in number order,
proto3 defaults left out), and ``tests/unit/test_protowire.py`` compares every encoder's output
with the generated classes' on many inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from yrd.interop.v1 import records_pb2

SMALL = tuple(bytes((i,)) for i in range(128))
"""The one-byte varints, 0 to 127, by value."""
_U64 = (1 << 64) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

LEN = 2
"""Wire type of length-delimited fields (strings, bytes, messages)."""
VARINT = 0
"""Wire type of integer fields."""


def varint(value: int) -> bytes:
    """Base-128 varint of an unsigned value; a negative value as its 64-bit two's complement
    (how int32 and int64 fields encode negative numbers)."""
    # Unrolled up to five bytes (lengths, sequences, nanoseconds, epoch seconds): the loop below
    # costs several times more per value.
    if 0 <= value < 0x80:
        return SMALL[value]
    if 0 < value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if 0 < value < 0x200000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if 0 < value < 0x10000000:
        return bytes(
            (value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80, value >> 21)
        )
    if 0 < value < 0x800000000:
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21 & 0x7F | 0x80,
                value >> 28,
            )
        )
    value &= _U64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(field_number: int, wire_type: int) -> bytes:
    """The key that precedes a field's value."""
    return varint(field_number << 3 | wire_type)


def delimited(field_tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: its tag, the length of ``data``, then ``data``."""
    return field_tag + varint(len(data)) + data


def timestamp(seconds: int, nanos: int) -> bytes:
    """The body of a ``google.protobuf.Timestamp``."""
    out = b""
    if seconds:
        out += b"\x08" + varint(seconds)
    if nanos:
        out += b"\x10" + varint(nanos)
    return out


def timestamp_of(when: dt.datetime) -> bytes:
    """The body of a ``google.protobuf.Timestamp`` for an aware datetime (microseconds kept)."""
    delta = when - _EPOCH
    return timestamp(delta.days * 86_400 + delta.seconds, delta.microseconds * 1000)


# -- yrd.interop.v1.Record: kind (methodology 1, project 2, issuance 3), accepted_time (4),
# envelope_hash (5, the hex of a 32-byte hash: always 64 characters).

_RECORD_KIND_TAG: dict[type, bytes] = {
    records_pb2.Methodology: tag(1, LEN),
    records_pb2.Project: tag(2, LEN),
    records_pb2.Issuance: tag(3, LEN),
}
_RECORD_ACCEPTED_TIME = tag(4, LEN)
_RECORD_ENVELOPE_HASH = tag(5, LEN) + varint(64)


def record_accepted_time(when: dt.datetime) -> bytes:
    """A ``Record``'s accepted_time field (encoded once per batch: its records share it)."""
    return delimited(_RECORD_ACCEPTED_TIME, timestamp_of(when))


def record_envelope_hash(digest: bytes) -> bytes:
    """A ``Record``'s envelope_hash field for a 32-byte envelope hash (once per envelope)."""
    if len(digest) != 32:
        raise ValueError("an envelope hash is 32 bytes")
    return _RECORD_ENVELOPE_HASH + digest.hex().encode()


def record_body(
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
    accepted_time: bytes,
    envelope_hash: bytes,
) -> bytes:
    """A serialised ``Record`` around ``record``, from the fields ``record_accepted_time`` and
    ``record_envelope_hash`` made."""
    return (
        delimited(_RECORD_KIND_TAG[type(record)], record.SerializeToString())
        + accepted_time
        + envelope_hash
    )


# -- yrd.interop.v1.SubscribeResponse: events (1). FeedEvent: cursor (1), record (2),
# native_payload (3), native_content_type (4), native_unavailable_reason (5), envelope (6),
# accept_time (7), envelope_record_index (8). SignedEnvelope: fields 1 to 7 in declaration order.
# A Timestamp: seconds (1), nanos (2).

_EVENTS = b"\x0a"
_NATIVE_PAYLOAD, _NATIVE_CONTENT_TYPE, _NATIVE_UNAVAILABLE = b"\x1a", b"\x22", b"\x2a"
_ACCEPT_TIME = b"\x3a"

StoredEnvelopeColumns = tuple[str, bytes, str, int, bytes, int, int, bytes]
"""An envelope's stored columns: content type, payload, key id, sequence, previous hash, sign
time's seconds and nanos, signature."""


class FeedEventParts(Protocol):
    """What an event is written from: the stored record body and envelope columns."""

    @property
    def position(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def envelope_row(self) -> StoredEnvelopeColumns: ...
    @property
    def envelope_record_index(self) -> int: ...
    @property
    def accepted_at(self) -> dt.datetime: ...
    @property
    def native_payload(self) -> bytes: ...
    @property
    def native_content_type(self) -> str: ...
    @property
    def native_unavailable_reason(self) -> str: ...


def feed_events(items: Sequence[FeedEventParts]) -> bytes:
    """The serialised events of a SubscribeResponse, concatenated from the stored bytes: the
    record body is already a serialised Record, and the envelope is written from its columns
    (fields at their default are written too, which decodes to the same message). Parts shared by
    many events (the signer's content type and key id, a batch's acceptance time, a signing
    second) are encoded once per call."""
    small = SMALL
    times: dict[dt.datetime, bytes] = {}
    signers: dict[tuple[str, str], bytes] = {}
    seconds_of: dict[int, bytes] = {}
    out = []
    for item in items:
        content_type, payload, key_id, sequence, previous, seconds, nanos, signature = (
            item.envelope_row
        )
        signer = signers.get((content_type, key_id))
        if signer is None:
            signer = signers[(content_type, key_id)] = delimited(
                b"\x0a", content_type.encode()
            ) + delimited(b"\x1a", key_id.encode())
        second = seconds_of.get(seconds)
        if second is None:  # a batch is signed within a few seconds
            second = seconds_of[seconds] = b"\x08" + varint(seconds) + b"\x10"
        stamp = second + varint(nanos)
        envelope = b"".join(
            (
                signer,
                b"\x12",
                varint(len(payload)),
                payload,
                b"\x20",
                varint(sequence),
                b"\x2a",
                varint(len(previous)),
                previous,
                b"\x32",
                small[len(stamp)],  # at most 22 bytes
                stamp,
                b"\x3a",
                varint(len(signature)),
                signature,
            )
        )
        accepted = times.get(item.accepted_at)
        if accepted is None:
            accepted = times[item.accepted_at] = delimited(
                _ACCEPT_TIME, timestamp_of(item.accepted_at)
            )
        cursor, body = str(item.position).encode(), item.body
        event = b"".join(
            (
                b"\x0a",
                small[len(cursor)],  # at most 20 digits
                cursor,
                b"\x12",
                varint(len(body)),
                body,
                b"\x32",
                varint(len(envelope)),
                envelope,
                accepted,
                b"\x40",
                varint(item.envelope_record_index),
            )
        )
        if item.native_payload:
            event += delimited(_NATIVE_PAYLOAD, item.native_payload)
            event += delimited(_NATIVE_CONTENT_TYPE, item.native_content_type.encode())
        elif item.native_unavailable_reason:
            event += delimited(_NATIVE_UNAVAILABLE, item.native_unavailable_reason.encode())
        out.append(b"".join((_EVENTS, varint(len(event)), event)))
    return b"".join(out)
