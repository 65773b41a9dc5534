"""Client SDK for registries and administrators: an mTLS channel from a PKI directory, envelope
signing, typed calls, and gateway statuses turned back into the domain exceptions.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import message as pb_message
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from yrd.interop.v1 import (
    audit_pb2,
    audit_service_pb2,
    audit_service_pb2_grpc,
    envelope_pb2,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_pb2,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    reconciliation_pb2,
    reconciliation_service_pb2,
    reconciliation_service_pb2_grpc,
    records_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
    transfer_pb2,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
)

from gateway.errors import ERROR_DOMAIN, DomainError, StorageUnavailable, all_error_classes
from gateway.security.identity import Role
from gateway.security.pki import IdentityFiles, PKIDir, load_signing_key
from gateway.security.signing import (
    GENESIS_HASH,
    EnvelopeFields,
    envelope_hash,
    key_id_of,
    raw_public_key,
    sign,
    signing_input,
    verify,
)
from gateway.services.ledger import (
    ANSWER_TYPE,
    CANCELLED_T,
    COMPLETED,
    PROPOSAL_TYPE,
    REJECTED,
    RETIREMENT_TYPE,
    answer_payload,
)
from gateway.services.recognition import APPLICATION_TYPE, REVOCATION_TYPE, VERDICT_TYPE

T = TypeVar("T")
_BY_REASON: dict[str, type[DomainError]] = {}
for _cls in all_error_classes():
    _BY_REASON.setdefault(_cls.reason, _cls)


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


CHAIN_REASONS = frozenset({"SEQUENCE_GAP", "PREVIOUS_HASH_MISMATCH", "SEQUENCE_REUSED"})
"""Refusals that mean the signer's local chain head disagrees with the gateway's."""

RESEND_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Transport failures after which a signed request may or may not have taken effect: the gateway
may have committed it and died (or been cut off) before its answer arrived."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a signed request is re-sent after a transport failure in :data:`RESEND_CODES`.

    The very same envelope bytes are sent again, with exponential backoff, until the gateway
    answers or ``deadline_s`` has passed since the first attempt. The gateway answers an envelope
    it accepted before with its first answer, so the request takes effect exactly once however
    often it is sent; a new envelope (re-signed) under the same id would be a new request.
    """

    deadline_s: float = 20.0
    """Give up (raise the TransportError) once this long has passed since the first attempt."""
    initial_backoff_s: float = 0.05
    """Pause before the first re-send; doubled after each, up to ``max_backoff_s``."""
    max_backoff_s: float = 2.0
    """Longest pause between two re-sends, and between the channel's attempts to reconnect
    (gRPC's own default grows to two minutes, far past ``deadline_s``)."""


def envelope_fields_of(env: envelope_pb2.SignedEnvelope) -> EnvelopeFields:
    """The signed fields of a received envelope (for checking another region's signature)."""
    return EnvelopeFields(
        content_type=env.content_type,
        payload=env.payload,
        key_id=env.key_id,
        sequence=env.sequence,
        previous_hash=env.previous_hash,
        sign_time_seconds=env.sign_time.seconds,
        sign_time_nanos=env.sign_time.nanos,
    )


def envelope_signature_ok(env: envelope_pb2.SignedEnvelope, public_key: bytes) -> bool:
    """Whether the envelope carries a valid signature by public_key over its exact bytes."""
    return key_id_of(public_key) == env.key_id and verify(
        public_key, envelope_fields_of(env), env.signature
    )


@dataclass
class EnvelopeSigner:
    """Signs envelopes with one key, keeping the per-signer sequence and hash chain."""

    private_key: ed25519.Ed25519PrivateKey
    sequence: int = 0
    """Sequence of the last envelope signed (0 before the first)."""
    previous_hash: bytes = GENESIS_HASH
    """Hash of the last envelope signed."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Derived once: deriving it costs more than the signature itself.
        self._key_id = key_id_of(raw_public_key(self.private_key))

    def head(self) -> tuple[int, bytes]:
        """(sequence, hash) of the last envelope signed."""
        with self._lock:
            return self.sequence, self.previous_hash

    def rewind(self, sequence: int, previous_hash: bytes) -> None:
        """Move the chain head back (envelopes signed after it were refused, or never sent)."""
        with self._lock:
            self.sequence, self.previous_hash = sequence, previous_hash

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(
        self, content_type: str, payload: bytes, now: dt.datetime | None = None
    ) -> envelope_pb2.SignedEnvelope:
        """The next envelope of this signer's chain, carrying payload unchanged."""
        when = now or dt.datetime.now(dt.UTC)
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(when)
        with self._lock:
            fields = EnvelopeFields(
                content_type=content_type,
                payload=payload,
                key_id=self.key_id,
                sequence=self.sequence + 1,
                previous_hash=self.previous_hash,
                sign_time_seconds=ts.seconds,
                sign_time_nanos=ts.nanos,
            )
            signed = signing_input(fields)
            signature = sign(self.private_key, fields, signed=signed)
            self.sequence = fields.sequence
            self.previous_hash = envelope_hash(fields, signature, signed=signed)
        return envelope_pb2.SignedEnvelope(
            content_type=content_type,
            payload=payload,
            key_id=fields.key_id,
            sequence=fields.sequence,
            previous_hash=fields.previous_hash,
            sign_time=ts,
            signature=signature,
        )


