"""The command line as a user runs it: separate processes, real files, real signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    assert bad.returncode == 1 and "six-digit" in bad.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    out = run("db", "upgrade", "--database-url", url)
    assert "revision 0001" in out.stdout


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, lines: list[str]) -> None:
        self.proc, self.port, self.lines = proc, port, lines

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def served(pki_dir: Path, tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "sqlite:///{tmp_path / "gw.sqlite3"}"\n'
        f'cert_dir = "{pki_dir}"\nmetrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 3\n'
    )
    proc = subprocess.Popen(
        [YRDGW, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    found: queue.Queue[int] = queue.Queue()

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if '"gateway.started"' in line:
                found.put(json.loads(line)["port"])

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        port = found.get(timeout=30)
    except queue.Empty:
        proc.kill()
        proc.wait()
        pytest.fail("yrdgw serve did not start:\n" + "".join(lines))
    yield Served(proc, port, lines)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    thread.join(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()


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
    out = run("health", "--gateway", "127.0.0.1:1", "--cert-dir", str(pki_dir), check=False)
    assert out.returncode == 1 and "UNAVAILABLE" in out.stderr and "Traceback" not in out.stderr


def test_demo_runs_to_the_end() -> None:
    out = run("demo")
    assert "demo finished: every step behaved as expected" in out.stdout
    assert "ROLE_NOT_ALLOWED" in out.stdout


def test_python_dash_m_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "pki" in result.stdout and "serve" in result.stdout
