"""``yrdgw console``: the administrators' web console, a client of the gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import remote
from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import CertDirOpt, GatewayOpt, NameOpt, RegionOpt


def console(
    region: RegionOpt = None,
    admin: NameOpt = None,
    cert_dir: CertDirOpt = None,
    gateway: GatewayOpt = None,
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
    from gateway.cli.context import resolve
    from gateway.console import run_console

    caller = resolve(gateway, cert_dir, region, None, admin)
    if caller.admin is None:
        raise UserError(
            "the console is for administrators",
            "pass --admin NAME (or YRDGW_ADMIN)",
            ExitCode.USAGE,
        )
    remote._check_files(caller.cert_dir, caller.role, caller.region, caller.admin)
    code = run_console(
        gateway=caller.gateway,
        cert_dir=caller.cert_dir,
        region=caller.region,
        admin=caller.admin,
        port=port,
        database_url=database_url,
    )
    raise typer.Exit(code)
