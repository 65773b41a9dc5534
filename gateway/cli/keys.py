"""``yrdgw keys``: the record-signing key directory."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    AdminNameOpt,
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import console, table
from gateway.security.identity import Role

app = typer.Typer(help="The record-signing key directory.", no_args_is_help=True)


@app.command("list")
def keys_list(
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    of_region: Annotated[str, typer.Option("--of-region", help="Only this region's keys.")] = "",
    include_revoked: bool = False,
) -> None:
    """List record-signing keys."""
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        keys = client.list_signing_keys(of_region, include_revoked)
    shown = table("key id", "region", "owner", "revoked")
    for k in keys:
        shown.add_row(
            k.key_id, k.region, k.owner, k.revoke_reason if k.HasField("revoke_time") else ""
        )
    console.print(shown)


@app.command("revoke")
def keys_revoke(
    key_id: str,
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    name: AdminNameOpt,
    region: RegionOpt,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Revoke a signing key of your region (administrators)."""
    with remote.connect(gateway, cert_dir, region, Role.ADMIN, name) as client:
        key = client.revoke_signing_key(key_id, reason)
    console.print(f"revoked {key.key_id} of {key.region}/{key.owner}")
