"""OpenTelemetry tracing of the server: a span per RPC (gRPC server instrumentation), per service
call (``service.<Service>.<method>``) and per database transaction (``db.transaction``); trace
ids in the structured log lines. Off unless an OTLP endpoint is configured (or a test passes its
own tracer provider)."""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opentelemetry import trace

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")
TRACER_NAME = "yrdgw"
_SPAN_KEY = "yrdgw_tracing_tx_span"


def otlp_provider(endpoint: str, service_name: str = "yrdgw") -> trace.TracerProvider:
    """A tracer provider exporting in batches over OTLP/gRPC to ENDPOINT."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def add_trace_ids(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids (hex), when there is one."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event


class _Traced:
    """A service whose public methods each run in a span ``service.<Service>.<method>``."""

    def __init__(self, inner: object, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self._prefix = f"service.{type(inner).__name__}."

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._tracer.start_as_current_span(self._prefix + name):
                return value(*args, **kwargs)

        return call


def traced(service: T, provider: trace.TracerProvider) -> T:
    """SERVICE with a span around each public method call (the servicers see the same type)."""
    return cast(T, _Traced(service, provider.get_tracer(TRACER_NAME)))


def trace_transactions(engine: Engine, provider: trace.TracerProvider) -> Callable[[], None]:
    """A span ``db.transaction`` from each transaction's begin to its commit or rollback on
    ENGINE, child of the span current at begin; returns the function that stops it."""
    from sqlalchemy import event

    tracer = provider.get_tracer(TRACER_NAME)
    dialect = engine.dialect.name

    def begin(conn: Any) -> None:
        span = tracer.start_span("db.transaction", attributes={"db.system": dialect})
        conn.info[_SPAN_KEY] = span

    def ended(outcome: str) -> Callable[[Any], None]:
        def done(conn: Any) -> None:
            span = conn.info.pop(_SPAN_KEY, None)
            if span is not None:
                span.set_attribute("db.outcome", outcome)
                span.end()

        return done

    hooks = [("begin", begin), ("commit", ended("commit")), ("rollback", ended("rollback"))]
    for name, hook in hooks:
        event.listen(engine, name, hook)

    def stop() -> None:
        for name, hook in hooks:
            event.remove(engine, name, hook)

    return stop
