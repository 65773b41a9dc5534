"""Hand-written protobuf wire encoding for the two hot paths that only wrap bytes they already hold:
the stored record body (a ``Record`` around an adapter's message) and the feed's events (a
``FeedEvent`` around a stored body and envelope columns).

Building a message there would parse the stored bytes and copy every field only to serialise them
again; here the bytes are concatenated as the encoder would emit them (fields in number order,
proto3 defaults left out), and tests compare the output with the generated classes'.
"""

from __future__ import annotations

SMALL = tuple(bytes((i,)) for i in range(128))
"""The one-byte varints, 0 to 127, by value."""
_U64 = (1 << 64) - 1

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
