"""Failed calls turned back into typed exceptions: the gateway's :mod:`gateway.errors` class when
the status carries its ErrorInfo (the same reason → class table the server raised from), a
:class:`TransportError` otherwise."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.errors import ERROR_DOMAIN, DomainError, all_error_classes

_BY_REASON: dict[str, type[DomainError]] = {}
for _cls in all_error_classes():
    _BY_REASON.setdefault(_cls.reason, _cls)

CHAIN_REASONS = frozenset({"SEQUENCE_GAP", "PREVIOUS_HASH_MISMATCH", "SEQUENCE_REUSED"})
"""Refusals that mean the signer's local chain head disagrees with the gateway's."""


class TransportError(Exception):
    """A failure that carries no gateway ErrorInfo: unreachable server, TLS refusal, deadline."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def error_from_rpc(exc: grpc.RpcError) -> DomainError | TransportError:
    """The typed exception for a failed call: the gateway's domain error when it sent ErrorInfo."""
    call = exc if isinstance(exc, grpc.Call) else None
    try:
        status = rpc_status.from_call(call) if call is not None else None
    except ValueError:
        # The details do not match the call's code: the transport replaced the gateway's answer
        # (trailers past the client's limit, say); the call's own code is what happened.
        status = None
    if status is not None:
        info: error_details_pb2.ErrorInfo | None = None
        fields: dict[str, str] = {}
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields = {v.field: v.description for v in bad.field_violations}
        if info is not None and info.domain == ERROR_DOMAIN and info.reason in _BY_REASON:
            return _BY_REASON[info.reason](
                status.message, metadata=dict(info.metadata), field_errors=fields
            )
    code = exc.code() if call is not None else grpc.StatusCode.UNKNOWN
    details = (exc.details() if call is not None else None) or str(exc)
    return TransportError(code, details)
