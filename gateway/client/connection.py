"""The connection to the gateway as one identity: the channel and its stubs, the signer, unary
calls with typed failures, signed calls that keep the signer's chain in step and are re-sent as
the retry policy says, and the calls every role makes (health, gateway facts, keys, audit log)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import message as pb_message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yrd.interop.v1 import (
    audit_pb2,
    audit_service_pb2,
    audit_service_pb2_grpc,
    duplicate_service_pb2_grpc,
    envelope_pb2,
    gateway_info_service_pb2,
    gateway_info_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_service_pb2_grpc,
    reconciliation_service_pb2_grpc,
    registry_service_pb2_grpc,
    status_service_pb2,
    status_service_pb2_grpc,
    transfer_service_pb2_grpc,
)

from gateway.client.channel import open_channel, traced_channel
from gateway.client.errors import CHAIN_REASONS, TransportError, error_from_rpc
from gateway.client.retry import DEFAULT_RETRY, RetryPolicy, may_resend
from gateway.client.signer import EnvelopeSigner
from gateway.errors import DomainError, StorageUnavailable
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, load_signing_key

T = TypeVar("T")


class Connection:
    """A connection to the gateway as one registry or administrator (the base of
    :class:`gateway.client.GatewayClient`, which adds the calls of each service)."""

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
        retry: RetryPolicy = DEFAULT_RETRY,
        tracing: bool = False,
        tracer_provider: Any = None,
    ) -> None:
        """With ``tracing``, every call is a client span sending its trace context to the
        gateway (needs the ``client-tracing`` extra; ``tracer_provider``: the global one by
        default)."""
        self.retry = retry
        self.resent = 0
        """Signed requests re-sent after a transport failure, over this client's life."""
        self.on_resend: Callable[[int, Exception, float], None] | None = None
        """Told (attempt number, the failure, seconds left) before each re-send, e.g. to say so
        on a terminal."""
        self.pki = pki_dir if isinstance(pki_dir, PKIDir) else PKIDir(Path(pki_dir))
        self.region, self.role, self.name = region, role, name
        self.files = self.pki.files(role, region, name)
        self.timeout = timeout
        self.channel = open_channel(target, self.pki, self.files, max_message_bytes, retry)
        if tracing:
            self.channel = traced_channel(self.channel, tracer_provider)
        self.registry = registry_service_pb2_grpc.RegistryServiceStub(self.channel)
        self.transfers = transfer_service_pb2_grpc.TransferServiceStub(self.channel)
        self.recognition = recognition_service_pb2_grpc.RecognitionServiceStub(self.channel)
        self.reconciliation = reconciliation_service_pb2_grpc.ReconciliationServiceStub(
            self.channel
        )
        self.duplicates = duplicate_service_pb2_grpc.DuplicateServiceStub(self.channel)
        self.keys = key_service_pb2_grpc.KeyServiceStub(self.channel)
        self.audit = audit_service_pb2_grpc.AuditServiceStub(self.channel)
        self.info = gateway_info_service_pb2_grpc.GatewayInfoServiceStub(self.channel)
        self.status = status_service_pb2_grpc.StatusServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self.signer = EnvelopeSigner(load_signing_key(self.files.signing_key))

    def __enter__(self) -> Self:
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

    def gateway_info(self) -> gateway_info_service_pb2.GetGatewayInfoResponse:
        """The gateway's facts: protocol version, its signing keys (current first), regions,
        policies and limits."""
        return self.call(self.info.GetGatewayInfo, gateway_info_service_pb2.GetGatewayInfoRequest())

    def federation_status(self) -> status_service_pb2.GetFederationStatusResponse:
        """Per region: feed position and lag, pending transfers, last snapshot and
        reconciliation, keys, certificate expiry, refusals of the last hour (administrators and
        the gateway)."""
        return self.call(
            self.status.GetFederationStatus, status_service_pb2.GetFederationStatusRequest()
        )

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

    def sync_signer(self) -> None:
        """Set the signer's chain head to what the gateway last accepted from this key."""
        for key in self.list_signing_keys(self.region):
            if key.key_id == self.signer.key_id:
                self.signer.rewind(key.last_sequence, key.last_envelope_hash)
                return
        raise TransportError(
            grpc.StatusCode.NOT_FOUND, f"key {self.signer.key_id} is not registered"
        )

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
        attempts = 0
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
                remaining = give_up - time.monotonic()
                if not may_resend(exc) or remaining <= 0:
                    raise
                attempts += 1
                if self.on_resend is not None:
                    self.on_resend(attempts, exc, remaining)
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, self.retry.max_backoff_s)
                resend = True
                self.resent += 1
