"""``yrdgw serve`` and ``yrdgw scheduler``: the gateway's long-running processes on its host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import host
from gateway.cli.errors import UserError
from gateway.cli.options import ConfigOpt, DatabaseOpt


def serve(
    config: ConfigOpt = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to bind (default: the configuration's, 127.0.0.1:50051)."),
    ] = None,
    database_url: DatabaseOpt = None,
    cert_dir: Annotated[
        Path | None, typer.Option(help="PKI directory (default: the configuration's, certs/dev).")
    ] = None,
    metrics_listen: Annotated[
        str | None, typer.Option(help="HOST:PORT for /metrics; '' disables.")
    ] = None,
) -> None:
    """Run the gateway until SIGTERM (graceful) or SIGINT; SIGHUP re-reads the CRL and
    registers newly issued signing keys. Creates or migrates the database when the
    configuration's migrate_on_start is true (the default)."""
    from gateway.logs import configure_logging
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
    settings = host.settings_with(config, overrides)
    configure_logging(settings.log_format, settings.log_level)
    try:
        GatewayServer(settings).serve_until_signalled()
    except RuntimeError as exc:
        if "bind" not in str(exc).lower() and "port" not in str(exc).lower():
            raise
        raise UserError(
            f"cannot listen on {settings.listen}: the address is in use or not available",
            "another process (another `yrdgw serve`?) listens there; stop it, or pick another "
            "with --listen HOST:PORT",
        ) from exc


def scheduler(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the scheduled jobs in this process only (no gRPC server) until SIGTERM or SIGINT;
    like serve, creates or migrates the database when migrate_on_start is true."""
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
    with host.services(settings, migrate=settings.migrate_on_start) as services:
        running = GatewayScheduler(settings, services.jobs)
        running.start()
        try:
            done.wait()
        finally:
            running.stop()
