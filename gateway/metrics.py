"""Prometheus metrics on a loopback port: per-RPC counts, outcomes by reason and latency; Publish
results by reason; database transactions and pool; and, read at each scrape, the federation's
feed lag, pending transfers, reconciliation outcomes, scheduled job runs, certificate expiry, open
duplicate cases and units held."""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from threading import Thread
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.services.federation import FederationStatus, JobSummary

log = structlog.get_logger("yrdgw.metrics")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REFUSAL_WINDOW_S = 3600
"""The federation status counts refusals of the last hour."""
NOT_REFUSALS = frozenset({"", "CLIENT_GONE"})
"""Reasons that are not the gateway refusing anything (success; the caller went away)."""


class RefusalWindow:
    """Refused calls and envelopes of the last hour, by caller region and reason, in one-minute
    buckets (in memory: each gateway process counts what it refused)."""

    def __init__(
        self, window_s: int = REFUSAL_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, Tally[tuple[str | None, str]]] = {}

    def add(self, region: str | None, reason: str, n: int = 1) -> None:
        minute = int(self._clock() // 60)
        with self._lock:
            self._buckets.setdefault(minute, Tally())[(region, reason)] += n
            for old in [m for m in self._buckets if m <= minute - self._window_s // 60]:
                del self._buckets[old]

    def counts(self) -> dict[str | None, dict[str, int]]:
        """Per caller region, per reason: how many refusals in the window."""
        oldest = int(self._clock() // 60) - self._window_s // 60
        out: dict[str | None, dict[str, int]] = {}
        with self._lock:
            for minute, tally in self._buckets.items():
                if minute <= oldest:
                    continue
                for (region, reason), n in tally.items():
                    per = out.setdefault(region, {})
                    per[reason] = per.get(reason, 0) + n
        return out


@dataclass
class RpcMetrics:
    """The gateway's metrics, in a registry of their own (one per server instance)."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    refusals: RefusalWindow = field(default_factory=RefusalWindow)

    def __post_init__(self) -> None:
        self.calls = Counter(
            "yrdgw_rpc_calls",
            "RPCs finished, by method and gRPC status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "yrdgw_rpc_outcomes",
            "RPCs finished, by method, outcome (ok, refused, error) and reason: a Publish with a"
            " refused envelope is refused, with the first refused envelope's reason.",
            ["method", "outcome", "reason"],
            registry=self.registry,
        )
        self.envelopes = Counter(
            "yrdgw_publish_envelopes",
            "Envelopes answered by Publish and PublishEnvelope, by region, result and reason.",
            ["region", "result", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yrdgw_rpc_duration_seconds",
            "RPC duration in seconds, by method.",
            ["method"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = Gauge(
            "yrdgw_rpc_in_flight",
            "RPCs inside a handler right now (bounded by max_concurrent_rpcs).",
            registry=self.registry,
        )
        self.transactions = Histogram(
            "yrdgw_db_transaction_seconds",
            "Database transactions, begin to commit or rollback, in seconds, by outcome.",
            ["outcome"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.snapshot_phase = Histogram(
            "yrdgw_snapshot_phase_seconds",
            "Holdings snapshots stored, by phase: receive (the stream read and checked), stage"
            " (the rows into the staging table on the bulk path), difference (what differs kept"
            " set-based, the totals, the audit entry, the commit).",
            ["phase"],
            registry=self.registry,
            buckets=(*LATENCY_BUCKETS, 30, 60, 120),
        )
        self._engines: list[tuple[Engine, list[tuple[str, Callable[..., None]]]]] = []

    def observe(
        self,
        method: str,
        code: str,
        seconds: float,
        reason: str = "",
        region: str | None = None,
    ) -> None:
        """One finished RPC: its status code, and the reason it was refused ('' when it was not;
        a Publish's in-band refusal counts too)."""
        self.calls.labels(method=method, code=code).inc()
        self.latency.labels(method=method).observe(seconds)
        if code == "OK" and not reason:
            outcome = "ok"
        elif code in ("INTERNAL", "UNKNOWN"):
            outcome = "error"
        else:
            outcome = "refused"
        self.outcomes.labels(method=method, outcome=outcome, reason=reason).inc()
        if code != "OK" and reason not in NOT_REFUSALS:
            self.refusals.add(region, reason)

    def envelope_results(self, region: str | None, reasons: list[str]) -> None:
        """The results of one Publish response: '' for an accepted envelope, else its reason."""
        for reason in reasons:
            result = "refused" if reason else "accepted"
            self.envelopes.labels(region=region or "", result=result, reason=reason).inc()
            if reason:
                self.refusals.add(region, reason)

    def snapshot_phases(self, seconds: Mapping[str, float]) -> None:
        """One stored snapshot's phases."""
        for phase, value in seconds.items():
            self.snapshot_phase.labels(phase=phase).observe(value)

    def watch_engine(self, engine: Engine) -> None:
        """Time every transaction on ENGINE (until ``unwatch``)."""
        from sqlalchemy import event

        key = "yrdgw_metrics_tx_start"

        def begin(conn: Any) -> None:
            conn.info[key] = time.perf_counter()

        def ended(outcome: str) -> Callable[[Any], None]:
            def done(conn: Any) -> None:
                if conn.invalidated:
                    # The connection was lost (the rollback is SQLAlchemy cleaning up): touching
                    # its info would raise in the hook and turn a storage outage into INTERNAL.
                    return
                start = conn.info.pop(key, None)
                if start is not None:
                    self.transactions.labels(outcome=outcome).observe(time.perf_counter() - start)

            return done

        hooks = [("begin", begin), ("commit", ended("commit")), ("rollback", ended("rollback"))]
        for name, hook in hooks:
            event.listen(engine, name, hook)
        self._engines.append((engine, hooks))

    def unwatch(self) -> None:
        from sqlalchemy import event

        for engine, hooks in self._engines:
            for name, hook in hooks:
                event.remove(engine, name, hook)
        self._engines.clear()


def pool_stats(engine: Engine) -> dict[str, int]:
    """The connection pool's size and use (a pool without these numbers: empty)."""
    pool: Any = engine.pool
    stats = {}
    for name in ("size", "checkedout", "overflow", "checkedin"):
        value = getattr(pool, name, None)
        if callable(value):
            stats[name] = int(value())
    return stats


class FederationCollector(Collector):
    """Gauges read at each scrape from the federation status and the job runs (the database is
    the one truth every gateway process shares)."""

    def __init__(
        self,
        status: Callable[[], FederationStatus],
        jobs: Callable[[], list[JobSummary]],
        pool: Callable[[], Mapping[str, int]],
        job_ids: tuple[str, ...] = (),
    ) -> None:
        self._status = status
        self._jobs = jobs
        self._pool = pool
        self._job_ids = job_ids

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collected at scrape time only (names depend on the database)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = GaugeMetricFamily(
            "yrdgw_db_pool_connections", "Database pool connections, by state.", labels=["state"]
        )
        for state, n in self._pool().items():
            pool.add_metric([state], n)
        yield pool
        try:
            status, jobs = self._status(), self._jobs()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics.federation_unavailable", error=str(exc).splitlines()[0])
            return
        yield from _federation_families(status)
        yield from _job_families(jobs, self._job_ids)


def _federation_families(s: FederationStatus) -> Iterator[GaugeMetricFamily]:
    now = s.as_of.timestamp()
    lag_records = GaugeMetricFamily(
        "yrdgw_feed_lag_records",
        "Records in the feed after the position of the region's registry.",
        labels=["region"],
    )
    lag_seconds = GaugeMetricFamily(
        "yrdgw_feed_lag_seconds",
        "Seconds the oldest record the region's registry has not read has waited.",
        labels=["region"],
    )
    subscribed = GaugeMetricFamily(
        "yrdgw_feed_subscriber_seen_timestamp_seconds",
        "When the region's registry last read the feed or asked for a position.",
        labels=["region"],
    )
    pending = GaugeMetricFamily(
        "yrdgw_transfers_pending",
        "Proposed, unanswered transfers, by region and direction.",
        labels=["region", "direction"],
    )
    pending_age = GaugeMetricFamily(
        "yrdgw_transfers_pending_oldest_age_seconds",
        "Age of the oldest pending transfer, by region and direction (0 when none).",
        labels=["region", "direction"],
    )
    reconciliation = GaugeMetricFamily(
        "yrdgw_reconciliation_last_completed",
        "1 when the region's newest reconciliation report is COMPLETED, 0 when it is not.",
        labels=["region", "status"],
    )
    expiry = GaugeMetricFamily(
        "yrdgw_certificate_expiry_seconds",
        "Seconds until a certificate the gateway knows of expires (negative once expired).",
        labels=["identity", "region"],
    )
    for r in s.regions:
        if r.subscriber is not None:
            lag_records.add_metric([r.region], r.subscriber.lag_records)
            lag_seconds.add_metric([r.region], r.subscriber.lag_seconds)
            subscribed.add_metric([r.region], r.subscriber.updated_at.timestamp())
        for direction, p in (("out", r.pending_out), ("in", r.pending_in)):
            pending.add_metric([r.region, direction], p.count)
            age = now - p.oldest_at.timestamp() if p.oldest_at else 0.0
            pending_age.add_metric([r.region, direction], max(0.0, age))
        if r.last_report is not None:
            from yrd.interop.v1 import reconciliation_pb2

            name = reconciliation_pb2.ReconciliationStatus.Name(r.last_report.status)
            short = name.removeprefix("RECONCILIATION_STATUS_")
            reconciliation.add_metric([r.region, short], 1.0 if short == "COMPLETED" else 0.0)
        for c in r.certificates:
            expiry.add_metric([c.identity, r.region], c.not_after.timestamp() - now)
    for c in s.certificates:
        expiry.add_metric([c.identity, ""], c.not_after.timestamp() - now)
    yield from (lag_records, lag_seconds, subscribed, pending, pending_age, reconciliation, expiry)
    yield from _duplicate_families(s)


STRENGTHS = ("certain", "probable", "possible")
"""Every strength is exported (at 0 when none is open), so an alert can see it."""


def _duplicate_families(s: FederationStatus) -> Iterator[GaugeMetricFamily]:
    now = s.as_of.timestamp()
    open_cases = GaugeMetricFamily(
        "yrdgw_duplicate_cases_open",
        "Open duplicate cases, by strength (certain, probable, possible).",
        labels=["strength"],
    )
    by_region = GaugeMetricFamily(
        "yrdgw_duplicate_cases_open_by_region",
        "Open duplicate cases with a side registered in the region.",
        labels=["region"],
    )
    oldest = GaugeMetricFamily(
        "yrdgw_duplicate_case_oldest_open_age_seconds",
        "Age of the region's oldest open duplicate case (0 when none is open).",
        labels=["region"],
    )
    held = GaugeMetricFamily(
        "yrdgw_units_held_grams",
        "Grams the region holds in state held (issuances open duplicate cases hold).",
        labels=["region"],
    )
    counts = {
        name.removeprefix("MATCH_STRENGTH_").lower(): n
        for name, n in s.open_cases_by_strength.items()
    }
    for strength in (*STRENGTHS, *sorted(set(counts) - set(STRENGTHS))):
        open_cases.add_metric([strength], counts.get(strength, 0))
    for r in s.regions:
        by_region.add_metric([r.region], r.open_cases.count)
        since = r.open_cases.oldest_open_time
        oldest.add_metric([r.region], max(0.0, now - since.timestamp()) if since else 0.0)
        held.add_metric([r.region], r.held_grams)
    yield from (open_cases, by_region, oldest, held)


def _job_families(jobs: list[JobSummary], job_ids: tuple[str, ...]) -> Iterator[GaugeMetricFamily]:
    runs = GaugeMetricFamily(
        "yrdgw_job_runs",
        "Scheduled job runs recorded in the database, by job and outcome (ok, failed, error,"
        " running).",
        labels=["job", "outcome"],
    )
    last_start = GaugeMetricFamily(
        "yrdgw_job_last_run_timestamp_seconds",
        "When the job last started (any gateway process).",
        labels=["job"],
    )
    last_ok = GaugeMetricFamily(
        "yrdgw_job_last_success_timestamp_seconds",
        "When the job last finished with outcome ok.",
        labels=["job"],
    )
    duration = GaugeMetricFamily(
        "yrdgw_job_last_duration_seconds",
        "How long the job's newest finished run took.",
        labels=["job"],
    )
    failed = GaugeMetricFamily(
        "yrdgw_job_last_failed",
        "1 when the job's newest finished run did not end ok.",
        labels=["job"],
    )
    seen = set()
    for j in jobs:
        seen.add(j.job)
        for outcome, n in sorted(j.runs.items()):
            runs.add_metric([j.job, outcome], n)
        if j.last_started is not None:
            last_start.add_metric([j.job], j.last_started.timestamp())
        if j.last_success is not None:
            last_ok.add_metric([j.job], j.last_success.timestamp())
        if j.last_duration_s is not None:
            duration.add_metric([j.job], j.last_duration_s)
        if j.last_outcome is not None:
            failed.add_metric([j.job], 0.0 if j.last_outcome == "ok" else 1.0)
    for job in job_ids:  # a job that never ran is visible (at 0), so an alert can see it
        if job not in seen:
            last_start.add_metric([job], 0.0)
    yield from (runs, last_start, last_ok, duration, failed)


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
