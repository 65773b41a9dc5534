"""Report downloads in the console (HTTP, no browser): an XLSX of the pack, read back; without a
database the page says how to enable them."""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import io
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gateway.client import GatewayClient
from gateway.console import ConsoleBackend, ConsoleServer
from gateway.console.reports import pack_reports
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from tests.integration.conftest import publish_samples

TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()


def _opener(console: ConsoleServer) -> urllib.request.OpenerDirector:
    """A browser-like client logged in with the console's token (session cookie kept)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(console.url, timeout=10) as page:
        assert page.status == 200
    return opener


@pytest.mark.parametrize("with_database", [True, False])
def test_console_downloads_the_reports(
    server: GatewayServer,
    client_for: Callable[..., GatewayClient],
    pki: PKIDir,
    with_database: bool,
    tmp_path: Path,
) -> None:
    publish_samples(client_for)
    backend = ConsoleBackend.connect(f"127.0.0.1:{server.port}", pki.root, "310000", "admin-a")
    reports = pack_reports(server.db, backend.client.gateway_info()) if with_database else None
    console = ConsoleServer(backend, reports=reports)
    console.start()
    try:
        opener = _opener(console)
        with opener.open(f"{console.base_url}/reports", timeout=10) as page:
            html = page.read().decode()
        url = (
            f"{console.base_url}/reports/download?name=retirements&since={TODAY}&until={TODAY}"
            "&format=xlsx"
        )
        if not with_database:
            assert 'id="reports-unavailable"' in html
            with pytest.raises(urllib.error.HTTPError) as missing:
                opener.open(url, timeout=10)
            missing.value.close()
            assert missing.value.code == 404
            return
        assert 'id="report-form"' in html
        with opener.open(url, timeout=30) as download:
            assert "attachment" in download.headers["content-disposition"]
            data = download.read()
        book = load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["报表", "Report"]
        bad = url.replace(f"until={TODAY}", "until=yesterday")
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(bad, timeout=10)
        refused.value.close()
        assert refused.value.code == 400
    finally:
        console.stop()
        backend.close()
