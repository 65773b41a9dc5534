"""Thin servicers: translate the request, call the service layer, translate the result.

Errors are domain exceptions; the interceptor maps them to statuses. Services whose RPCs later
issues implement inherit the generated base class, whose methods answer UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from yrd.interop.v1 import (
    audit_pb2,
    audit_service_pb2,
    audit_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_service_pb2_grpc,
    reconciliation_service_pb2_grpc,
    registry_service_pb2_grpc,
    transfer_service_pb2_grpc,
)

from gateway.rpc import convert
from gateway.rpc.interceptor import peer_identity
from gateway.services.audit import AuditReader
from gateway.services.keys import KeyDirectory


class KeyServicer(key_service_pb2_grpc.KeyServiceServicer):
    """KeyService over the KeyDirectory."""

    def __init__(self, keys: KeyDirectory) -> None:
        self._keys = keys

    def RegisterSigningKey(
        self, request: key_service_pb2.RegisterSigningKeyRequest, context: grpc.ServicerContext
    ) -> key_service_pb2.RegisterSigningKeyResponse:
        key = self._keys.register(peer_identity(context), request.owner, request.public_key)
        return key_service_pb2.RegisterSigningKeyResponse(key=convert.signing_key(key))

    def RevokeSigningKey(
        self, request: key_service_pb2.RevokeSigningKeyRequest, context: grpc.ServicerContext
    ) -> key_service_pb2.RevokeSigningKeyResponse:
        key = self._keys.revoke(peer_identity(context), request.key_id, request.reason)
        return key_service_pb2.RevokeSigningKeyResponse(key=convert.signing_key(key))

    def ListSigningKeys(
        self, request: key_service_pb2.ListSigningKeysRequest, context: grpc.ServicerContext
    ) -> key_service_pb2.ListSigningKeysResponse:
        keys = self._keys.list(request.region or None, request.include_revoked)
        return key_service_pb2.ListSigningKeysResponse(keys=[convert.signing_key(k) for k in keys])


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    """AuditService over the AuditReader."""

    def __init__(self, audit: AuditReader) -> None:
        self._audit = audit

    def ListAuditEntries(
        self, request: audit_service_pb2.ListAuditEntriesRequest, context: grpc.ServicerContext
    ) -> audit_service_pb2.ListAuditEntriesResponse:
        rows, next_sequence = self._audit.page(request.start_sequence, request.page_size)
        return audit_service_pb2.ListAuditEntriesResponse(
            entries=[convert.audit_entry(r) for r in rows], next_sequence=next_sequence
        )

    def GetSignedTreeHead(
        self, request: audit_service_pb2.GetSignedTreeHeadRequest, context: grpc.ServicerContext
    ) -> audit_service_pb2.GetSignedTreeHeadResponse:
        head = self._audit.tree_head()
        return audit_service_pb2.GetSignedTreeHeadResponse(
            tree_head=audit_pb2.SignedTreeHead(
                size=head.size,
                head_hash=head.head_hash,
                sign_time=convert.timestamp(head.signed_at),
                key_id=head.key_id,
                signature=head.signature,
            )
        )


class RegistryServicer(registry_service_pb2_grpc.RegistryServiceServicer):
    """RegistryService: the record exchange (served by the exchange issue)."""


class TransferServicer(transfer_service_pb2_grpc.TransferServiceServicer):
    """TransferService: the two-phase ledger (served by the transfers issue)."""


class RecognitionServicer(recognition_service_pb2_grpc.RecognitionServiceServicer):
    """RecognitionService: mutual recognition (served by the recognition issue)."""


class ReconciliationServicer(reconciliation_service_pb2_grpc.ReconciliationServiceServicer):
    """ReconciliationService: batch reconciliation (served by the reconciliation issue)."""


def not_yet_served() -> list[tuple[Callable[[Any, grpc.Server], None], object]]:
    """Services whose RPCs later issues implement: every call answers UNIMPLEMENTED.

    The generated base methods raise NotImplementedError, which the interceptor maps to
    UNIMPLEMENTED with reason NOT_IMPLEMENTED.
    """
    return [
        # The typed stubs mark the base methods abstract; these classes deliberately leave them so.
        (registry_service_pb2_grpc.add_RegistryServiceServicer_to_server, RegistryServicer()),  # type: ignore[abstract]
        (transfer_service_pb2_grpc.add_TransferServiceServicer_to_server, TransferServicer()),  # type: ignore[abstract]
        (
            recognition_service_pb2_grpc.add_RecognitionServiceServicer_to_server,
            RecognitionServicer(),  # type: ignore[abstract]
        ),
        (
            reconciliation_service_pb2_grpc.add_ReconciliationServiceServicer_to_server,
            ReconciliationServicer(),  # type: ignore[abstract]
        ),
    ]
