"""Prometheus metrics: per-RPC counts by status and latency histograms, on a loopback port."""

from __future__ import annotations

from dataclasses import dataclass, field
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class RpcMetrics:
    """The gateway's metrics, in a registry of their own (one per server instance)."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        self.calls = Counter(
            "yrdgw_rpc_calls",
            "RPCs finished, by method and gRPC status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yrdgw_rpc_duration_seconds",
            "RPC duration in seconds, by method.",
            ["method"],
            registry=self.registry,
            buckets=(
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
            ),
        )
        self.in_flight = Gauge(
            "yrdgw_rpc_in_flight",
            "RPCs inside a handler right now (bounded by max_concurrent_rpcs).",
            registry=self.registry,
        )

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.calls.labels(method=method, code=code).inc()
        self.latency.labels(method=method).observe(seconds)


class MetricsEndpoint:
    """The HTTP endpoint serving /metrics."""

    def __init__(self, metrics: RpcMetrics, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        server, thread = start_http_server(
            int(port), addr=host or "127.0.0.1", registry=metrics.registry
        )
        self._server: WSGIServer = server
        self._thread: Thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
