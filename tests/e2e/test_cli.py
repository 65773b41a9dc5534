"""The command line as a user runs it: separate processes, real files, real signals."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served import ServedGateway

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
YRDGW = str(BIN / "yrdgw")


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [YRDGW, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )
    if check:
        assert result.returncode == 0, (
            f"yrdgw {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli") / "pki"
    run("pki", "init", "--dir", str(directory))
    return directory


def test_pki_init_certificates_pass_openssl_verify(pki_dir: Path) -> None:
    certs = sorted(pki_dir.glob("**/cert.pem"))
    assert len(certs) == 13
    for cert in certs:
        result = subprocess.run(
            ["openssl", "verify", "-CAfile", str(pki_dir / "ca.pem"), str(cert)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    text = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(pki_dir / "regions/330000/admin/admin-b/cert.pem"),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "URI:spiffe://yrd-interop/region/330000/admin/admin-b" in text


def test_pki_issue_and_revoke(pki_dir: Path, tmp_path: Path) -> None:
    run("pki", "issue", "--region", "440000", "--role", "registry", "--dir", str(pki_dir))
    run(
        "pki",
        "issue",
        "--region",
        "310000",
        "--role",
        "admin",
        "--name",
        "admin-c",
        "--dir",
        str(pki_dir),
    )
    assert (pki_dir / "regions/440000/registry/cert.pem").exists()
    assert (pki_dir / "regions/310000/admin/admin-c/signing-key.pem").exists()
    out = run(
        "pki",
        "revoke",
        "--region",
        "310000",
        "--role",
        "admin",
        "--name",
        "admin-c",
        "--dir",
        str(pki_dir),
    )
    assert "revoked serial" in out.stdout
    crl = subprocess.run(
        ["openssl", "crl", "-in", str(pki_dir / "crl.pem"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Serial Number" in crl
    bad = run("pki", "issue", "--region", "31", "--dir", str(pki_dir), check=False)
    assert bad.returncode == 2 and "six-digit" in bad.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    out = run("db", "upgrade", "--database-url", url)
    from gateway.storage.db import Database

    assert f"revision {Database.from_url(url).head_revision()}" in out.stdout


class Served(ServedGateway):
    """`yrdgw serve` on a SQLite file, and that file's URL."""

    def __init__(self, config: Path, database: str) -> None:
        super().__init__(config)
        self.database = database


