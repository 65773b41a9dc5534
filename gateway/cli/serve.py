"""``yrdgw serve`` and ``yrdgw scheduler``: the gateway's long-running processes on its host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import host
from gateway.cli.options import ConfigOpt, DatabaseOpt
from gateway.cli.output import fail


def serve(
    config: ConfigOpt = None,
    listen: Annotated[str | None, typer.Option(help="host:port to bind.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    cert_dir: Annotated[Path | None, typer.Option(help="PKI directory.")] = None,
    metrics_listen: Annotated[
        str | None, typer.Option(help="host:port for /metrics; '' disables.")
    ] = None,
) -> None:
    """Run the gateway until SIGTERM (graceful) or SIGINT."""
    from gateway.config import load_settings
    from gateway.logs import configure_logging
    from gateway.security.pki import PKIError
    from gateway.server import GatewayServer

    overrides = {
        k: v
        for k, v in {
            "listen": listen,
            "database_url": database_url,
            "cert_dir": cert_dir,
            "metrics_listen": metrics_listen,
        }.items()
        if v is not None
    }
    settings = load_settings(config, **overrides)
    configure_logging(settings.log_format, settings.log_level)
    try:
        GatewayServer(settings).serve_until_signalled()
    except (PKIError, OSError) as exc:
        raise fail(str(exc)) from exc


def scheduler(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the scheduled jobs in this process only (no gRPC server) until SIGTERM or SIGINT."""
    import signal
    import threading
    from types import FrameType

    from gateway.logs import configure_logging
    from gateway.scheduler import GatewayScheduler

    settings = host.settings(config, database_url)
    configure_logging(settings.log_format, settings.log_level)
    done = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with host.services(settings) as services:
        running = GatewayScheduler(settings, services.jobs)
        running.start()
        try:
            done.wait()
        finally:
            running.stop()
