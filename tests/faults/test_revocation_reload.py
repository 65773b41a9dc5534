"""`yrdgw serve` as a subprocess reloads its certificate revocation list on SIGHUP: a certificate
revoked while the gateway runs is refused from the next call on, on a connection already open."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.client import GatewayClient
from gateway.security.pki import PKIDir, init, revoke
from tests.faults.support import Outcome, outcome_of
from tests.served import ServedGateway

SH, JS = "310000", "320000"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServedGateway, PKIDir]]:
    pki = PKIDir(tmp_path / "pki")
    init(pki, regions=(SH, JS), admins=())
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "sqlite:///{tmp_path / "gw.sqlite3"}"\n'
        f'cert_dir = "{pki.root}"\nmetrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 2\n'
    )
    gateway = ServedGateway(config)
    try:
        gateway.wait_started(timeout=30)
        yield gateway, pki
    finally:
        gateway.stop(timeout=15)


def _health(client: GatewayClient) -> Outcome:
    outcome, _ = outcome_of(client.health)
    return outcome


def test_sighup_reloads_the_crl(served: tuple[ServedGateway, PKIDir]) -> None:
    gateway, pki = served
    target = f"127.0.0.1:{gateway.port}"
    ok = Outcome(grpc.StatusCode.OK)
    with (
        GatewayClient(target, pki, region=SH) as sh,
        GatewayClient(target, pki, region=JS) as js,
    ):
        assert _health(sh) == ok and _health(js) == ok
        # Revoke Shanghai's certificate, but leave crl.pem's modification time as it was: the
        # gateway's own once-a-second look at the file sees no change, so only SIGHUP reloads.
        before = os.stat(pki.crl)
        revoke(pki, pki.registry(SH).cert)
        os.utime(pki.crl, ns=(before.st_atime_ns, before.st_mtime_ns))
        time.sleep(1.5)
        assert _health(sh) == ok, "reloaded without SIGHUP: the test proves nothing"

        gateway.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        refused = _health(sh)
        while refused == ok and time.monotonic() < deadline:
            time.sleep(0.1)
            refused = _health(sh)
        assert refused == Outcome(grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED")
        assert _health(js) == ok  # only the revoked certificate is refused
    assert gateway.proc.poll() is None, "SIGHUP must not stop the gateway"
    reloads = [e for e in gateway.events() if e.get("event") == "gateway.crl_reloaded"]
    assert [e["revoked"] for e in reloads] == [1]
