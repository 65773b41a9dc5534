"""``yrdgw health``: the gateway's health over mTLS."""

from __future__ import annotations

import typer

from gateway.cli import remote
from gateway.cli.errors import ExitCode
from gateway.cli.options import (
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import console


def health(
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    name: NameOpt = None,
) -> None:
    """Check the gateway's health over mTLS as one identity: prints SERVING (exit 0) or the
    status (exit 1)."""
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        status = client.health()
    console.print(status)
    if status != "SERVING":
        raise typer.Exit(ExitCode.ERROR)
