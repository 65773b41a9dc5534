"""Thin servicers: translate the request, call the service layer, translate the result.

Errors are domain exceptions; the interceptor maps them to statuses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
from yrd.interop.v1 import (
    audit_pb2,
    audit_service_pb2,
    audit_service_pb2_grpc,
    duplicate_service_pb2,
    duplicate_service_pb2_grpc,
    gateway_info_service_pb2,
    gateway_info_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_pb2,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    reconciliation_service_pb2,
    reconciliation_service_pb2_grpc,
    registry_service_pb2,
    registry_service_pb2_grpc,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
)

import mutual_recognition as mr
from gateway.contract import BLOCK_STATE_OF, TRANSFER_STATE_OF, is_recognition_name
from gateway.errors import CursorInvalid, GatewayShuttingDown, InvalidArgument
from gateway.reasons import answer_reason
from gateway.rpc import convert
from gateway.rpc.interceptor import peer_identity
from gateway.security.identity import Identity
from gateway.services.audit import AuditReader
from gateway.services.duplicate_cases import DuplicateCaseService
from gateway.services.exchange import DEFAULT_FEED_BATCH, ExchangeService
from gateway.services.federation import FederationStatusService
from gateway.services.info import InfoService
from gateway.services.keys import KeyDirectory
from gateway.services.recognition import RecognitionService
from gateway.services.reconciliation import ReconciliationService
from gateway.services.retirements import RetirementService
from gateway.services.snapshots import SnapshotBuilder
from gateway.services.transfers import TransferService


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


class GatewayInfoServicer(gateway_info_service_pb2_grpc.GatewayInfoServiceServicer):
    """GatewayInfoService over the InfoService."""

    def __init__(self, info: InfoService) -> None:
        self._info = info

    def GetGatewayInfo(
        self, request: gateway_info_service_pb2.GetGatewayInfoRequest, context: grpc.ServicerContext
    ) -> gateway_info_service_pb2.GetGatewayInfoResponse:
        return convert.gateway_info(self._info.info())


_KINDS: dict[int, str] = {
    registry_service_pb2.RECORD_KIND_METHODOLOGY: "methodology",
    registry_service_pb2.RECORD_KIND_PROJECT: "project",
    registry_service_pb2.RECORD_KIND_ISSUANCE: "issuance",
}
FOLLOW_POLL_S = 0.5
"""How often a following subscriber re-reads the feed when no local notification came (records
accepted by other gateway processes on the same database)."""


PROGRESS_WRITE_S = 1.0
"""A stream's progress is recorded for the federation status at most this often (and always
when it reaches the head): one small write per second, not one per batch."""

MAX_POSITION = 2**63 - 1
"""Largest position a database integer holds."""


def _position(token: str, field: str) -> int:
    """A cursor or page token back to a feed position."""
    if not token:
        return 0
    if not token.isascii() or not token.isdigit() or len(token) > 19 or int(token) > MAX_POSITION:
        raise CursorInvalid(
            f"{field} was not issued by this gateway", field_errors={field: "invalid"}
        )
    return int(token)


def _kind(kind: int) -> str:
    if kind == registry_service_pb2.RECORD_KIND_UNSPECIFIED:
        return ""
    if kind not in _KINDS:
        raise InvalidArgument(f"unknown record kind {kind}", field_errors={"kind": "unknown"})
    return _KINDS[kind]


class RegistryServicer(registry_service_pb2_grpc.RegistryServiceServicer):
    """RegistryService over the ExchangeService."""

    def __init__(
        self, exchange: ExchangeService, status: FederationStatusService | None = None
    ) -> None:
        self._exchange = exchange
        self._status = status
        """Told where each registry reads the feed (for the federation status's lag)."""

    def Publish(
        self,
        request_iterator: Iterator[registry_service_pb2.PublishRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[registry_service_pb2.PublishResponse]:
        caller = peer_identity(context)
        for request in request_iterator:
            outcomes = self._exchange.publish(caller, request.envelopes)
            yield convert.publish_response(outcomes)

    def PublishEnvelope(
        self, request: registry_service_pb2.PublishEnvelopeRequest, context: grpc.ServicerContext
    ) -> registry_service_pb2.PublishEnvelopeResponse:
        (outcome,) = self._exchange.publish(peer_identity(context), [request.envelope])
        return registry_service_pb2.PublishEnvelopeResponse(result=convert.envelope_result(outcome))

    def Subscribe(
        self, request: registry_service_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[registry_service_pb2.SubscribeResponse]:
        caller = peer_identity(context)
        after = _position(request.cursor, "cursor")
        kinds = [_kind(k) for k in request.kinds]
        native = (
            caller.region if request.format == registry_service_pb2.FEED_FORMAT_NATIVE else None
        )
        if native is None and request.format == registry_service_pb2.FEED_FORMAT_NATIVE:
            raise InvalidArgument("only a region's identity has a native format")
        batch = request.max_batch_size or DEFAULT_FEED_BATCH
        notifier = self._exchange.notifier
        cursor = request.cursor  # where this subscriber resumes: after the last event sent
        at = self._at(caller, after, None)
        next_progress = time.monotonic() + PROGRESS_WRITE_S
        while context.is_active():
            if notifier.closed:
                raise GatewayShuttingDown(
                    f"the gateway is shutting down; subscribe again from cursor {cursor!r}",
                    metadata={"cursor": cursor},
                )
            seen = notifier.generation()
            items = self._exchange.read_feed(
                after, regions=request.regions, kinds=kinds, limit=batch, native_region=native
            )
            if items:
                after = items[-1].position
                yield convert.feed_response(items)
                cursor = str(after)
                if time.monotonic() >= next_progress:
                    at = self._at(caller, after, at)
                    next_progress = time.monotonic() + PROGRESS_WRITE_S
                continue
            at = self._at(caller, after, at, caught_up=True)
            if not request.follow:
                return
            notifier.wait(seen, FOLLOW_POLL_S)

    def _at(
        self, caller: Identity, position: int, recorded: int | None, caught_up: bool = False
    ) -> int | None:
        """Record the subscriber's position when it moved (CAUGHT_UP: it read to the head, past
        records its filter left out); returns the position now recorded."""
        if self._status is None or (position == recorded and not caught_up):
            return recorded
        if caught_up:
            return self._status.subscriber_caught_up(caller, position, recorded)
        self._status.subscriber_at(caller, position)
        return position

    def GetRecord(
        self, request: registry_service_pb2.GetRecordRequest, context: grpc.ServicerContext
    ) -> registry_service_pb2.GetRecordResponse:
        item = self._exchange.get_record(request.name)
        return registry_service_pb2.GetRecordResponse(record=item.record, envelope=item.envelope)

    def ListRecords(
        self, request: registry_service_pb2.ListRecordsRequest, context: grpc.ServicerContext
    ) -> registry_service_pb2.ListRecordsResponse:
        items, after = self._exchange.list_records(
            region=request.region,
            kind=_kind(request.kind),
            page_size=request.page_size,
            after=_position(request.page_token, "page_token"),
        )
        return registry_service_pb2.ListRecordsResponse(
            records=[i.record for i in items], next_page_token=str(after) if after else ""
        )


class TransferServicer(transfer_service_pb2_grpc.TransferServiceServicer):
    """TransferService over the transfer and retirement services."""

    def __init__(self, transfers: TransferService, retirements: RetirementService) -> None:
        self._transfers = transfers
        self._retirements = retirements

    def ProposeTransfer(
        self, request: transfer_service_pb2.ProposeTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.ProposeTransferResponse:
        view = self._transfers.propose(peer_identity(context), request.envelope)
        return transfer_service_pb2.ProposeTransferResponse(transfer=convert.transfer(view))

    def AcceptTransfer(
        self, request: transfer_service_pb2.AcceptTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.AcceptTransferResponse:
        view = self._transfers.accept(peer_identity(context), request.envelope)
        return transfer_service_pb2.AcceptTransferResponse(transfer=convert.transfer(view))

    def RejectTransfer(
        self, request: transfer_service_pb2.RejectTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.RejectTransferResponse:
        view = self._transfers.reject(peer_identity(context), request.envelope)
        return transfer_service_pb2.RejectTransferResponse(transfer=convert.transfer(view))

    def CancelTransfer(
        self, request: transfer_service_pb2.CancelTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.CancelTransferResponse:
        view = self._transfers.cancel(peer_identity(context), request.envelope)
        return transfer_service_pb2.CancelTransferResponse(transfer=convert.transfer(view))

    def GetTransfer(
        self, request: transfer_service_pb2.GetTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.GetTransferResponse:
        return transfer_service_pb2.GetTransferResponse(
            transfer=convert.transfer(self._transfers.get(request.name))
        )

    def ListTransfers(
        self, request: transfer_service_pb2.ListTransfersRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.ListTransfersResponse:
        views, after = self._transfers.list_transfers(
            source=request.source_region,
            destination=request.destination_region,
            state=TRANSFER_STATE_OF.get(request.state, ""),
            page_size=request.page_size,
            after=_position(request.page_token, "page_token"),
        )
        return transfer_service_pb2.ListTransfersResponse(
            transfers=[convert.transfer(v) for v in views],
            next_page_token=str(after) if after else "",
        )

    def ListUnitBlocks(
        self, request: transfer_service_pb2.ListUnitBlocksRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.ListUnitBlocksResponse:
        blocks, after = self._transfers.blocks(
            holder=request.holder_region,
            origin=request.origin_region,
            state=BLOCK_STATE_OF.get(request.state, ""),
            page_size=request.page_size,
            after=_position(request.page_token, "page_token"),
        )
        return transfer_service_pb2.ListUnitBlocksResponse(
            blocks=[convert.unit_block(b) for b in blocks],
            next_page_token=str(after) if after else "",
        )

    def Retire(
        self, request: transfer_service_pb2.RetireRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.RetireResponse:
        view = self._retirements.retire(peer_identity(context), request.envelope)
        return transfer_service_pb2.RetireResponse(retirement=convert.retirement(view))

    def GetRetirement(
        self, request: transfer_service_pb2.GetRetirementRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.GetRetirementResponse:
        return transfer_service_pb2.GetRetirementResponse(
            retirement=convert.retirement(self._retirements.get(request.name))
        )

    def ListRetirements(
        self, request: transfer_service_pb2.ListRetirementsRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.ListRetirementsResponse:
        views, after = self._retirements.list_retirements(
            holder=request.holder_region,
            purpose=request.purpose,
            compliance_year=request.compliance_year,
            page_size=request.page_size,
            after=_position(request.page_token, "page_token"),
        )
        return transfer_service_pb2.ListRetirementsResponse(
            retirements=[convert.retirement(v) for v in views],
            next_page_token=str(after) if after else "",
        )


class RecognitionServicer(recognition_service_pb2_grpc.RecognitionServiceServicer):
    """RecognitionService over the gateway's RecognitionService."""

    def __init__(self, service: RecognitionService) -> None:
        self._service = service

    def _message(self, found: tuple[mr.Recognition, bytes]) -> recognition_pb2.Recognition:
        rec, assessment = found
        return convert.recognition(rec, assessment, self._service.decision_envelopes(rec))

    def RequestRecognition(
        self,
        request: recognition_service_pb2.RequestRecognitionRequest,
        context: grpc.ServicerContext,
    ) -> recognition_service_pb2.RequestRecognitionResponse:
        made = self._service.request(peer_identity(context), request.envelope)
        return recognition_service_pb2.RequestRecognitionResponse(
            recognitions=[self._message(m) for m in made]
        )

    def ApproveRecognition(
        self,
        request: recognition_service_pb2.ApproveRecognitionRequest,
        context: grpc.ServicerContext,
    ) -> recognition_service_pb2.ApproveRecognitionResponse:
        found = self._service.approve(peer_identity(context), request.envelope)
        return recognition_service_pb2.ApproveRecognitionResponse(recognition=self._message(found))

    def RejectRecognition(
        self,
        request: recognition_service_pb2.RejectRecognitionRequest,
        context: grpc.ServicerContext,
    ) -> recognition_service_pb2.RejectRecognitionResponse:
        found = self._service.reject(peer_identity(context), request.envelope)
        return recognition_service_pb2.RejectRecognitionResponse(recognition=self._message(found))

    def RevokeRecognition(
        self,
        request: recognition_service_pb2.RevokeRecognitionRequest,
        context: grpc.ServicerContext,
    ) -> recognition_service_pb2.RevokeRecognitionResponse:
        found = self._service.revoke(peer_identity(context), request.envelope)
        return recognition_service_pb2.RevokeRecognitionResponse(recognition=self._message(found))

    def GetRecognition(
        self, request: recognition_service_pb2.GetRecognitionRequest, context: grpc.ServicerContext
    ) -> recognition_service_pb2.GetRecognitionResponse:
        found = self._service.get(request.name)
        return recognition_service_pb2.GetRecognitionResponse(recognition=self._message(found))

    def ListRecognitions(
        self,
        request: recognition_service_pb2.ListRecognitionsRequest,
        context: grpc.ServicerContext,
    ) -> recognition_service_pb2.ListRecognitionsResponse:
        state = ""
        if request.state:
            if request.state not in recognition_pb2.RecognitionState.values():
                raise InvalidArgument(
                    f"unknown recognition state {request.state}",
                    field_errors={"state": "unknown"},
                )
            state = (
                recognition_pb2.RecognitionState.Name(request.state)
                .removeprefix("RECOGNITION_STATE_")
                .lower()
            )
        found, after = self._service.list_recognitions(
            recognising=request.recognising_region,
            requesting=request.requesting_region,
            state=state,
            page_size=request.page_size,
            after=request.page_token,
        )
        return recognition_service_pb2.ListRecognitionsResponse(
            recognitions=[self._message(f) for f in found], next_page_token=after
        )

    def CheckRecognized(
        self, request: recognition_service_pb2.CheckRecognizedRequest, context: grpc.ServicerContext
    ) -> recognition_service_pb2.CheckRecognizedResponse:
        verdict = self._service.check(request.region, request.project, request.vintage)
        reply = recognition_service_pb2.CheckRecognizedResponse(
            recognised=verdict.recognised,
            recognitions=list(verdict.relied_on),
            reason="" if verdict.recognised else answer_reason(verdict.reason),
        )
        if verdict.ets_ratio is not None:
            reply.ets_adjustment_ratio.numerator = verdict.ets_ratio.numerator
            reply.ets_adjustment_ratio.denominator = verdict.ets_ratio.denominator
        if verdict.relied_on and is_recognition_name(verdict.relied_on[0]):
            reply.conditions.CopyFrom(
                self._message(self._service.get(verdict.relied_on[0])).conditions
            )
        return reply


class ReconciliationServicer(reconciliation_service_pb2_grpc.ReconciliationServiceServicer):
    """ReconciliationService over the gateway's ReconciliationService."""

    def __init__(self, service: ReconciliationService) -> None:
        self._service = service

    def SubmitHoldings(
        self,
        request_iterator: Iterator[reconciliation_service_pb2.SubmitHoldingsRequest],
        context: grpc.ServicerContext,
    ) -> reconciliation_service_pb2.SubmitHoldingsResponse:
        with SnapshotBuilder() as snapshot:
            for request in request_iterator:
                snapshot.take(request)
            summary = self._service.submit(peer_identity(context), snapshot)
        return reconciliation_service_pb2.SubmitHoldingsResponse(
            snapshot=summary.name,
            block_count=summary.block_count,
            quantity_grams=summary.quantity_grams,
        )

    def RunReconciliation(
        self,
        request: reconciliation_service_pb2.RunReconciliationRequest,
        context: grpc.ServicerContext,
    ) -> reconciliation_service_pb2.RunReconciliationResponse:
        report = self._service.run(peer_identity(context), request.region)
        return reconciliation_service_pb2.RunReconciliationResponse(report=report)

    def GetReconciliationReport(
        self,
        request: reconciliation_service_pb2.GetReconciliationReportRequest,
        context: grpc.ServicerContext,
    ) -> reconciliation_service_pb2.GetReconciliationReportResponse:
        report = self._service.get(request.name)
        return reconciliation_service_pb2.GetReconciliationReportResponse(report=report)

    def ListReconciliationReports(
        self,
        request: reconciliation_service_pb2.ListReconciliationReportsRequest,
        context: grpc.ServicerContext,
    ) -> reconciliation_service_pb2.ListReconciliationReportsResponse:
        reports, before = self._service.list(
            region=request.region,
            page_size=request.page_size,
            before=_position(request.page_token, "page_token"),
        )
        return reconciliation_service_pb2.ListReconciliationReportsResponse(
            reports=reports, next_page_token=str(before) if before else ""
        )


class DuplicateServicer(duplicate_service_pb2_grpc.DuplicateServiceServicer):
    """DuplicateService over the DuplicateCaseService."""

    def __init__(self, service: DuplicateCaseService) -> None:
        self._service = service

    def GetDuplicateCase(
        self, request: duplicate_service_pb2.GetDuplicateCaseRequest, context: grpc.ServicerContext
    ) -> duplicate_service_pb2.GetDuplicateCaseResponse:
        return duplicate_service_pb2.GetDuplicateCaseResponse(
            duplicate_case=self._service.get(request.name)
        )

    def ListDuplicateCases(
        self,
        request: duplicate_service_pb2.ListDuplicateCasesRequest,
        context: grpc.ServicerContext,
    ) -> duplicate_service_pb2.ListDuplicateCasesResponse:
        found, token = self._service.list_cases(
            region=request.region,
            state=request.state,
            strength=request.strength,
            subject=request.subject,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return duplicate_service_pb2.ListDuplicateCasesResponse(
            duplicate_cases=found, next_page_token=token
        )

    def ResolveDuplicateCase(
        self,
        request: duplicate_service_pb2.ResolveDuplicateCaseRequest,
        context: grpc.ServicerContext,
    ) -> duplicate_service_pb2.ResolveDuplicateCaseResponse:
        found = self._service.resolve(peer_identity(context), request.envelope)
        return duplicate_service_pb2.ResolveDuplicateCaseResponse(duplicate_case=found)
