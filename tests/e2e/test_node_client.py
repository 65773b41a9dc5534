"""The JavaScript reference client (clients/node, written from docs/protocol.md and the .proto
files) against a real `yrdgw serve`: dev PKI, migrated SQLite database, dependencies installed
from the committed npm lock file, then `node --test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.served import ServedGateway

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"
YRDGW = str(Path(sys.executable).parent / "yrdgw")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _tool(name: str) -> str:
    """The path of node or npm; skips (fails under CI=true) when it is missing."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed: the JavaScript reference client cannot be tested"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.mark.timeout(600)  # npm ci may have to download the packages once
def test_node_reference_client(tmp_path: Path) -> None:
    node, npm = _tool("node"), _tool("npm")
    pki = tmp_path / "pki"
    database = f"sqlite:///{tmp_path / 'gw.sqlite3'}"
    _run([YRDGW, "pki", "init", "--dir", str(pki)], cwd=tmp_path)
    _run([YRDGW, "db", "upgrade", "--database-url", database], cwd=tmp_path)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "{database}"\ncert_dir = "{pki}"\n'
        'metrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 3\n'
        "migrate_on_start = false\nscheduler_enabled = false\n"
        # The client moves units between regions without the recognition workflow.
        "recognition_enforced = false\n"
    )
    gateway = ServedGateway(config)
    try:
        port = gateway.wait_started(timeout=60)
        # Installs exactly the committed lock (from npm's cache when it holds the packages).
        _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], cwd=CLIENT)
        env = {
            **os.environ,
            "YRDGW_TARGET": f"127.0.0.1:{port}",
            "YRDGW_PKI_DIR": str(pki),
            "YRDGW_PROTO_DIR": str(ROOT / "proto"),
            "YRDGW_SAMPLES_DIR": str(ROOT / "adapters" / "samples"),
        }
        out = _run([node, "--test", "--test-reporter=spec", "test/"], cwd=CLIENT, env=env)
        print(out)
        assert "fail 0" in out and "skipped 0" in out
    finally:
        gateway.stop()
