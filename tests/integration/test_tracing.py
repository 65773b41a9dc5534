"""Tracing: one trace from an SDK call through the gateway's interceptor, the service and the
database (in-memory exporter, real mTLS, both backends); trace ids in the log lines."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.logs import configure_logging
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from gateway.storage.db import Database


@pytest.fixture
def traced(
    pki: PKIDir, database: Database
) -> Iterator[tuple[GatewayServer, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = GatewaySettings(
        listen="127.0.0.1:0", cert_dir=pki.root, metrics_listen="", scheduler_enabled=False
    )
    server = GatewayServer(settings, db=database, tracer_provider=provider)
    server.start()
    yield server, exporter, provider
    server.stop(grace=0.5)


def _chain(spans: list[ReadableSpan], leaf: ReadableSpan) -> list[str]:
    """Names from LEAF up to the root, following parent ids."""
    by_id = {s.context.span_id: s for s in spans}
    names = [leaf.name]
    node = leaf
    while node.parent is not None and node.parent.span_id in by_id:
        node = by_id[node.parent.span_id]
        names.append(node.name)
    return names


def test_one_trace_from_the_sdk_call_to_the_database(
    traced: tuple[GatewayServer, InMemorySpanExporter, TracerProvider],
    pki: PKIDir,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, exporter, provider = traced
    target = f"127.0.0.1:{server.port}"
    with GatewayClient(target, pki, region="310000") as sh:
        assert all(r.accepted for r in sh.publish(sample_documents("310000")))
    exporter.clear()
    configure_logging("json", "info")
    try:
        with GatewayClient(
            target,
            pki,
            region="310000",
            role=Role.ADMIN,
            name="admin-a",
            tracing=True,
            tracer_provider=provider,
        ) as admin:
            status = admin.federation_status()
    finally:
        configure_logging("json", "warning")
    assert status.regions
    spans = list(exporter.get_finished_spans())
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1, [s.name for s in spans]
    client = [s for s in spans if s.kind is SpanKind.CLIENT]
    server_spans = [s for s in spans if s.kind is SpanKind.SERVER]
    method = "/yrd.interop.v1.StatusService/GetFederationStatus"
    # Both spans name the RPC (the client's with the path's leading slash).
    assert [s.name.lstrip("/") for s in client] == [method.lstrip("/")]
    assert [s.name.lstrip("/") for s in server_spans] == [method.lstrip("/")]
    db = [s for s in spans if s.name == "db.transaction"]
    assert db, [s.name for s in spans]
    assert _chain(spans, db[0]) == [
        "db.transaction",
        "service.FederationStatusService.status",
        server_spans[0].name,
        client[0].name,
    ]
    assert db[0].attributes is not None and db[0].attributes["db.system"] == server.db.dialect
    # The interceptor's log line of that RPC carries the trace id.
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    rpc = [x for x in lines if x.get("event") == "rpc" and x.get("method") == method]
    assert [x["trace_id"] for x in rpc] == [format(trace_ids.pop(), "032x")]


def test_tracing_is_off_by_default(gateway_settings: GatewaySettings) -> None:
    assert gateway_settings.tracing_otlp_endpoint == ""
    server = GatewayServer(gateway_settings)
    assert server.tracer_provider is None
    server.db.dispose()
    structlog.reset_defaults()
    configure_logging("json", "warning")
