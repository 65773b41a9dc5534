"""Serving the console: uvicorn on 127.0.0.1 (a given port or a free one), in the foreground for
``yrdgw console`` or in a thread for scripts and tests."""

from __future__ import annotations

import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

import uvicorn

from gateway.console.app import create_app
from gateway.console.backend import ConsoleBackend
from gateway.console.reports import ReportSource, database_reports

HOST = "127.0.0.1"
"""The console listens on the loopback interface only: it acts with an administrator's key."""


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Shut down gracefully and exit 0, rather than re-raising the signal afterwards as
        # uvicorn does by default (the command then ends like `yrdgw serve` on SIGTERM).
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


class ConsoleServer:
    """The console of one administrator on 127.0.0.1, bound at construction (so its URL, with
    the one-time token, is known before it serves)."""

    def __init__(
        self,
        backend: ConsoleBackend,
        port: int = 0,
        token: str | None = None,
        reports: ReportSource | None = None,
    ) -> None:
        self.token = token or secrets.token_urlsafe(32)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((HOST, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(backend, self.token, reports=reports),
            log_level="warning",
            # Access logs would print the token of the first URL.
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The URL that opens the console (carrying the token)."""
        return f"{self.base_url}/?token={self.token}"

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (in the main thread)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; returns once it accepts connections."""
        self._thread = threading.Thread(target=self.run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def run_console(
    *,
    gateway: str,
    cert_dir: Path,
    region: str,
    admin: str,
    port: int = 0,
    out: TextIO | None = None,
    database_url: str | None = None,
) -> int:
    """Connect as the administrator, print the console's URL with its token, serve until
    interrupted. Raises the client's errors (PKI files missing, gateway unreachable)."""
    stream = out or sys.stdout
    backend = ConsoleBackend.connect(gateway, cert_dir, region, admin)
    reports, close_reports = None, None
    try:
        if database_url:  # report downloads, read from the gateway's database
            reports, close_reports = database_reports(database_url, backend.client.gateway_info())
        server = ConsoleServer(backend, port, reports=reports)
        print(
            f"Administrator console for {region}/{admin} (gateway {gateway}).\n"
            "Open this URL in a browser on this machine (the token is valid until the console "
            f"stops):\n    {server.url}",
            file=stream,
            flush=True,
        )
        server.run()
    finally:
        if close_reports is not None:
            close_reports()
        backend.close()
    return 0
