"""``yrdgw status`` and ``yrdgw report`` as an operator runs them, on what the demo left: every
region in sync; each report of the pack written as XLSX, read back, its totals the ledger's."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from tests.e2e.test_cli import run
from tests.served import ServedGateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's PKI and database, kept."""
    directory = tmp_path_factory.mktemp("demo") / "kept"
    assert "every step behaved as expected" in run("demo", "--keep", str(directory)).stdout
    return directory


def test_status_after_the_demo_shows_every_region_in_sync(kept: Path, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "sqlite:///{kept / "yrdgw.sqlite3"}"\n'
        f'cert_dir = "{kept / "pki"}"\nmetrics_listen = ""\nlog_format = "json"\n'
        "scheduler_enabled = false\n"
    )
    served = ServedGateway(config)
    try:
        served.wait_started(timeout=30)
        common = ["--gateway", served.target, "--cert-dir", str(kept / "pki"), "--region", "310000"]
        doc = json.loads(run("status", *common, "--admin", "admin-a", "-o", "json").stdout)
        table = run("status", *common, "--admin", "admin-a").stdout
        refused = run("status", *common, "--role", "registry", check=False)
        cases = json.loads(run("duplicates", "list", *common, "-o", "json").stdout)
        shown = run("duplicates", "show", cases[0]["name"], *common).stdout
    finally:
        served.stop()
    (case,) = cases
    assert case["state"] == "DUPLICATE_CASE_STATE_DUPLICATE"
    assert case["standing"] == "regions/310000/projects/SHCI-P-2024-000518"
    assert {i["issuance"]: i["outcome"] for i in case["issuances"]} == {
        "regions/310000/issuances/SHCI-I-2025-000518": "HOLD_OUTCOME_RELEASED",
        "regions/320000/issuances/JS-QF-2025-0517": "HOLD_OUTCOME_CANCELLED",
    }
    assert [(d["region"], d["admin"]) for d in case["decisions"]] == [
        ("310000", "admin-a"),
        ("310000", "admin-b"),
        ("320000", "admin-a"),
    ]
    assert "31.045964, 120.893771 (GCJ02)" in shown and "310000 2/2, 320000 1/1" in shown
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
    # The demo's duplicate case is resolved: nothing open, nothing held any more.
    for r in regions.values():
        assert (r["open_duplicate_cases"], r["held_grams"]) == (0, 0)
        assert r["oldest_open_case_time"] is None
    assert "duplicate" in table  # the column (its header folds on a narrow terminal)
    assert refused.returncode != 0 and "GetFederationStatus" in refused.stderr
    assert "Traceback" not in refused.stderr


def _report(kept: Path, tmp_path: Path, name: str) -> tuple[list[object], list[list[object]]]:
    """Run ``yrdgw report NAME`` for today as XLSX; (headers, rows with the totals row last)
    of its Chinese sheet, checked to hold the same numbers as the English one."""
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    out = tmp_path / f"{name}.xlsx"
    url = f"sqlite:///{kept / 'yrdgw.sqlite3'}"
    args = ["report", name, "--since", today, "--until", today, "-o", "xlsx", "--out", str(out)]
    assert "wrote" in run(*args, "--database-url", url).stdout
    book = load_workbook(out)
    zh = [list(r) for r in book["报表"].iter_rows(values_only=True)]
    en = [list(r) for r in book["Report"].iter_rows(values_only=True)]
    assert [r[1:] for r in zh[4:]] == [r[1:] for r in en[4:]]
    return zh[3], zh[4:]


def _ledger(kept: Path, sql: str) -> int:
    with sqlite3.connect(kept / "yrdgw.sqlite3") as conn:
        (value,) = conn.execute(sql).fetchone()
    return int(value or 0)


def test_report_pack_after_the_demo_matches_the_ledger(kept: Path, tmp_path: Path) -> None:
    headers, rows = _report(kept, tmp_path, "ets-offsets")
    col = headers.index("抵消量（克）")
    assert rows[-1][0] == "合计"
    assert rows[-1][col] == _ledger(
        kept, "SELECT SUM(credited_grams) FROM retirements WHERE purpose = 2"
    )
    assert rows[0][2] == "上海某钢铁有限公司"

    headers, rows = _report(kept, tmp_path, "flows")
    completed = "FROM transfers WHERE state = 'COMPLETED'"
    assert rows[-1][4] == _ledger(kept, f"SELECT SUM(quantity_grams) {completed}") == 50_000_000
    assert rows[-1][3] == _ledger(kept, f"SELECT COUNT(*) {completed}")

    headers, rows = _report(kept, tmp_path, "retirements")
    assert rows[-1][3] == _ledger(kept, "SELECT SUM(quantity_grams) FROM retirements")

    headers, rows = _report(kept, tmp_path, "discrepancies")
    assert {r[headers.index("状态")] for r in rows[:-1]} == {"OPEN"}
    assert all(r[headers.index("地区")] == "310000" for r in rows[:-1])

    # The demo revoked its one recognition: none is in force at the end of today.
    headers, rows = _report(kept, tmp_path, "recognitions")
    assert rows == []

    bad = run("report", "flows", "--since", "2026-13-01", "--until", "2026-12-31", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr and "Traceback" not in bad.stderr
