"""The one mapping from domain errors to ``google.rpc.Status`` (AIP-193 ErrorInfo, BadRequest).

Only reasons declared in :mod:`gateway.reasons` with the error's code are sent: anything else
raises :class:`~gateway.reasons.UndeclaredReason` here (the interceptor then answers INTERNAL).
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.errors import ERROR_DOMAIN, DomainError
from gateway.reasons import UndeclaredReason, declared

MAX_TEXT = 200
"""Longest metadata value, field name or description a status carries: errors often quote the
request, and the status travels in trailers, which a client refuses past 8 KiB (it would then see
RESOURCE_EXHAUSTED instead of the gateway's answer)."""
MAX_MESSAGE_BYTES = 768
"""Most UTF-8 bytes of the message: the transport's limit once the rest is counted. The message
travels twice (grpc-message, percent-encoded: up to 3 bytes a byte; the Status in
grpc-status-details-bin, base64 with the details), so 768 + 2 × 1500 bytes stay under 8 KiB."""
MAX_ITEM_BYTES = 1500
"""Most UTF-8 bytes of metadata, and of field violations, a status carries (entries beyond are
left out): with the message, the status stays under a client's 8 KiB trailer limit."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def clipped_message(text: str) -> str:
    """TEXT as the status carries it: whole when it fits MAX_MESSAGE_BYTES, else cut on a
    character boundary and ended with "…" (the full text goes to the gateway's log)."""
    raw = text.encode()
    if len(raw) <= MAX_MESSAGE_BYTES:
        return text
    return raw[: MAX_MESSAGE_BYTES - 3].decode(errors="ignore") + "…"


def _within_budget(items: dict[str, str]) -> list[tuple[str, str]]:
    """The entries, clipped, in key order, as many as fit MAX_ITEM_BYTES."""
    kept: list[tuple[str, str]] = []
    used = 0
    for key, value in sorted(items.items()):
        pair = (_clip(key), _clip(value))
        used += len(pair[0].encode()) + len(pair[1].encode())
        if used > MAX_ITEM_BYTES:
            break
        kept.append(pair)
    return kept


def sendable(err: DomainError) -> bool:
    """Whether the error's reason is declared in the catalogue with the error's code."""
    try:
        declared(err.reason, err.code.name)
    except UndeclaredReason:
        return False
    return True


def in_band_reason(err: DomainError) -> str:
    """The reason Publish reports in an ``EnvelopeResult`` for ``err``: it must be declared with
    the error's code and as reported in-band, else :class:`~gateway.reasons.UndeclaredReason`."""
    if not declared(err.reason, err.code.name).in_band:
        raise UndeclaredReason(f"reason {err.reason} is not declared as a Publish result")
    return err.reason


def grpc_code(err: DomainError) -> grpc.StatusCode:
    """The gRPC status code of a domain error (same name as its canonical :class:`Code`)."""
    return grpc.StatusCode[err.code.name]


def status_proto(err: DomainError) -> status_pb2.Status:
    """The rich status for a domain error: ErrorInfo always, BadRequest when fields are named.
    Strings are clipped and entries capped so the status fits a client's trailer limit.
    :class:`~gateway.reasons.UndeclaredReason` when the reason is not declared with its code."""
    declared(err.reason, err.code.name)
    info = error_details_pb2.ErrorInfo(
        reason=err.reason, domain=ERROR_DOMAIN, metadata=dict(_within_budget(err.metadata))
    )
    details = [info]
    if err.field_errors:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in _within_budget(err.field_errors)
                ]
            )
        )
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(
        code=int(err.code), message=clipped_message(err.message), details=packed
    )


def to_grpc_status(err: DomainError) -> grpc.Status:
    """A grpc.Status ready for ``context.abort_with_status``."""
    status: grpc.Status = rpc_status.to_status(status_proto(err))
    return status


def internal_status(message: str = "internal error") -> grpc.Status:
    """Status for an unexpected failure: no stack trace or internals leak to the caller."""
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN)
    any_detail = any_pb2.Any()
    any_detail.Pack(info)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[any_detail])
    )
    return status
