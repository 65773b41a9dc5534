"""Metrics that answer questions, on SQLite and PostgreSQL: refused publishes by reason, feed lag
per region, job runs, transactions and pool, certificate expiry; and the alert rules of
docs/alerts.yml name only metrics the gateway exports."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import GatewayClient
from gateway.samples import sample_documents
from gateway.scheduler import EXPIRE, run_once
from gateway.server import GatewayServer
from tests.integration.conftest import publish_samples

RULES = Path(__file__).resolve().parents[2] / "docs" / "alerts.yml"


def _samples(server: GatewayServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(server.metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def _settled(
    server: GatewayServer, name: str, **labels: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples, once NAME{LABELS} is there: a stream's last call is counted when the
    server's handler returns, which can be just after the client has its answer."""
    deadline = time.monotonic() + 10
    while True:
        samples = _samples(server)
        if (name, frozenset(labels.items())) in samples or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_metrics_answer_the_operators_questions(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    sh = client_for("310000")
    assert len(list(sh.subscribe())) == 15
    sh.sync_signer()
    (again,) = sh.publish(sample_documents("310000")[2:])  # the issuance again: refused in-band
    assert not again.accepted and again.reason == "ISSUANCE_EXISTS", again.reason
    run_once(server.services.jobs, EXPIRE, dt.datetime.now(dt.UTC), "test")
    publish = "/yrd.interop.v1.RegistryService/Publish"
    samples = _settled(
        server,
        "yrdgw_rpc_outcomes_total",
        method=publish,
        outcome="refused",
        reason="ISSUANCE_EXISTS",
    )
    # A refused publish is not OK: the RPC is "refused" with the envelope's reason.
    assert (
        _value(
            samples,
            "yrdgw_rpc_outcomes_total",
            method=publish,
            outcome="refused",
            reason="ISSUANCE_EXISTS",
        )
        == 1
    )
    assert _value(samples, "yrdgw_rpc_outcomes_total", method=publish, outcome="ok", reason="") == 4
    assert (
        _value(
            samples,
            "yrdgw_publish_envelopes_total",
            region="310000",
            result="refused",
            reason="ISSUANCE_EXISTS",
        )
        == 1
    )
    # Shanghai read everything; Jiangsu never subscribed (no sample), so no lag is claimed.
    assert _value(samples, "yrdgw_feed_lag_records", region="310000") == 0
    assert ("yrdgw_feed_lag_records", frozenset({("region", "320000")})) not in samples
    assert _value(samples, "yrdgw_job_runs", job=EXPIRE, outcome="ok") == 1
    assert _value(samples, "yrdgw_job_last_failed", job=EXPIRE) == 0
    assert _value(samples, "yrdgw_job_last_run_timestamp_seconds", job="verify-ledger") == 0
    assert _value(samples, "yrdgw_db_transaction_seconds_count", outcome="commit") > 0
    assert any(name == "yrdgw_db_pool_connections" for name, _ in samples)
    gateway_cert = [
        v
        for (n, labels), v in samples.items()
        if n == "yrdgw_certificate_expiry_seconds"
        and ("identity", "spiffe://yrd-interop/gateway") in labels
    ]
    assert len(gateway_cert) == 1 and gateway_cert[0] > 30 * 86400


def test_feed_lag_metric_counts_the_records_a_region_missed(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    js = client_for("320000")
    assert all(r.accepted for r in client_for("310000").publish(sample_documents("310000")))
    assert len(list(js.subscribe())) == 3
    assert all(r.accepted for r in client_for("330000").publish(sample_documents("330000")))
    samples = _samples(server)
    assert _value(samples, "yrdgw_feed_lag_records", region="320000") == 3
    assert _value(samples, "yrdgw_feed_lag_seconds", region="320000") >= 0


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} == {
        "YrdgwRegionBehind",
        "YrdgwCertificateExpiringSoon",
        "YrdgwReconciliationFailed",
        "YrdgwJobDidNotRun",
        "YrdgwDuplicateCaseOpenTooLong",
    }
    for rule in rules:
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["expr"].count("(") == rule["expr"].count(")")
    promtool = shutil.which("promtool")
    if promtool is not None:  # the real check where Prometheus is installed
        result = subprocess.run(
            [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_name_only_metrics_the_gateway_exports(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    assert list(client_for("310000").subscribe())
    run_once(server.services.jobs, EXPIRE, dt.datetime.now(dt.UTC), "test")
    families = {
        f.name
        for f in text_string_to_metric_families(generate_latest(server.metrics.registry).decode())
    }
    # Reconciliation and certificate families appear once there is something to report.
    exported = families | {"yrdgw_reconciliation_last_completed"}
    for rule in _rules():
        named = set(re.findall(r"\byrdgw_[a-z_]+", str(rule["expr"])))
        assert named, rule["alert"]
        assert named <= exported, (rule["alert"], named - exported)


def test_open_duplicate_cases_and_held_units_are_gauges(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    from gateway.samples import duplicate_pair_documents

    pair = duplicate_pair_documents()
    for region in ("310000", "320000"):
        assert all(r.accepted for r in client_for(region).publish(sample_documents(region)))
        assert all(r.accepted for r in client_for(region).publish(pair[region]))
    samples = _samples(server)
    assert _value(samples, "yrdgw_duplicate_cases_open", strength="certain") == 1
    assert _value(samples, "yrdgw_duplicate_cases_open", strength="probable") == 0
    assert _value(samples, "yrdgw_duplicate_cases_open", strength="possible") == 0
    assert _value(samples, "yrdgw_duplicate_cases_open_by_region", region="320000") == 1
    assert _value(samples, "yrdgw_duplicate_cases_open_by_region", region="330000") == 0
    assert _value(samples, "yrdgw_units_held_grams", region="310000") == 310_500_000
    assert _value(samples, "yrdgw_units_held_grams", region="320000") == 310_000_000
    age = _value(samples, "yrdgw_duplicate_case_oldest_open_age_seconds", region="310000")
    assert 0 <= age < 600
    assert _value(samples, "yrdgw_duplicate_case_oldest_open_age_seconds", region="340000") == 0
