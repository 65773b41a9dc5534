"""The gateway gRPC server: mTLS, interceptor, servicers, health, reflection, metrics, shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar, cast

import grpc
import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from yrd.interop.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    duplicate_service_pb2,
    duplicate_service_pb2_grpc,
    gateway_info_service_pb2,
    gateway_info_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    reconciliation_service_pb2,
    reconciliation_service_pb2_grpc,
    registry_service_pb2,
    registry_service_pb2_grpc,
    status_service_pb2,
    status_service_pb2_grpc,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
)

from adapters.registry import AdapterRegistry
from gateway.assembly import build_services
from gateway.config import GatewaySettings
from gateway.metrics import FederationCollector, MetricsEndpoint, RpcMetrics, pool_stats
from gateway.rpc.interceptor import GatewayInterceptor, RevocationList
from gateway.rpc.servicers import (
    AuditServicer,
    DuplicateServicer,
    GatewayInfoServicer,
    KeyServicer,
    RecognitionServicer,
    ReconciliationServicer,
    RegistryServicer,
    TransferServicer,
)
from gateway.rpc.status_servicer import StatusServicer
from gateway.rpc.storage_health import StorageHealth
from gateway.scheduler import JOB_IDS, GatewayScheduler
from gateway.security.pki import PKIDir, PKIError
from gateway.services import Clock, utc_now
from gateway.storage.db import Database, is_transient
from gateway.tracing import otlp_provider, trace_transactions, traced

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

T = TypeVar("T")

log = structlog.get_logger("yrdgw.server")

SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (registry_service_pb2, "RegistryService"),
        (transfer_service_pb2, "TransferService"),
        (recognition_service_pb2, "RecognitionService"),
        (duplicate_service_pb2, "DuplicateService"),
        (reconciliation_service_pb2, "ReconciliationService"),
        (key_service_pb2, "KeyService"),
        (audit_service_pb2, "AuditService"),
        (gateway_info_service_pb2, "GatewayInfoService"),
        (status_service_pb2, "StatusService"),
    )
)
"""Full names of the yrd.interop.v1 services this server exposes."""


class CertificateReloader:
    """The gateway's TLS certificate, key and client CA, re-read when their files change.

    grpc asks ``fetch`` before every new connection's handshake: it answers a new configuration
    once the files changed (a certificate replaced while the server runs), else None. Connections
    already open keep the certificate they were made with, so no call in flight fails. A key that
    does not match its certificate (caught between the two files being replaced) is not taken;
    the next connection looks again.
    """

    def __init__(self, pki: PKIDir) -> None:
        self._pki = pki
        self._files = pki.gateway()
        self._lock = threading.Lock()
        for path in self._paths():
            if not path.exists():
                raise PKIError(f"missing {path}; run `yrdgw pki init --dir {pki.root}`")
        self._stamp = self._stat()
        config = self._load()
        if config is None:
            raise PKIError(f"{self._files.key} does not match {self._files.cert}")
        self.initial, self.serial = config

    def _paths(self) -> tuple[Path, Path, Path]:
        return (self._pki.ca_cert, self._files.cert, self._files.key)

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        stats = [os.stat(path) for path in self._paths()]
        # The inode too: a file replaced by rename within one clock tick keeps mtime and size.
        return tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in stats)

    def _load(self) -> tuple[grpc.ServerCertificateConfiguration, int] | None:
        """The configuration from the files and the certificate's serial; None on a mismatch."""
        key_pem, cert_pem = self._files.key.read_bytes(), self._files.cert.read_bytes()
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return None  # a file caught half written, or not a key this server can use
        raw = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if cert.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
            return None
        config = grpc.ssl_server_certificate_configuration(
            [(key_pem, cert_pem)], root_certificates=self._pki.ca_cert.read_bytes()
        )
        return config, cert.serial_number

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed since the last one taken, else None."""
        with self._lock:
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return None
                loaded = self._load()
            except OSError:
                return None  # a file being replaced: keep serving the current certificate
            if loaded is None:
                return None
            self._stamp = stamp
            config, self.serial = loaded
        log.info("gateway.certificate_reloaded", serial=format(self.serial, "x"))
        return config


def server_credentials(pki: PKIDir) -> grpc.ServerCredentials:
    """mTLS credentials: the gateway certificate (replaced on the fly when its files change), and
    client certificates required from the CA."""
    reloader = CertificateReloader(pki)
    # The typing stubs omit that the fetcher may answer None ("no change").
    fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], reloader.fetch)
    return grpc.dynamic_ssl_server_credentials(
        reloader.initial, fetch, require_client_authentication=True
    )


class GatewayServer:
    """One gateway process. ``start()`` binds and serves; ``stop()`` drains and closes."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        db: Database | None = None,
        clock: Clock = utc_now,
        adapters: AdapterRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.pki = PKIDir(settings.cert_dir)
        self.db = db if db is not None else Database.from_url(settings.database_url)
        self._owns_db = db is None
        self.services = build_services(settings, self.db, clock=clock, adapters=adapters)
        self._owns_tracer = tracer_provider is None and bool(settings.tracing_otlp_endpoint)
        if self._owns_tracer:
            tracer_provider = otlp_provider(settings.tracing_otlp_endpoint)
        self.tracer_provider = tracer_provider
        self._untrace: Callable[[], None] = lambda: None
        self.keys = self.services.keys
        self.audit = self.services.audit
        self.exchange = self.services.exchange
        self.recognition = self.services.recognition
        self.transfers = self.services.transfers
        self.retirements = self.services.retirements
        self.reconciliation = self.services.reconciliation
        self.scheduler: GatewayScheduler | None = (
            GatewayScheduler(settings, self.services.jobs, clock)
            if settings.scheduler_enabled
            else None
        )
        self.metrics = RpcMetrics()
        self.services.status.refusals = self.metrics.refusals.counts
        self.services.reconciliation.observe_phases = self.metrics.snapshot_phases
        self.metrics.registry.register(
            FederationCollector(
                self.services.status.status,
                self.services.status.jobs,
                lambda: pool_stats(self.db.engine),
                JOB_IDS,
            )
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.storage_health = StorageHealth(
            self.db.ping,
            self._storage_reachable,
            interval_s=settings.storage_probe_interval_s,
            retry_s=settings.storage_probe_retry_s,
        )
        self.port: int = 0
        self.metrics_port: int | None = None
        self._metrics_endpoint: MetricsEndpoint | None = None
        self.revocations: RevocationList | None = None
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._stopped = threading.Event()

    def start(self) -> int:
        """Migrate, load keys, bind and start serving; returns the bound port."""
        s = self.settings
        if s.migrate_on_start:
            self.db.upgrade()
        added = self.keys.import_from_pki(self.pki)
        self._executor = futures.ThreadPoolExecutor(
            max_workers=s.max_workers, thread_name_prefix="yrdgw-rpc"
        )
        self.revocations = RevocationList(self.pki)
        interceptors: list[grpc.ServerInterceptor] = [
            GatewayInterceptor(
                self.revocations, self.metrics, is_transient, self.storage_health.suspect
            )
        ]
        if self.tracer_provider is not None:
            # Outermost: the RPC's span (joined to the caller's trace) encloses the interceptor,
            # the service's span and the transactions' spans.
            from opentelemetry.instrumentation.grpc import server_interceptor

            otel = server_interceptor(tracer_provider=self.tracer_provider)  # type: ignore[no-untyped-call]
            interceptors.insert(0, otel)
            self._untrace = trace_transactions(self.db.engine, self.tracer_provider)
        server = grpc.server(
            self._executor,
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", s.max_message_bytes),
                ("grpc.max_send_message_length", s.max_message_bytes),
                ("grpc.keepalive_time_ms", s.keepalive_time_ms),
                ("grpc.keepalive_timeout_ms", s.keepalive_timeout_ms),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", s.min_client_ping_interval_ms),
                ("grpc.http2.max_ping_strikes", 2),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=s.max_concurrent_rpcs,
        )
        t = self._traced
        reconciliation_service_pb2_grpc.add_ReconciliationServiceServicer_to_server(
            ReconciliationServicer(t(self.reconciliation)), server
        )
        registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(t(self.exchange), t(self.services.status)), server
        )
        recognition_service_pb2_grpc.add_RecognitionServiceServicer_to_server(
            RecognitionServicer(t(self.recognition)), server
        )
        duplicate_service_pb2_grpc.add_DuplicateServiceServicer_to_server(
            DuplicateServicer(t(self.services.duplicate_cases)), server
        )
        transfers = TransferServicer(t(self.transfers), t(self.retirements))
        if s.fault_kill_after_commit:  # crash tests only (see gateway/rpc/faults.py)
            from gateway.rpc.faults import KillAfterCommitTransferServicer

            transfers = KillAfterCommitTransferServicer(
                self.transfers, self.retirements, s.fault_kill_after_commit
            )
        transfer_service_pb2_grpc.add_TransferServiceServicer_to_server(transfers, server)
        key_service_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(t(self.keys)), server)
        audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
            AuditServicer(t(self.audit)), server
        )
        gateway_info_service_pb2_grpc.add_GatewayInfoServiceServicer_to_server(
            GatewayInfoServicer(self.services.info), server
        )
        status_service_pb2_grpc.add_StatusServiceServicer_to_server(
            StatusServicer(t(self.services.status)), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_secure_port(s.listen, server_credentials(self.pki))
        if self.port == 0:
            raise OSError(f"could not bind {s.listen}")
        self.metrics.watch_engine(self.db.engine)
        server.start()
        self._server = server
        self._storage_reachable(True)
        if self.db.dialect != "sqlite":  # an embedded file cannot become unreachable
            self.storage_health.start()
        if s.metrics_listen:
            self._metrics_endpoint = MetricsEndpoint(self.metrics, s.metrics_listen)
            self.metrics_port = self._metrics_endpoint.port
        if self.scheduler is not None:
            self.scheduler.start()
        log.info(
            "gateway.started",
            listen=s.listen,
            port=self.port,
            metrics_port=self.metrics_port,
            database=self.db.engine.url.render_as_string(hide_password=True),
            signing_keys_imported=added,
        )
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: health NOT_SERVING; every open Subscribe stream ends at once with
        UNAVAILABLE / GATEWAY_SHUTTING_DOWN and the cursor to resume from; new calls refused;
        calls in flight finish within the grace, then are cancelled."""
        if self._server is None or self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_s if grace is None else grace
        log.info("gateway.stopping", grace_s=grace)
        self.health.enter_graceful_shutdown()
        self.storage_health.stop()
        # Followers would otherwise hold the whole grace and then be cancelled without a cursor.
        self.exchange.notifier.close()
        if self.scheduler is not None:
            self.scheduler.stop()
        self._server.stop(grace).wait()
        # Cancelled handlers notice within a poll interval; wait for them so no thread still holds
        # a database connection when the engine is disposed.
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.close()
        self.metrics.unwatch()
        self._untrace()
        if self._owns_tracer and self.tracer_provider is not None:
            shutdown = getattr(self.tracer_provider, "shutdown", None)
            if shutdown is not None:
                shutdown()  # flushes the spans still batched
        if self._owns_db:
            self.db.dispose()
        log.info("gateway.stopped")

    def _traced(self, service: T) -> T:
        """SERVICE, with a span per call when tracing is on."""
        return service if self.tracer_provider is None else traced(service, self.tracer_provider)

    def _storage_reachable(self, reachable: bool) -> None:
        """Health of the gateway and each of its services: SERVING while the database can be
        reached, NOT_SERVING while it cannot (ignored once shutdown has begun)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if reachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, status)
        if not reachable:
            log.warning("gateway.not_serving", cause="storage unreachable")

    def reload_revocations(self) -> None:
        """Re-read the CRL now (SIGHUP); a CRL that does not verify is logged and ignored."""
        if self.revocations is None:
            return
        try:
            revoked = self.revocations.reload()
        except PKIError as exc:
            log.error("gateway.crl_rejected", error=str(exc))
            return
        log.info("gateway.crl_reloaded", revoked=revoked)

    def reload_keys(self) -> None:
        """Register the signing keys issued into the PKI directory since the start (SIGHUP)."""
        try:
            added = self.keys.import_from_pki(self.pki)
        except Exception as exc:  # a reload must never take the gateway down
            log.error("gateway.keys_reload_failed", error=str(exc))
            return
        log.info("gateway.keys_reloaded", added=added)

    def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully; a second SIGTERM or SIGINT during
        the grace exits at once (status 128 + the signal's number); SIGHUP re-reads the CRL and
        registers signing keys issued since (in a thread: the database may take a while)."""
        done = threading.Event()

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if done.is_set():
                log.warning("gateway.forced_exit", signal=name)
                _exit_now(128 + signum)
            log.info("gateway.signal", signal=name)
            done.set()

        def _on_hangup(_signum: int, _frame: FrameType | None) -> None:
            self.reload_revocations()
            threading.Thread(target=self.reload_keys, name="yrdgw-keys-reload", daemon=True).start()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGHUP, _on_hangup)
        self.start()
        done.wait()
        self.stop()


def _exit_now(status: int) -> None:
    """Leave the process at once, without waiting for calls, jobs or threads (a second signal):
    what a crash would leave, which every write survives (each is one transaction)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
