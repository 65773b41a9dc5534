"""The gateway gRPC server: mTLS, interceptor, servicers, health, reflection, metrics, shutdown."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from concurrent import futures
from types import FrameType

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from yrd.interop.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    recognition_service_pb2,
    recognition_service_pb2_grpc,
    reconciliation_service_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
)

from adapters import default_registry
from adapters.registry import AdapterRegistry
from gateway.config import GatewaySettings
from gateway.metrics import MetricsEndpoint, RpcMetrics
from gateway.rpc.interceptor import GatewayInterceptor, RevocationList
from gateway.rpc.servicers import (
    AuditServicer,
    KeyServicer,
    RecognitionServicer,
    RegistryServicer,
    TransferServicer,
    not_yet_served,
)
from gateway.security.pki import PKIDir, PKIError, load_signing_key
from gateway.services import Clock, utc_now
from gateway.services.audit import AuditReader
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.ledger import LedgerService
from gateway.services.recognition import EnforcedRecognition, RecognitionService
from gateway.storage.db import Database

log = structlog.get_logger("yrdgw.server")

SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (registry_service_pb2, "RegistryService"),
        (transfer_service_pb2, "TransferService"),
        (recognition_service_pb2, "RecognitionService"),
        (reconciliation_service_pb2, "ReconciliationService"),
        (key_service_pb2, "KeyService"),
        (audit_service_pb2, "AuditService"),
    )
)
"""Full names of the yrd.interop.v1 services this server exposes."""


def server_credentials(pki: PKIDir) -> grpc.ServerCredentials:
    """mTLS credentials: the gateway certificate, and client certificates required from the CA."""
    files = pki.gateway()
    for path in (pki.ca_cert, files.cert, files.key):
        if not path.exists():
            raise PKIError(f"missing {path}; run `yrdgw pki init --dir {pki.root}`")
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=pki.ca_cert.read_bytes(),
        require_client_auth=True,
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
    ) -> None:
        self.settings = settings
        self.pki = PKIDir(settings.cert_dir)
        self.db = db if db is not None else Database.from_url(settings.database_url)
        self._owns_db = db is None
        self.keys = KeyDirectory(self.db, clock)
        self.audit = AuditReader(self.db, load_signing_key(self.pki.gateway().signing_key), clock)
        self.exchange = ExchangeService(self.db, adapters or default_registry, clock)
        import mutual_recognition as mr

        self.recognition = RecognitionService(
            self.db,
            mr.ApprovalPolicy(
                approvals=dict(settings.recognition_approvals),
                delta_wide_needs_every_region=settings.delta_wide_needs_every_region,
            ),
            clock,
        )
        self.ledger = LedgerService(
            self.db,
            clock,
            recognition=EnforcedRecognition(self.recognition)
            if settings.recognition_enforced
            else None,
            proposal_ttl=dt.timedelta(seconds=settings.proposal_ttl_s),
            ets_policies=settings.ets_offset_policies,
        )
        self.metrics = RpcMetrics()
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.port: int = 0
        self.metrics_port: int | None = None
        self._metrics_endpoint: MetricsEndpoint | None = None
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
        server = grpc.server(
            self._executor,
            interceptors=[GatewayInterceptor(RevocationList(self.pki), self.metrics)],
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
        for add_to_server, servicer in not_yet_served():
            add_to_server(servicer, server)
        registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(self.exchange), server
        )
        recognition_service_pb2_grpc.add_RecognitionServiceServicer_to_server(
            RecognitionServicer(self.recognition), server
        )
        transfer_service_pb2_grpc.add_TransferServiceServicer_to_server(
            TransferServicer(self.ledger), server
        )
        key_service_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(self.keys), server)
        audit_service_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(self.audit), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_secure_port(s.listen, server_credentials(self.pki))
        if self.port == 0:
            raise OSError(f"could not bind {s.listen}")
        server.start()
        self._server = server
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if s.metrics_listen:
            self._metrics_endpoint = MetricsEndpoint(self.metrics, s.metrics_listen)
            self.metrics_port = self._metrics_endpoint.port
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
        """Graceful shutdown: health NOT_SERVING, new calls refused, in-flight calls finish."""
        if self._server is None or self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_s if grace is None else grace
        log.info("gateway.stopping", grace_s=grace)
        self.health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        # Cancelled handlers notice within a poll interval; wait for them so no thread still holds
        # a database connection when the engine is disposed.
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.close()
        if self._owns_db:
            self.db.dispose()
        log.info("gateway.stopped")

    def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully."""
        done = threading.Event()

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("gateway.signal", signal=signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        self.start()
        done.wait()
        self.stop()
