"""The server interceptor: authenticate from the peer certificate, authorize by role (default
deny), map domain errors to rich statuses, log one line per RPC, record metrics.

Every RPC, including health and reflection, passes through here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError
from yrd.interop.v1 import registry_service_pb2

from gateway.errors import (
    CertificateRevoked,
    DomainError,
    IdentityMissing,
    NotImplementedYet,
    RequestMalformed,
    RoleNotAllowed,
    StorageUnavailable,
)
from gateway.metrics import RpcMetrics
from gateway.rpc.status import (
    clipped_message,
    grpc_code,
    internal_status,
    sendable,
    to_grpc_status,
)
from gateway.security.authz import allowed_roles
from gateway.security.identity import Identity, IdentityError, identity_of_pem
from gateway.security.pki import PKIDir, revoked_serials
from gateway.validation import applies_to
from gateway.validation import check as validate

log = structlog.get_logger("yrdgw.rpc")


def peer_identity(context: grpc.ServicerContext) -> Identity:
    """The caller's identity from its TLS certificate (never from request fields or metadata)."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        raise IdentityMissing("no client certificate")
    try:
        return identity_of_pem(pems[0])
    except (IdentityError, ValueError) as exc:
        raise IdentityMissing(str(exc)) from exc


class RevocationList:
    """The CRL's serials: loaded at start, reloaded when crl.pem changes (checked at most once a
    second) and whenever ``reload()`` is called (``yrdgw serve`` calls it on SIGHUP)."""

    def __init__(self, pki: PKIDir) -> None:
        self._pki = pki
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._serials: frozenset[int] = frozenset()
        self._refresh(force=True)

    def reload(self) -> int:
        """Read the CRL now, whatever its modification time says; returns how many serials it
        revokes. A CRL that does not verify raises PKIError and the previous list stays."""
        self._refresh(force=True)
        return len(self._serials)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        with self._lock:
            self._checked = now
            path: Path = self._pki.crl
            mtime = os.stat(path).st_mtime if path.exists() else None
            if force or mtime != self._mtime:
                self._serials = revoked_serials(self._pki)
                self._mtime = mtime

    def is_revoked(self, serial: int) -> bool:
        self._refresh()
        return serial in self._serials