def channel_credentials(pki: PKIDir, files: IdentityFiles) -> grpc.ChannelCredentials:
    """mTLS credentials trusting the federation CA and presenting one identity's certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


class GatewayClient:
    """A connection to the gateway as one registry or administrator."""

    def __init__(
        self,
        target: str,
        pki_dir: str | PKIDir,
        *,
        region: str,
        role: Role = Role.REGISTRY,
        name: str | None = None,
        timeout: float = 10.0,
        max_message_bytes: int = 4 * 1024 * 1024,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.retry = retry
        self.resent = 0
        """Signed requests re-sent after a transport failure, over this client's life."""
        self.pki = pki_dir if isinstance(pki_dir, PKIDir) else PKIDir(Path(pki_dir))
        self.region, self.role, self.name = region, role, name
        self.files = self.pki.files(role, region, name)
        self.timeout = timeout
        self.channel = grpc.secure_channel(
            target,
            channel_credentials(self.pki, self.files),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.initial_reconnect_backoff_ms", int(retry.initial_backoff_s * 1000) or 1),
                ("grpc.max_reconnect_backoff_ms", int(retry.max_backoff_s * 1000) or 1),
            ],
        )
        self.registry = registry_service_pb2_grpc.RegistryServiceStub(self.channel)
        self.transfers = transfer_service_pb2_grpc.TransferServiceStub(self.channel)
        self.recognition = recognition_service_pb2_grpc.RecognitionServiceStub(self.channel)
        self.reconciliation = reconciliation_service_pb2_grpc.ReconciliationServiceStub(
            self.channel
        )
        self.keys = key_service_pb2_grpc.KeyServiceStub(self.channel)
        self.audit = audit_service_pb2_grpc.AuditServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self.signer = EnvelopeSigner(load_signing_key(self.files.signing_key))

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def call(
        self,
        method: Callable[..., T],
        request: pb_message.Message,
        timeout: float | None = None,
        *,
        wait_for_ready: bool | None = None,
    ) -> T:
        """Invoke a unary stub method; failures raise the typed exception. With
        ``wait_for_ready`` the call waits (up to its timeout) for the channel to connect instead
        of failing at once while the gateway is unreachable."""
        try:
            return method(request, timeout=timeout or self.timeout, wait_for_ready=wait_for_ready)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel is connected (raises TransportError on timeout)."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as exc:
            raise TransportError(grpc.StatusCode.UNAVAILABLE, "gateway not reachable") from exc

    def health(self, service: str = "") -> str:
        """The serving status name of the gateway (or one of its services)."""
        reply = self.call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def register_signing_key(self, owner: str, public_key: bytes) -> key_service_pb2.SigningKey:
        req = key_service_pb2.RegisterSigningKeyRequest(owner=owner, public_key=public_key)
        return self.call(self.keys.RegisterSigningKey, req).key

    def revoke_signing_key(self, key_id: str, reason: str) -> key_service_pb2.SigningKey:
        req = key_service_pb2.RevokeSigningKeyRequest(key_id=key_id, reason=reason)
        return self.call(self.keys.RevokeSigningKey, req).key

    def list_signing_keys(
        self, region: str = "", include_revoked: bool = False
    ) -> list[key_service_pb2.SigningKey]:
        req = key_service_pb2.ListSigningKeysRequest(region=region, include_revoked=include_revoked)
        return list(self.call(self.keys.ListSigningKeys, req).keys)

    def audit_entries(self, page_size: int = 1000) -> Iterator[audit_pb2.AuditEntry]:
        """Every audit entry, in order, page by page."""
        start = 1
        while start:
            page = self.call(
                self.audit.ListAuditEntries,
                audit_service_pb2.ListAuditEntriesRequest(
                    start_sequence=start, page_size=page_size
                ),
            )
            yield from page.entries
            start = page.next_sequence

    def tree_head(self) -> audit_pb2.SignedTreeHead:
        return self.call(
            self.audit.GetSignedTreeHead, audit_service_pb2.GetSignedTreeHeadRequest()
        ).tree_head

    # -- record exchange ------------------------------------------------------------------------

    def sync_signer(self) -> None:
        """Set the signer's chain head to what the gateway last accepted from this key."""
        for key in self.list_signing_keys(self.region):
            if key.key_id == self.signer.key_id:
                self.signer.rewind(key.last_sequence, key.last_envelope_hash)
                return
        raise TransportError(
            grpc.StatusCode.NOT_FOUND, f"key {self.signer.key_id} is not registered"
        )

    def publish(
        self, documents: Sequence[tuple[str, bytes]], batch_size: int = 100
    ) -> list[registry_service_pb2.EnvelopeResult]:
        """Sign each (content type, payload) and publish them over one Publish stream, in batches.

        Returns one result per document, in order. A refused envelope does not advance the chain
        at the gateway, so the envelopes signed after it are re-signed and sent again; a refusal
        that shows the local chain head is stale makes the signer resynchronise once.
        """
        results: list[registry_service_pb2.EnvelopeResult | None] = [None] * len(documents)
        outbox: queue.Queue[registry_service_pb2.PublishRequest | None] = queue.Queue()

        def requests() -> Iterator[registry_service_pb2.PublishRequest]:
            while (request := outbox.get()) is not None:
                yield request

        stream = self.registry.Publish(requests(), timeout=max(self.timeout, 300.0))
        resynced = False
        try:
            start = 0
            while start < len(documents):
                chunk = documents[start : start + batch_size]
                heads = []
                envelopes = []
                for content_type, payload in chunk:
                    heads.append(self.signer.head())
                    envelopes.append(self.signer.sign(content_type, payload))
                outbox.put(registry_service_pb2.PublishRequest(envelopes=envelopes))
                reply = next(stream)
                refused = next((i for i, r in enumerate(reply.results) if not r.accepted), None)
                if refused is None:
                    results[start : start + len(chunk)] = list(reply.results)
                    start += len(chunk)
                    continue
                self.signer.rewind(*heads[refused])
                results[start : start + refused] = list(reply.results[:refused])
                if reply.results[refused].reason in CHAIN_REASONS and not resynced:
                    resynced = True
                    self.sync_signer()
                    start += refused
                    continue
                results[start + refused] = reply.results[refused]
                start += refused + 1
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        except BaseException:
            outbox.put(None)
            stream.cancel()
            raise
        # Half-close and let the server finish the call, rather than cancelling it under its feet.
        outbox.put(None)
        try:
            for _ in stream:
                pass
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return [r for r in results if r is not None]

    def subscribe(
        self,
        cursor: str = "",
        *,
        native: bool = False,
        regions: Sequence[str] = (),
        kinds: Sequence[registry_service_pb2.RecordKind.ValueType] = (),
        follow: bool = False,
        batch_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.FeedEvent]:
        """The feed from cursor: every event in order; with follow, waits for new ones."""
        request = registry_service_pb2.SubscribeRequest(
            cursor=cursor,
            format=registry_service_pb2.FEED_FORMAT_NATIVE
            if native
            else registry_service_pb2.FEED_FORMAT_COMMON,
            regions=regions,
            kinds=kinds,
            follow=follow,
            max_batch_size=batch_size,
        )
        try:
            for response in self.registry.Subscribe(request, timeout=timeout):
                yield from response.events
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    # -- transfers ------------------------------------------------------------------------------

    def _signed_call(
        self,
        method: Callable[..., T],
        build: Callable[[envelope_pb2.SignedEnvelope], pb_message.Message],
        content_type: str,
        payload: bytes,
    ) -> T:
        """Sign payload, call, and keep the local chain head in step with the gateway's.

        A refused request did not advance the chain at the gateway, so the head is rewound; a
        refusal that shows the head is stale resynchronises it and tries once more. A transport
        failure leaves the head where it is (the gateway may have taken the envelope) and the
        same envelope is re-sent as the retry policy says (see :meth:`_deliver`).
        """
        for attempt in (1, 2):
            head = self.signer.head()
            envelope = self.signer.sign(content_type, payload)
            try:
                return self._deliver(method, build(envelope))
            except DomainError as exc:
                self.signer.rewind(*head)
                if exc.reason in CHAIN_REASONS and attempt == 1:
                    self.sync_signer()
                    continue
                raise
        raise AssertionError("unreachable")

    def _deliver(self, method: Callable[..., T], request: pb_message.Message) -> T:
        """Send a signed request until the gateway answers it: after a failure in
        :data:`RESEND_CODES` the identical request is sent again (waiting for the channel to
        reconnect), with backoff, until ``self.retry.deadline_s`` has passed."""
        give_up = time.monotonic() + self.retry.deadline_s
        backoff = self.retry.initial_backoff_s
        resend = False
        while True:
            remaining = give_up - time.monotonic()
            try:
                return self.call(
                    method,
                    request,
                    timeout=min(self.timeout, max(remaining, 0.001)) if resend else None,
                    wait_for_ready=resend or None,
                )
            except (TransportError, StorageUnavailable) as exc:
                # StorageUnavailable: the gateway answered, but its database could not serve the
                # request just now (it may have committed it): the same bytes again are safe.
                remaining = give_up - time.monotonic()
                if exc.code not in RESEND_CODES or remaining <= 0:
                    raise
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, self.retry.max_backoff_s)
                resend = True
                self.resent += 1

    def propose_transfer(
        self,
        transfer_id: str,
        destination: str,
        *,
        origin: str = "",
        ranges: Sequence[tuple[int, int]] = (),
        project: str = "",
        vintage: int = 0,
        quantity_grams: int = 0,
        purpose: transfer_pb2.TransferPurpose.ValueType = transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
    ) -> transfer_pb2.Transfer:
        """Propose moving serial ranges (of origin) or a quantity of a project's vintage."""
        units = transfer_pb2.UnitSelection()
        if ranges:
            units.ranges.origin_region = origin
            units.ranges.ranges.extend(records_pb2.SerialRange(start=s, end=e) for s, e in ranges)
        else:
            units.quantity.project, units.quantity.vintage = project, vintage
            units.quantity.quantity_grams = quantity_grams
        proposal = transfer_service_pb2.TransferProposal(
            transfer_id=transfer_id, destination_region=destination, units=units, purpose=purpose
        )
        return self._signed_call(
            self.transfers.ProposeTransfer,
            lambda env: transfer_service_pb2.ProposeTransferRequest(envelope=env),
            PROPOSAL_TYPE,
            proposal.SerializeToString(),
        ).transfer

    def _answer(
        self,
        method: Callable[..., T],
        request: type[
            transfer_service_pb2.AcceptTransferRequest
            | transfer_service_pb2.RejectTransferRequest
            | transfer_service_pb2.CancelTransferRequest
        ],
        name: str,
        outcome: str,
        reason: str,
    ) -> T:
        payload = answer_payload(name, outcome, reason)
        return self._signed_call(method, lambda env: request(envelope=env), ANSWER_TYPE, payload)

    def accept_transfer(self, name: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.AcceptTransfer,
            transfer_service_pb2.AcceptTransferRequest,
            name,
            COMPLETED,
            "",
        ).transfer

    def reject_transfer(self, name: str, reason: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.RejectTransfer,
            transfer_service_pb2.RejectTransferRequest,
            name,
            REJECTED,
            reason,
        ).transfer

    def cancel_transfer(self, name: str, reason: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.CancelTransfer,
            transfer_service_pb2.CancelTransferRequest,
            name,
            CANCELLED_T,
            reason,
        ).transfer

    def get_transfer(self, name: str) -> transfer_pb2.Transfer:
        return self.call(
            self.transfers.GetTransfer, transfer_service_pb2.GetTransferRequest(name=name)
        ).transfer

    def list_transfers(
        self,
        source: str = "",
        destination: str = "",
        state: transfer_pb2.TransferState.ValueType = transfer_pb2.TRANSFER_STATE_UNSPECIFIED,
        limit: int = 10_000,
    ) -> list[transfer_pb2.Transfer]:
        """Transfers in the order they were proposed, page by page, up to ``limit``."""
        out: list[transfer_pb2.Transfer] = []
        token = ""
        while len(out) < limit:
            req = transfer_service_pb2.ListTransfersRequest(
                source_region=source,
                destination_region=destination,
                state=state,
                page_size=min(1000, limit - len(out)),
                page_token=token,
            )
            page = self.call(self.transfers.ListTransfers, req)
            out.extend(page.transfers)
            token = page.next_page_token
            if not token:
                break
        return out

    def holdings(
        self,
        region: str = "",
        state: records_pb2.UnitBlockState.ValueType = records_pb2.UNIT_BLOCK_STATE_UNSPECIFIED,
    ) -> list[records_pb2.UnitBlock]:
        """Every ledger block held by region (all regions when empty), page by page."""
        out: list[records_pb2.UnitBlock] = []
        token = ""
        while True:
            page = self.call(
                self.transfers.ListUnitBlocks,
                transfer_service_pb2.ListUnitBlocksRequest(
                    holder_region=region, state=state, page_size=1000, page_token=token
                ),
            )
            out.extend(page.blocks)
            token = page.next_page_token
            if not token:
                return out

    def retire(
        self,
        retirement_id: str,
        purpose: transfer_pb2.TransferPurpose.ValueType,
        beneficiary: str,
        *,
        origin: str = "",
        ranges: Sequence[tuple[int, int]] = (),
        project: str = "",
        vintage: int = 0,
        quantity_grams: int = 0,
        compliance_year: int = 0,
        declared_obligation_grams: int = 0,
    ) -> transfer_pb2.Retirement:
        """Retire held units (serial ranges of origin, or a quantity of a project's vintage)."""
        units = transfer_pb2.UnitSelection()
        if ranges:
            units.ranges.origin_region = origin
            units.ranges.ranges.extend(records_pb2.SerialRange(start=s, end=e) for s, e in ranges)
        else:
            units.quantity.project, units.quantity.vintage = project, vintage
            units.quantity.quantity_grams = quantity_grams
        order = transfer_service_pb2.RetirementOrder(
            retirement_id=retirement_id,
            units=units,
            purpose=purpose,
            beneficiary=beneficiary,
            compliance_year=compliance_year,
            declared_obligation_grams=declared_obligation_grams,
        )
        return self._signed_call(
            self.transfers.Retire,
            lambda env: transfer_service_pb2.RetireRequest(envelope=env),
            RETIREMENT_TYPE,
            order.SerializeToString(),
        ).retirement

    # -- mutual recognition ---------------------------------------------------------------------

    def request_recognition(
        self,
        subject: str,
        *,
        version: str = "",
        regions: Sequence[str] = (),
        vintage_from: int = 0,
        vintage_to: int = 0,
        ets_ratio: tuple[int, int] | None = None,
        expire_date: tuple[int, int, int] | None = None,
    ) -> list[recognition_pb2.Recognition]:
        """Ask regions (all others when empty) to recognise a methodology version or project."""
        app = recognition_service_pb2.RecognitionApplication(
            subject=subject, version=version, recognising_regions=regions
        )
        app.conditions.vintage_from, app.conditions.vintage_to = vintage_from, vintage_to
        if ets_ratio is not None:
            app.conditions.ets_adjustment_ratio.numerator = ets_ratio[0]
            app.conditions.ets_adjustment_ratio.denominator = ets_ratio[1]
        if expire_date is not None:
            d = app.conditions.expire_date
            d.year, d.month, d.day = expire_date
        reply = self._signed_call(
            self.recognition.RequestRecognition,
            lambda env: recognition_service_pb2.RequestRecognitionRequest(envelope=env),
            APPLICATION_TYPE,
            app.SerializeToString(),
        )
        return list(reply.recognitions)

    def approve_recognition(self, name: str, comment: str) -> recognition_pb2.Recognition:
        """An administrator's signed approval."""
        verdict = recognition_service_pb2.RecognitionVerdict(
            recognition=name, verdict=recognition_pb2.VERDICT_APPROVE, comment=comment
        )
        return self._signed_call(
            self.recognition.ApproveRecognition,
            lambda env: recognition_service_pb2.ApproveRecognitionRequest(envelope=env),
            VERDICT_TYPE,
            verdict.SerializeToString(),
        ).recognition

    def reject_recognition(self, name: str, comment: str) -> recognition_pb2.Recognition:
        """An administrator's signed rejection."""
        verdict = recognition_service_pb2.RecognitionVerdict(
            recognition=name, verdict=recognition_pb2.VERDICT_REJECT, comment=comment
        )
        return self._signed_call(
            self.recognition.RejectRecognition,
            lambda env: recognition_service_pb2.RejectRecognitionRequest(envelope=env),
            VERDICT_TYPE,
            verdict.SerializeToString(),
        ).recognition

    def revoke_recognition(self, name: str, reason: str) -> recognition_pb2.Recognition:
        """An administrator's signed revocation."""
        body = recognition_service_pb2.RecognitionRevocation(recognition=name, reason=reason)
        return self._signed_call(
            self.recognition.RevokeRecognition,
            lambda env: recognition_service_pb2.RevokeRecognitionRequest(envelope=env),
            REVOCATION_TYPE,
            body.SerializeToString(),
        ).recognition

    def get_recognition(self, name: str) -> recognition_pb2.Recognition:
        req = recognition_service_pb2.GetRecognitionRequest(name=name)
        return self.call(self.recognition.GetRecognition, req).recognition

    def list_recognitions(
        self, recognising: str = "", requesting: str = ""
    ) -> list[recognition_pb2.Recognition]:
        out: list[recognition_pb2.Recognition] = []
        token = ""
        while True:
            req = recognition_service_pb2.ListRecognitionsRequest(
                recognising_region=recognising,
                requesting_region=requesting,
                page_size=500,
                page_token=token,
            )
            page = self.call(self.recognition.ListRecognitions, req)
            out.extend(page.recognitions)
            token = page.next_page_token
            if not token:
                return out

    def check_recognized(
        self, region: str, project: str, vintage: int
    ) -> recognition_service_pb2.CheckRecognizedResponse:
        req = recognition_service_pb2.CheckRecognizedRequest(
            region=region, project=project, vintage=vintage
        )
        return self.call(self.recognition.CheckRecognized, req)

    # -- reconciliation -------------------------------------------------------------------------

    def submit_holdings(
        self,
        snapshot_time: dt.datetime,
        blocks: Iterator[reconciliation_pb2.HeldBlock] | Sequence[reconciliation_pb2.HeldBlock],
        completed_transfers: Sequence[str] = (),
        batch: int = 1000,
        on_batch: Callable[[int], None] | None = None,
    ) -> reconciliation_service_pb2.SubmitHoldingsResponse:
        """Stream this registry's holdings snapshot: the header, then blocks in batches
        (``on_batch(n)`` after each batch of n blocks is handed to the stream)."""

        def requests() -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
            header = reconciliation_service_pb2.SnapshotHeader(
                completed_transfer_ids=completed_transfers
            )
            header.snapshot_time.FromDatetime(snapshot_time)
            yield reconciliation_service_pb2.SubmitHoldingsRequest(header=header)
            pending: list[reconciliation_pb2.HeldBlock] = []
            for block in blocks:
                pending.append(block)
                if len(pending) == batch:
                    yield _held_batch(pending)
                    if on_batch:
                        on_batch(len(pending))
                    pending = []
            if pending:
                yield _held_batch(pending)
                if on_batch:
                    on_batch(len(pending))

        # A snapshot of a large registry is big: allow it the time a reconciliation run gets.
        return self.call(
            self.reconciliation.SubmitHoldings,
            requests(),  # type: ignore[arg-type]
            timeout=600,
        )

    def run_reconciliation(self, region: str = "") -> reconciliation_pb2.ReconciliationReport:
        req = reconciliation_service_pb2.RunReconciliationRequest(region=region)
        return self.call(self.reconciliation.RunReconciliation, req, timeout=600).report

    def get_reconciliation_report(self, name: str) -> reconciliation_pb2.ReconciliationReport:
        req = reconciliation_service_pb2.GetReconciliationReportRequest(name=name)
        return self.call(self.reconciliation.GetReconciliationReport, req).report

    def list_reconciliation_reports(
        self, region: str = "", page_size: int = 50
    ) -> list[reconciliation_pb2.ReconciliationReport]:
        """The newest reports (one page), newest first."""
        req = reconciliation_service_pb2.ListReconciliationReportsRequest(
            region=region, page_size=page_size
        )
        return list(self.call(self.reconciliation.ListReconciliationReports, req).reports)


def _held_batch(
    blocks: list[reconciliation_pb2.HeldBlock],
) -> reconciliation_service_pb2.SubmitHoldingsRequest:
    return reconciliation_service_pb2.SubmitHoldingsRequest(
        blocks=reconciliation_service_pb2.HeldBlockBatch(blocks=blocks)
    )
