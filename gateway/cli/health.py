"""``yrdgw health``: the gateway's health over mTLS."""

from __future__ import annotations

import typer

from gateway.cli import remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import console
from gateway.security.identity import Role


def health(
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
) -> None:
    """Check the gateway's health over mTLS as one identity."""
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        status = client.health()
    console.print(status)
    if status != "SERVING":
        raise typer.Exit(1)
