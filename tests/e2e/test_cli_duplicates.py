"""`yrdgw duplicates import` as an operator runs it on the gateway's host: the real command in a
subprocess, on the SQLite database a running `yrdgw serve` uses, after a registry published a
project with identity keys and an issuance of it."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters.external_list import COLUMNS
from tests.e2e.test_cli import SAMPLES, Served, run
from tests.served import ServedGateway

pytestmark = pytest.mark.e2e
HEADER = ",".join(c.english for c in COLUMNS)
# Pudong's sample project (adapters/samples/310000-project-identity.json) listed in CCER: the
# same owner and grid account (certain), its crediting period overlapping the 2024 issuance.
SAME_ACCOUNT = (
    "CCER-E2E-1,浦东某园区屋顶光伏,91310115MA1FP2C43T,31.221530,121.544080,,3100123456789,"
    "DISTRIBUTED_PV,850 kW,2024-09-01,2024-01-01,2033-12-31"
)
ELSEWHERE = (
    "CCER-E2E-2,嘉兴某光伏,,30.700000,120.700000,WGS84,,分布式光伏,1 MW,2024/9/2,2024-01-01,"
)
ISSUANCE = "regions/310000/issuances/SHCI-I-2025-000045"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dup") / "pki"
    run("pki", "init", "--dir", str(directory))
    return directory


@pytest.fixture
def published(pki_dir: Path, tmp_path: Path) -> Iterator[Served]:
    """A gateway on SQLite with Shanghai's methodology, project (identity keys) and issuance."""
    config = tmp_path / "gateway.toml"
    database = f"sqlite:///{tmp_path / 'gw.sqlite3'}"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "{database}"\ncert_dir = "{pki_dir}"\n'
        'metrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 3\n'
        "recognition_enforced = false\n"
    )
    gateway = Served(config, database)
    try:
        gateway.wait_started(timeout=30)
        files = [
            str(SAMPLES / name)
            for name in (
                "310000-methodology.json",
                "310000-project-identity.json",
                "310000-issuance.json",
            )
        ]
        common = ["--gateway", gateway.target, "--cert-dir", str(pki_dir)]
        assert run("registry", "publish", "--region", "310000", *common, *files).returncode == 0
        yield gateway
    finally:
        gateway.kill()


def config_of(gateway: ServedGateway) -> str:
    return str(gateway.proc.args[-1])  # type: ignore[index]


def external_rows(database: str) -> list[str]:
    path = database.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT subject FROM external_projects ORDER BY 1")]


def test_import_usage_errors_and_no_database(tmp_path: Path) -> None:
    good = tmp_path / "ccer.csv"
    good.write_text("\n".join((HEADER, SAME_ACCOUNT)), encoding="utf-8")
    usage = run("duplicates", "import", "--scheme", "c/1", str(good), check=False)
    assert usage.returncode == 2 and "not a scheme code" in usage.stderr
    url = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    nodb = run("duplicates", "import", "--scheme", "CCER", str(good), "--database-url", url,
               check=False)  # fmt: skip
    assert nodb.returncode == 1 and "no database at" in nodb.stderr.splitlines()[0]
    assert not (tmp_path / "none.sqlite3").exists()  # never created


def test_import_refuses_a_bad_file_then_imports_csv_and_xlsx(
    published: Served, tmp_path: Path
) -> None:
    config = ["--config", config_of(published)]

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join(
            (
                HEADER,
                SAME_ACCOUNT.replace("91310115MA1FP2C43T", "91310115MA1FP2C43X"),
                ELSEWHERE,
                ELSEWHERE.replace("CCER-E2E-2", "CCER-E2E-3").replace("30.700000", "30.7000001"),
            )
        ),
        encoding="utf-8",
    )
    refused = run("duplicates", "import", "--scheme", "CCER", str(bad), *config, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert lines[0] == f"error: EXTERNAL_LIST_INVALID: {bad}: 2 problem(s), nothing imported"
    assert lines[1].startswith("  row 2, owner credit code: owner credit code")
    assert "check character 'X'" in lines[1]
    assert (
        lines[2] == "  row 4, latitude: latitude '30.7000001' has 7 decimals; at most 6 are "
        "allowed (about 0.1 m)"
    )
    assert lines[3].startswith("hint: fix the rows named")
    assert external_rows(published.database) == []

    good = tmp_path / "ccer.csv"
    good.write_bytes(("\ufeff" + "\r\n".join((HEADER, SAME_ACCOUNT, ELSEWHERE)) + "\r\n").encode())
    out = run("duplicates", "import", "--scheme", "ccer", str(good), *config)
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"imported 2 row(s) of CCER from {good} (sha256 ")
    assert first.endswith("1 duplicate case(s) opened")
    assert "same_grid_account (certain)" in out.stdout
    assert "regions/310000/projects/SHCI-P-2024-000123" in out.stdout
    assert "schemes/CCER/projects/CCER-E2E-1" in out.stdout
    assert external_rows(published.database) == [
        "schemes/CCER/projects/CCER-E2E-1",
        "schemes/CCER/projects/CCER-E2E-2",
    ]

    # A workbook (Chinese headers, an Excel date, a coordinate as a number cell) listing a plant
    # 20 m from Pudong's with a capacity within 5 %: possible.
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([c.chinese for c in COLUMNS])
    sheet.append(
        [
            "CEA-7", "浦东某光伏", None, 31.221657, "121.544229", None, None, "分布式光伏",
            "0.86 MW", "2024-10-01", "2024-01-01", None,
        ]
    )  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    workbook = tmp_path / "cea.xlsx"
    workbook.write_bytes(buffer.getvalue())
    listed = run("duplicates", "import", "--scheme", "CEA", str(workbook), *config, "-o", "json")
    doc = json.loads(listed.stdout)
    assert (doc["scheme"], doc["format"], doc["rows"], len(doc["digest"])) == ("CEA", "xlsx", 1, 64)
    (case,) = doc["cases_opened"]
    assert case["rule"] == "DUPLICATE_RULE_NEARBY_SIMILAR"
    assert case["strength"] == "MATCH_STRENGTH_POSSIBLE"
    assert {case["first"], case["second"]} == {
        "regions/310000/projects/SHCI-P-2024-000123",
        "schemes/CEA/projects/CEA-7",
    }
    assert case["name"].startswith("duplicateCases/dc-")
    assert case["held"] == [ISSUANCE]

    # Importing the same list again replaces its rows and opens nothing (one case per pair).
    again = run("duplicates", "import", "--scheme", "CCER", str(good), *config, "-o", "name")
    assert again.stdout == ""
    assert len(external_rows(published.database)) == 3
