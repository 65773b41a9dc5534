"""``python -m gateway.console.screenshot [PATH]``: the request page as an administrator sees it,
taken by headless Chromium (Debian's, not a downloaded build) into PATH (docs/console.png).

It starts a gateway in process with a temporary PKI and database, has Jiangsu ask Shanghai to
recognise its PV methodology (grid factor 0.5978 against Shanghai's 0.42 kgCO2/kWh), has
Shanghai's admin-b approve, and opens admin-a's console on the request. The Chinese labels need
a CJK font (Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium: browser tests and screenshots never download a browser."""
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps trying to reach Google's services, which a closed network
    # refuses (and which a console on 127.0.0.1 never needs).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
"""A laptop screen: the pages must fit its width without horizontal scrolling."""
JS_PV = "regions/320000/methodologies/JS-FFX-GF-001"


def take(url: str, path: Path) -> None:
    """Open ``url`` (the console URL with its token, then a page) and save a full-page PNG."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            login, _, target = url.partition("#")
            page.goto(login)
            page.goto(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    from gateway.client import GatewayClient
    from gateway.config import GatewaySettings
    from gateway.console.backend import ConsoleBackend
    from gateway.console.server import ConsoleServer
    from gateway.contract import recognition_id
    from gateway.logs import configure_logging
    from gateway.samples import sample_documents
    from gateway.security.identity import Role
    from gateway.security.pki import PKIDir, init
    from gateway.server import GatewayServer
    from gateway.storage.db import Database
    from mutual_recognition import DELTA_REGIONS

    args = list(sys.argv[1:] if argv is None else argv)
    out = Path(args[0] if args else "docs/console.png")
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        pki = PKIDir(Path(tmp) / "pki")
        init(pki)
        db = Database.from_url(f"sqlite:///{Path(tmp) / 'gw.sqlite3'}")
        db.upgrade()
        settings = GatewaySettings(
            listen="127.0.0.1:0", cert_dir=pki.root, metrics_listen="", log_level="warning"
        )
        gw = GatewayServer(settings, db=db)
        gw.start()
        try:
            target = f"127.0.0.1:{gw.port}"
            for region in DELTA_REGIONS:
                with GatewayClient(target, pki, region=region) as registry:
                    registry.publish(sample_documents(region))
            with GatewayClient(target, pki, region="320000") as js:
                (rec,) = js.request_recognition(JS_PV, version="1", regions=["310000"])
            with GatewayClient(
                target, pki, region="310000", role=Role.ADMIN, name="admin-b"
            ) as admin_b:
                admin_b.approve_recognition(
                    rec.name, "电网排放因子差异已审阅，同意按建议调整系数 300/427 互认。"
                )
            backend = ConsoleBackend.connect(target, pki.root, "310000", "admin-a")
            console = ConsoleServer(backend)
            console.start()
            try:
                rid = recognition_id(rec.name)
                take(f"{console.url}#{console.base_url}/recognitions/{rid}", out)
            finally:
                console.stop()
                backend.close()
        finally:
            gw.stop(grace=0.5)
            db.dispose()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