@pytest.fixture
def served(pki_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """`yrdgw serve` on a SQLite file; indirect parametrisation adds TOML lines."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "sqlite:///{tmp_path / "gw.sqlite3"}"\n'
        f'cert_dir = "{pki_dir}"\nmetrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 3\n'
        "recognition_enforced = false\n" + getattr(request, "param", "")
    )
    gateway = Served(config, f"sqlite:///{tmp_path / 'gw.sqlite3'}")
    try:
        gateway.wait_started(timeout=30)
        yield gateway
    finally:
        gateway.kill()


def test_serve_health_keys_audit_and_sigterm(served: Served, pki_dir: Path) -> None:
    common = ["--gateway", served.target, "--cert-dir", str(pki_dir)]
    out = run("health", *common, "--region", "340000")
    assert out.stdout.strip() == "SERVING"
    keys = run("keys", "list", *common, "--region", "310000", "--of-region", "320000")
    assert "admin/admin-a" in keys.stdout and "registry" in keys.stdout
    key_id = next(
        line.split()[1]
        for line in keys.stdout.splitlines()
        if "registry" in line and "320000" in line
    )
    denied = run(
        "keys",
        "revoke",
        key_id,
        "--reason",
        "test",
        "--name",
        "admin-a",
        "--region",
        "310000",
        *common,
        check=False,
    )
    assert denied.returncode == 1 and "320000" in denied.stderr
    revoked = run(
        "keys",
        "revoke",
        key_id,
        "--reason",
        "rotation",
        "--name",
        "admin-a",
        "--region",
        "320000",
        *common,
    )
    assert f"revoked {key_id}" in revoked.stdout
    verified = run("audit", "verify", *common, "--region", "330000")
    assert "audit log OK" in verified.stdout
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=20) == 0
    events = [json.loads(line)["event"] for line in served.lines if line.startswith("{")]
    assert "gateway.stopping" in events and events[-1] == "gateway.stopped"
    rpc_lines = [json.loads(line) for line in served.lines if '"event": "rpc"' in line]
    assert {"region", "method", "status", "duration_ms"} <= rpc_lines[0].keys()


def test_health_against_nothing_fails_cleanly(pki_dir: Path) -> None:
    out = run(
        "health",
        "--gateway",
        "127.0.0.1:1",
        "--cert-dir",
        str(pki_dir),
        "--region",
        "310000",
        check=False,
    )
    assert out.returncode == 1 and "is `yrdgw serve` running" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_runs_to_the_end() -> None:
    out = run("demo")
    assert "demo finished: every step behaved as expected" in out.stdout
    assert "ROLE_NOT_ALLOWED" in out.stdout
    # The plant filed in Qingpu and in Wujiang: a certain case, held units refused, resolved.
    said = " ".join(out.stdout.split())  # rich wraps long lines at the terminal's width
    assert "certain: the same grid account and owner credit code" in said
    assert "FAILED_PRECONDITION / UNITS_HELD" in said
    assert "the case is DUPLICATE" in said
    assert "regions/320000/issuances/JS-QF-2025-0517 cancelled" in said
    assert "ledger invariants" in said and "audit log verified end to end by 310000: OK" in said


def test_python_dash_m_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "pki" in result.stdout and "serve" in result.stdout


SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"


def test_registry_publish_subscribe_and_offline_audit(
    served: Served, pki_dir: Path, tmp_path: Path
) -> None:
    import shutil
    import sqlite3

    common = ["--gateway", served.target, "--cert-dir", str(pki_dir)]
    files = [str(SAMPLES / f"310000-{k}.json") for k in ("methodology", "project", "issuance")]
    out = run("registry", "publish", "--region", "310000", *common, *files)
    assert out.stdout.count("accepted") == 3
    state = json.loads((pki_dir / "regions/310000/registry/signer-state.json").read_text())
    assert state["sequence"] >= 3
    # The same issuance again is refused (issuances are immutable); the command says so and fails.
    again = run("registry", "publish", "--region", "310000", *common, files[2], check=False)
    assert again.returncode == 1 and "ISSUANCE_EXISTS" in again.stdout
    # A second run continues the chain from the saved head.
    more = run("registry", "publish", "--region", "310000", *common, files[0])
    assert "accepted" in more.stdout
    feed = run("registry", "subscribe", "--region", "320000", *common)
    lines = [line for line in feed.stdout.splitlines() if line.strip()]
    assert len(lines) == 4 and "regions/310000/issuances/SHCI-I-2025-000045" in feed.stdout
    assert "next cursor: 4" in feed.stderr
    resumed = run("registry", "subscribe", "--region", "320000", *common, "--from", "2", "--json")
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert [e["cursor"] for e in events] == ["3", "4"]
    assert events[0]["issuance"]["quantity_grams"] == "392700000"

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=20) == 0
    database = Path(str(served.database).removeprefix("sqlite:///"))
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(database, copy)
    url = f"sqlite:///{copy}"
    assert "audit log OK" in run("audit", "verify", "--database-url", url).stdout
    with sqlite3.connect(copy) as conn:
        (detail,) = conn.execute("SELECT detail FROM audit_entries WHERE sequence = 14").fetchone()
        conn.execute(
            "UPDATE audit_entries SET detail = ? WHERE sequence = 14",
            (bytes([detail[0] ^ 1]) + detail[1:],),
        )
    bad = run("audit", "verify", "--database-url", url, check=False)
    assert bad.returncode == 3 and "FAILED at entry 14" in bad.stderr
    # One byte of a stored envelope's payload: the entry that stored it names the row.
    copy = tmp_path / "copy2.sqlite3"  # a fresh file: the first copy keeps its WAL
    url = f"sqlite:///{copy}"
    shutil.copy(database, copy)
    with sqlite3.connect(copy) as conn:
        (payload,) = conn.execute("SELECT payload FROM envelopes WHERE id = 2").fetchone()
        conn.execute(
            "UPDATE envelopes SET payload = ? WHERE id = 2",
            (bytes([payload[0] ^ 1]) + payload[1:],),
        )
    bad = run("audit", "verify", "--database-url", url, check=False)
    assert bad.returncode == 3 and "FAILED at envelopes id=2" in bad.stderr, bad.stderr


def test_adapters_list_and_convert(tmp_path: Path) -> None:
    listed = run("adapters", "list").stdout
    for region in ("310000", "320000", "330000", "340000"):
        assert region in listed
    common = run("adapters", "convert", "--region", "310000", str(SAMPLES / "310000-issuance.json"))
    record = json.loads(common.stdout)
    assert record["quantity_grams"] == "392700000"
    assert record["serials"] == {"start": "1000001000", "end": "1392700999"}
    native = run(
        "adapters",
        "convert",
        "--region",
        "310000",
        "--to",
        "native",
        "--target-region",
        "340000",
        str(SAMPLES / "310000-methodology.json"),
        check=False,
    )
    assert native.returncode in (0, 1)
    assert native.stdout or "cannot be expressed" in native.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"record_type": "issuance", "reduction_tco2e": 1}')
    refused = run("adapters", "convert", "--region", "310000", str(bad), check=False)
    assert refused.returncode == 1 and "reduction_tco2e" in refused.stderr


def test_transfer_and_ledger_commands(served: Served, pki_dir: Path) -> None:
    common = ["--gateway", served.target, "--cert-dir", str(pki_dir)]
    files = [str(SAMPLES / f"340000-{k}.csv") for k in ("methodology", "project", "issuance")]
    run("registry", "publish", "--region", "340000", *common, *files)
    proposed = run(
        "transfer",
        "propose",
        "t-cli-1",
        "--region",
        "340000",
        "--to",
        "310000",
        "--range",
        "1000-2000999",
        *common,
    )
    assert "PROPOSED" in proposed.stdout
    name = "regions/340000/transfers/t-cli-1"
    wrong = run("transfer", "accept", name, "--region", "320000", *common, check=False)
    assert wrong.returncode == 1 and "CALLER_NOT_DESTINATION" in wrong.stderr
    accepted = run("transfer", "accept", name, "--region", "310000", *common)
    assert "COMPLETED" in accepted.stdout
    listed = run("transfer", "list", "--region", "340000", *common)
    assert name in listed.stdout and "COMPLETED" in listed.stdout
    holdings = run("ledger", "holdings", "--region", "310000", *common)
    assert "310000 holds 2,000,000 g from 340000, active" in holdings.stdout
    retired = run(
        "transfer",
        "retire",
        "r-cli-1",
        "--region",
        "310000",
        "--purpose",
        "ets-offset",
        "--beneficiary",
        "上海某钢铁有限公司",
        "--origin",
        "340000",
        "--range",
        "1000-1000999",
        "--compliance-year",
        "2025",
        "--obligation-grams",
        "100000000",
        *common,
    )
    assert "credited 1,000,000 g" in retired.stdout
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=20) == 0
    check = run("ledger", "check", "--database-url", served.database)
    assert "ledger invariants hold" in check.stdout


def test_recognition_commands(served: Served, pki_dir: Path) -> None:
    common = ["--gateway", served.target, "--cert-dir", str(pki_dir)]
    for region, ext in (("340000", "csv"), ("310000", "json")):
        files = [
            str(SAMPLES / f"{region}-{k}.{ext}") for k in ("methodology", "project", "issuance")
        ]
        run("registry", "publish", "--region", region, *common, *files)
    requested = run(
        "recognition",
        "request",
        "regions/340000/methodologies/AH-FFX-PV-2024-02",
        "--version",
        "1",
        "--to",
        "310000",
        "--region",
        "340000",
        *common,
    )
    assert (
        "EF_grid" in requested.stdout
        and "0.6782" in requested.stdout
        and "0.42" in requested.stdout
    )
    name = next(w for w in requested.stdout.split() if w.startswith("recognitions/"))
    denied = run(
        "recognition",
        "approve",
        name,
        "--region",
        "320000",
        "--name",
        "admin-a",
        "--comment",
        "x",
        *common,
        check=False,
    )
    assert denied.returncode == 1 and "WRONG_REGION" in denied.stderr
    run(
        "recognition",
        "approve",
        name,
        "--region",
        "310000",
        "--name",
        "admin-a",
        "--comment",
        "审阅",
        *common,
    )
    approved = run(
        "recognition",
        "approve",
        name,
        "--region",
        "310000",
        "--name",
        "admin-b",
        "--comment",
        "同意",
        *common,
    )
    assert "APPROVED" in approved.stdout
    listed = run("recognition", "list", "--recognising", "310000", "--region", "310000", *common)
    assert name in listed.stdout and "2/2" in listed.stdout
    shown = run("recognition", "show", name, "--region", "310000", *common)
    assert "admin-b approved: 同意" in shown.stdout
    revoked = run(
        "recognition",
        "revoke",
        name,
        "--region",
        "310000",
        "--name",
        "admin-a",
        "--reason",
        "复核",
        *common,
    )
    assert "REVOKED" in revoked.stdout


@pytest.mark.parametrize(
    "served", ["proposal_ttl_s = 4\nscheduler_enabled = false\n"], indirect=True
)
def test_reconcile_and_expire_commands(served: Served, pki_dir: Path, tmp_path: Path) -> None:
    common = ["--gateway", served.target, "--cert-dir", str(pki_dir)]
    files = [str(SAMPLES / f"340000-{k}.csv") for k in ("methodology", "project", "issuance")]
    run("registry", "publish", "--region", "340000", *common, *files)
    run(
        "transfer",
        "propose",
        "t-stuck",
        "--region",
        "340000",
        "--to",
        "320000",
        *common,
        "--range",
        "1000-2000999",
    )
    ops = ["--database-url", served.database]
    env = {"YRDGW_CERT_DIR": str(pki_dir)}
    snapshot = tmp_path / "ah.json"
    run("reconcile", "snapshot", "--region", "340000", "--out", str(snapshot), *ops, env=env)
    doc = json.loads(snapshot.read_text())
    reserved = [(b["start"], b["end"]) for b in doc["blocks"] if b["state"] == "reserved"]
    assert reserved == [(1000, 2000999)] and doc["blocks"][0]["state"] == "reserved"
    clean = run("reconcile", "run", "--snapshot", str(snapshot), *ops, env=env)
    assert "COMPLETED" in clean.stdout and "reconciliations/1" in clean.stdout
    assert "totals" in clean.stderr and "unit blocks" in clean.stderr  # the progress bars

    # Plant one discrepancy: the registry thinks the reserved units are still active.
    doc["blocks"][0]["state"] = "active"
    snapshot.write_text(json.dumps(doc))
    found = run("reconcile", "run", "--snapshot", str(snapshot), *ops, env=env, check=False)
    assert found.returncode == 3, found.stdout + found.stderr
    assert "TOTALS_INCONSISTENT" in found.stdout and "STATE_MISMATCH" in found.stdout
    listed = run("reconcile", "list", *ops, env=env)
    assert "reconciliations/2" in listed.stdout and "reconciliations/1" in listed.stdout
    as_csv = run("reconcile", "report", "2", "--format", "csv", *ops, env=env).stdout
    rows = [line.split(",") for line in as_csv.strip().splitlines()]
    assert rows[0][:4] == ["report", "region", "status", "kind"]
    mismatch = [r for r in rows if r[3] == "STATE_MISMATCH"]
    assert [r[4:8] for r in mismatch] == [["340000", "1000", "2000999", ""]]
    as_json = json.loads(run("reconcile", "report", "reconciliations/2", *ops, env=env).stdout)
    assert as_json["status"] == "RECONCILIATION_STATUS_TOTALS_INCONSISTENT"
    assert as_json["counts"] == {"TOTAL_MISMATCH": 2, "STATE_MISMATCH": 1}
    assert as_json["signature"] and as_json["key_id"]
    # The same file submitted by the registry itself (SubmitHoldings), then reconciled.
    submitted = run("reconcile", "submit", str(snapshot), "--region", "340000", *common)
    blocks, grams = len(doc["blocks"]), sum(b["end"] - b["start"] + 1 for b in doc["blocks"])
    assert f"submitted regions/340000/snapshots/3: {blocks} blocks, {grams:,} g" in submitted.stdout
    again = run("reconcile", "run", "--region", "340000", *ops, env=env, check=False)
    assert again.returncode == 3 and "reconciliations/3" in again.stdout, again.stdout
    assert "STATE_MISMATCH" in again.stdout

    time.sleep(4.5)  # past the four-second deadline
    expired = run("transfer", "expire", *ops, env=env)
    assert "1 expired: regions/340000/transfers/t-stuck" in expired.stdout
    assert "0 expired" in run("transfer", "expire", *ops, env=env).stdout
    shown = run(
        "transfer", "show", "regions/340000/transfers/t-stuck", "--region", "340000", *common
    )
    assert "EXPIRED" in shown.stdout
    assert "ledger invariants hold" in run("ledger", "check", *ops).stdout
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=20) == 0
    # Every stored snapshot row (blocks the sides do not hold alike, totals) is what the log says.
    verified = run("audit", "verify", *ops, env=env)
    assert "audit log OK" in verified.stdout and "stored rows match it" in verified.stdout


def test_info_serves_the_key_that_verifies_tree_heads(served: Served, pki_dir: Path) -> None:
    """`yrdgw info` (table and JSON) names the gateway's current signing key; that key, as the
    CLI printed it, verifies the signed tree head the gateway serves."""
    from gateway.client import GatewayClient
    from gateway.security.audit_chain import verify_tree_head
    from gateway.security.identity import Role
    from gateway.security.pki import PKIDir

    common = ["--gateway", served.target, "--cert-dir", str(pki_dir), "--region", "320000"]
    doc = json.loads(run("info", *common, "-o", "json").stdout)
    assert doc["protocol"]["package"] == "yrd.interop.v1"
    current = doc["signing_keys"][0]
    assert current["status"] == "GATEWAY_SIGNING_KEY_STATUS_CURRENT"
    key = base64.b64decode(current["public_key"])
    assert {r["region"] for r in doc["regions"]} >= {"310000", "320000", "330000", "340000"}
    shown = run("info", *common).stdout
    assert current["key_id"] in shown and key.hex() in shown and "protocol yrd.interop.v1" in shown

    with GatewayClient(served.target, PKIDir(pki_dir), region="320000", role=Role.REGISTRY) as c:
        head = c.tree_head()
    assert head.key_id == current["key_id"]
    signed_at = head.sign_time.ToDatetime(tzinfo=dt.UTC)
    assert verify_tree_head(key, head.size, head.head_hash, signed_at, head.signature)
    forged = bytes([head.signature[0] ^ 1]) + head.signature[1:]
    assert not verify_tree_head(key, head.size, head.head_hash, signed_at, forged)