class GatewayInterceptor(grpc.ServerInterceptor):
    """Wraps every handler with authentication, authorization, error mapping, logs and metrics."""

    def __init__(
        self,
        revocations: RevocationList,
        metrics: RpcMetrics,
        is_transient: Callable[[BaseException], bool],
        on_storage_unavailable: Callable[[], None] = lambda: None,
    ) -> None:
        self._revocations = revocations
        self._metrics = metrics
        self._is_transient = is_transient
        """Whether a failure is the database's "not now" (storage's classifier, passed in)."""
        self._on_storage_unavailable = on_storage_unavailable
        """Told of each such failure (the health probe then checks the database at once)."""

    def _admit(self, method: str, ident: Identity) -> None:
        """Refuse a revoked certificate, or a role the RPC is not open to."""
        if self._revocations.is_revoked(ident.serial_number):
            raise CertificateRevoked(
                "the client certificate has been revoked",
                metadata={"serial": format(ident.serial_number, "x")},
            )
        if ident.role not in allowed_roles(method):
            raise RoleNotAllowed(
                f"{ident.role.value} may not call {method}",
                metadata={"role": ident.role.value, "method": method},
            )

    def _finish(
        self,
        method: str,
        ident: Identity | None,
        code: grpc.StatusCode,
        start: float,
        reason: str = "",
    ) -> None:
        seconds = time.perf_counter() - start
        region = ident.region if ident else None
        self._metrics.observe(method, code.name, seconds, reason, region)
        log.info(
            "rpc",
            method=method,
            region=ident.region if ident else None,
            role=ident.role.value if ident else None,
            actor=ident.actor if ident else None,
            status=code.name,
            reason=reason or None,
            duration_ms=round(seconds * 1000, 3),
        )

    def _in_band(self, ident: Identity, response: Any) -> str:
        """Count a Publish response's envelope results; the first refused one's reason ('' when
        every envelope was accepted, and for any other response)."""
        if isinstance(response, registry_service_pb2.PublishEnvelopeResponse):
            results = [response.result]
        elif isinstance(response, registry_service_pb2.PublishResponse):
            results = list(response.results)
        else:
            return ""
        reasons = ["" if r.accepted else r.reason or "REFUSED" for r in results]
        self._metrics.envelope_results(ident.region, reasons)
        return next((r for r in reasons if r), "")

    def _as_domain_error(self, exc: Exception) -> DomainError | None:
        """The domain error an exception stands for; None for an unexpected failure."""
        if isinstance(exc, NotImplementedError):
            # The generated base servicer raises this for RPCs not served yet.
            return NotImplementedYet("this RPC is part of the contract but not served yet")
        if self._is_transient(exc):
            log.warning("rpc.storage_unavailable", error=str(exc).splitlines()[0])
            self._on_storage_unavailable()
            return StorageUnavailable(
                "the database could not serve the request just now; send the same request again"
                " (a signed request takes effect once however often it is sent)"
            )
        # An error whose reason the catalogue does not declare is a bug: answered as INTERNAL.
        return exc if isinstance(exc, DomainError) and sendable(exc) else None

    def _outcome(
        self, context: grpc.ServicerContext, exc: Exception
    ) -> tuple[grpc.StatusCode, str, grpc.Status | None]:
        """What a failed call ends with: (code, reason) for the log line, and the status to
        abort with — None when nobody is left to answer or the servicer already aborted."""
        if not context.is_active():
            # The client cancelled or its deadline passed: nobody is left to answer.
            return grpc.StatusCode.CANCELLED, "CLIENT_GONE", None
        err = self._as_domain_error(exc)
        if err is not None:
            if clipped_message(err.message) != err.message:
                # The status carries what fits a trailer; the operator's log keeps all of it.
                log.info("rpc.message_clipped", reason=err.reason, message=err.message)
            return grpc_code(err), err.reason, to_grpc_status(err)
        if _is_abort(context):
            return _code(context) or grpc.StatusCode.UNKNOWN, "", None
        log.error("rpc.unexpected_error", exc_info=exc)
        return grpc.StatusCode.INTERNAL, "INTERNAL", internal_status()

    def _guard(self, method: str, context: grpc.ServicerContext, run: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        ident: Identity | None = None
        code, reason = grpc.StatusCode.OK, ""
        self._metrics.in_flight.inc()
        try:
            ident = peer_identity(context)
            self._admit(method, ident)
            response = run()
            reason = self._in_band(ident, response) or reason
            return response
        except Exception as exc:
            code, reason, status = self._outcome(context, exc)
            if status is not None:
                context.abort_with_status(status)  # raises
            raise
        finally:
            self._metrics.in_flight.dec()
            self._finish(method, ident, code, start, reason)

    def _guard_stream(
        self, method: str, context: grpc.ServicerContext, run: Callable[[], Iterator[Any]]
    ) -> Iterator[Any]:
        start = time.perf_counter()
        ident: Identity | None = None
        code, reason = grpc.StatusCode.OK, ""
        self._metrics.in_flight.inc()
        try:
            ident = peer_identity(context)
            self._admit(method, ident)
            for response in run():
                reason = reason or self._in_band(ident, response)
                yield response
        except Exception as exc:
            code, reason, status = self._outcome(context, exc)
            if status is not None:
                context.abort_with_status(status)  # raises
            raise
        finally:
            self._metrics.in_flight.dec()
            self._finish(method, ident, code, start, reason)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        des, ser = _tolerant(handler.request_deserializer), handler.response_serializer
        if handler.unary_unary:
            inner_uu = handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: self._guard(method, ctx, lambda: inner_uu(_decoded(req), ctx)),
                des,
                ser,
            )
        if handler.unary_stream:
            inner_us = handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(
                lambda req, ctx: self._guard_stream(
                    method, ctx, lambda: inner_us(_decoded(req), ctx)
                ),
                des,
                ser,
            )
        if handler.stream_unary:
            inner_su = handler.stream_unary
            return grpc.stream_unary_rpc_method_handler(
                lambda it, ctx: self._guard(method, ctx, lambda: inner_su(_each_decoded(it), ctx)),
                des,
                ser,
            )
        inner_ss = handler.stream_stream
        assert inner_ss is not None, "a handler has exactly one of the four kinds"
        return grpc.stream_stream_rpc_method_handler(
            lambda it, ctx: self._guard_stream(
                method, ctx, lambda: inner_ss(_each_decoded(it), ctx)
            ),
            des,
            ser,
        )


class _Undecodable:
    """Stands in for a request message whose bytes did not decode.

    grpc answers INTERNAL when a deserializer raises, before any handler (or this interceptor)
    runs; decoding into this marker instead lets the caller be authenticated and authorised
    first, then refused with INVALID_ARGUMENT (REQUEST_MALFORMED).
    """

    __slots__ = ("message_type", "problem")

    def __init__(self, message_type: str, problem: str) -> None:
        self.message_type = message_type
        self.problem = problem


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The handler's deserializer, answering ``_Undecodable`` instead of raising."""
    if deserialize is None:
        return None
    owner = getattr(deserialize, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    message_type = str(getattr(descriptor, "full_name", "the request message"))

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, RecursionError) as exc:
            return _Undecodable(message_type, str(exc) or type(exc).__name__)

    return decode


def _decoded(request: Any) -> Any:
    """The request, checked by the validation layer (its refusal raised); RequestMalformed when
    its bytes did not decode."""
    if isinstance(request, _Undecodable):
        raise RequestMalformed(
            f"the request is not a valid {request.message_type}: {request.problem}",
            metadata={"message_type": request.message_type},
        )
    if applies_to(request):
        validate(request)
    return request


def _each_decoded(requests: Iterator[Any]) -> Iterator[Any]:
    """A request stream whose first undecodable or invalid message raises its refusal."""
    for request in requests:
        yield _decoded(request)


def _is_abort(context: grpc.ServicerContext) -> bool:
    """Whether the servicer already aborted the call (context.abort raises a bare Exception)."""
    code = _code(context)
    return code is not None and code is not grpc.StatusCode.OK


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status code the servicer set, if any (``code()`` exists since grpcio 1.38; the typing
    stubs do not list it yet)."""
    code: grpc.StatusCode | None = getattr(context, "code")()  # noqa: B009
    return code
