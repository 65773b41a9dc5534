"""The one mapping from domain errors to ``google.rpc.Status`` (AIP-193 ErrorInfo, BadRequest)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.errors import ERROR_DOMAIN, DomainError


def status_proto(err: DomainError) -> status_pb2.Status:
    """The rich status for a domain error: ErrorInfo always, BadRequest when fields are named."""
    info = error_details_pb2.ErrorInfo(
        reason=err.reason, domain=ERROR_DOMAIN, metadata=err.metadata
    )
    details = [info]
    if err.field_errors:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in sorted(err.field_errors.items())
                ]
            )
        )
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    code: int = err.code.value[0]
    return status_pb2.Status(code=code, message=err.message, details=packed)


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
