"""Fixtures of the console tests: a real gateway (mTLS, port 0) with the samples published, the
console as users start it (``yrdgw console`` in a subprocess, one per administrator), and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.console.screenshot import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.server import GatewayServer
from gateway.storage.db import Database
from mutual_recognition import DELTA_REGIONS

IN_CI = os.environ.get("CI", "").lower() == "true"
YRDGW = str(Path(sys.executable).parent / "yrdgw")


@dataclass
class Gateway:
    target: str
    pki: PKIDir
    opened: list[GatewayClient]

    def client(
        self, region: str, role: Role = Role.REGISTRY, name: str | None = None
    ) -> GatewayClient:
        c = GatewayClient(self.target, self.pki, region=region, role=role, name=name)
        self.opened.append(c)
        return c


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with its own PKI (the consoles write their signer state beside the keys) and
    every region's samples published. Recognition is not enforced on transfers, so the transfer
    panel can show movements without first approving recognitions; the approval quorum is the
    default (two Shanghai administrators)."""
    root = tmp_path_factory.mktemp("console")
    pki = PKIDir(root / "pki")
    init(pki)
    db = Database.from_url(f"sqlite:///{root / 'gw.sqlite3'}")
    db.upgrade()
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        recognition_enforced=False,
    )
    assert settings.recognition_approvals == {"310000": 2}
    server = GatewayServer(settings, db=db)
    server.start()
    gw = Gateway(f"127.0.0.1:{server.port}", pki, [])
    for region in DELTA_REGIONS:
        results = gw.client(region).publish(sample_documents(region))
        assert all(r.accepted for r in results), [r.message for r in results]
    yield gw
    for c in gw.opened:
        c.close()
    server.stop(grace=0.5)
    db.dispose()


@dataclass
class Console:
    """A running ``yrdgw console``."""

    url: str
    """The URL it printed, with the token."""
    base: str
    proc: subprocess.Popen[str]
    output: list[str]
    reader: threading.Thread

    @property
    def token(self) -> str:
        return self.url.rpartition("token=")[2]


CONSOLES = (("310000", "admin-a"), ("310000", "admin-b"), ("330000", "admin-a"))
"""The consoles the tests use, started together (each start is mostly Python imports)."""


def _launch(gateway: Gateway, region: str, admin: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [
            YRDGW,
            "console",
            "--region",
            region,
            "--admin",
            admin,
            "--cert-dir",
            str(gateway.pki.root),
            "--gateway",
            gateway.target,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, []


@pytest.fixture(scope="module")
def console_for(gateway: Gateway) -> Iterator[Callable[[str, str], Console]]:
    """The running console of an administrator, started as a user does."""
    launched = {pair: _launch(gateway, *pair) for pair in CONSOLES}
    started: dict[tuple[str, str], Console] = {}

    def wait(pair: tuple[str, str]) -> Console:
        proc, output = launched[pair]
        found: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)
                if "?token=" in line:
                    found.put(line.strip())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            url = found.get(timeout=60)
        except queue.Empty:
            proc.kill()
            proc.wait()
            pytest.fail("yrdgw console did not start:\n" + "".join(output))
        return Console(url, url.partition("/?")[0], proc, output, reader)

    def get(region: str, admin: str) -> Console:
        if (region, admin) not in started:
            started[(region, admin)] = wait((region, admin))
        return started[(region, admin)]

    yield get
    for pair, (proc, output) in launched.items():
        proc.terminate()
        # SIGTERM is a graceful stop: the command exits 0.
        code = proc.wait(timeout=20)
        if pair in started:
            started[pair].reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
        assert code == 0, "".join(output)
        assert "Traceback" not in "".join(output), "".join(output)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; missing, the browser tests fail in CI and skip (with why) elsewhere."""
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)"
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    return CHROMIUM


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    b = playwright.chromium.launch(
        executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS)
    )
    yield b
    b.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in a fresh browser context each (no cookies: not logged in to any console)."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
