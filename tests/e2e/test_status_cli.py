"""``yrdgw status`` as an operator runs it: after the demo every region is in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import run
from tests.served import ServedGateway

pytestmark = pytest.mark.e2e


def test_status_after_the_demo_shows_every_region_in_sync(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    assert "every step behaved as expected" in run("demo", "--keep", str(kept)).stdout
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "sqlite:///{kept / "yrdgw.sqlite3"}"\n'
        f'cert_dir = "{kept / "pki"}"\nmetrics_listen = ""\nlog_format = "json"\n'
        "scheduler_enabled = false\n"
    )
    served = ServedGateway(config)
    try:
        served.wait_started(timeout=30)
        common = ["--gateway", served.target, "--cert-dir", str(kept / "pki")]
        doc = json.loads(run("status", *common, "-o", "json").stdout)
        table = run("status", *common).stdout
        refused = run("status", *common, "--role", "registry", check=False)
    finally:
        served.stop()
    regions = {r["region"]: r for r in doc["regions"]}
    assert list(regions) == ["310000", "320000", "330000", "340000"]
    for r in regions.values():
        assert r["subscriber"]["lag_records"] == 0 and r["subscriber"]["lag_seconds"] == 0
        assert r["subscriber"]["cursor"] == doc["feed_head_cursor"]
        assert r["last_record"] is not None
    # The demo's reconciliation: Anhui agreed, Shanghai's planted mistake was found.
    assert regions["340000"]["last_reconciliation"]["status"] == "COMPLETED"
    assert regions["310000"]["last_reconciliation"]["status"] != "COMPLETED"
    assert regions["310000"]["last_snapshot"]["block_count"] > 0
    assert "federation status" in table and "340000" in table
    assert refused.returncode != 0 and "GetFederationStatus" in refused.stderr
    assert "Traceback" not in refused.stderr
