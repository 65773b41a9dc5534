"""``yrdgw console``: the administrators' web console, a client of the gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import remote
from gateway.cli.options import DEFAULT_GATEWAY, DEFAULT_PKI, CertDirOpt, GatewayOpt, RegionOpt
from gateway.cli.output import fail


def console(
    region: RegionOpt,
    admin: Annotated[str, typer.Option("--admin", help="Administrator name, e.g. admin-a.")],
    cert_dir: CertDirOpt = DEFAULT_PKI,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1; 0: a free one.")
    ] = 0,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="The gateway's database: enables report downloads."),
    ] = None,
) -> None:
    """Start the administrators' web console on 127.0.0.1: a client of the gateway with your
    certificate that signs your decisions with your key. Open the URL it prints (with its token)."""
    from gateway.console import run_console
    from gateway.security.pki import PKIError

    failures: tuple[type[Exception], ...] = (PKIError, OSError, *remote.refusal_types())
    try:
        code = run_console(
            gateway=gateway,
            cert_dir=cert_dir,
            region=region,
            admin=admin,
            port=port,
            database_url=database_url,
        )
    except failures as exc:
        raise fail(remote.refusal(exc)) from exc
    raise typer.Exit(code)
