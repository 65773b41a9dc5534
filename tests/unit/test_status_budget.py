"""A refusal's status fits a client's 8 KiB trailer limit whatever its text, and its message is
cut only where that limit requires (docs/protocol.md §10)."""

from __future__ import annotations

import base64

from gateway import errors
from gateway.rpc import status

TRAILER_LIMIT = 8192


def percent_encoded(text: str) -> bytes:
    """grpc-message as the gRPC HTTP/2 mapping sends it: printable ASCII but '%' as is."""
    out = bytearray()
    for byte in text.encode():
        out += bytes([byte]) if 0x20 <= byte <= 0x7E and byte != 0x25 else b"%%%02X" % byte
    return bytes(out)


def trailer_bytes(err: errors.DomainError) -> int:
    proto = status.status_proto(err)
    details = base64.b64encode(proto.SerializeToString())
    names = len(b"grpc-status") + len(b"grpc-message") + len(b"grpc-status-details-bin") + 3
    return names + len(percent_encoded(proto.message)) + len(details)


def worst_case(message: str) -> errors.DomainError:
    return errors.TransferNotFound(
        message,
        metadata={f"k{i:02d}": "值" * 300 for i in range(40)},
        field_errors={f"units.ranges.ranges[{i}].end": "超出" * 150 for i in range(40)},
    )


def test_a_message_longer_than_the_old_200_characters_arrives_whole() -> None:
    text = "transfer 310000/transfers/t-1 was not found; " + "x" * 600
    assert status.status_proto(errors.TransferNotFound(text)).message == text


def test_the_largest_status_fits_the_trailer_limit_and_says_it_was_cut() -> None:
    text = "碳普惠减排量" * 1000
    err = worst_case(text)
    message = status.status_proto(err).message
    assert message.endswith("…") and text.startswith(message[:-1])
    assert len(message.encode()) <= status.MAX_MESSAGE_BYTES
    assert trailer_bytes(err) < TRAILER_LIMIT


def test_a_message_exactly_at_the_budget_is_not_cut() -> None:
    text = "a" * status.MAX_MESSAGE_BYTES
    assert status.clipped_message(text) == text
    assert status.clipped_message(text + "b").endswith("…")
