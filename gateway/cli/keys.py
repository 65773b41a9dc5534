"""``yrdgw keys``: the record-signing key directory."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import remote
from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    OfRegionOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import Col, Format, OutputOpt, console, proto_time, show, zone_name
from gateway.security.identity import Role

app = typer.Typer(help="The record-signing key directory.", no_args_is_help=True)


@app.command("list")
def keys_list(
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    name: NameOpt = None,
    of_region: OfRegionOpt = "",
    include_revoked: Annotated[
        bool, typer.Option("--include-revoked", help="Revoked keys too.")
    ] = False,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List record-signing keys (-o name: key ids)."""
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        keys = client.list_signing_keys(of_region, include_revoked)
    show(
        keys,
        output,
        name=lambda k: k.key_id,
        cols=[
            Col("key id", lambda k: k.key_id, ident=True),
            Col("region", lambda k: k.region),
            Col("owner", lambda k: k.owner, ident=True),
            Col("last sequence", lambda k: str(k.last_sequence), optional=True),
            Col(
                f"revoked ({zone_name()})",
                lambda k: (
                    f"{proto_time(k.revoke_time)} {k.revoke_reason}"
                    if k.HasField("revoke_time")
                    else ""
                ),
            ),
        ],
    )


@app.command("revoke")
def keys_revoke(
    key_id: str,
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    name: NameOpt = None,
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Revoke a signing key of your region (administrators: --admin NAME)."""
    from gateway.cli.context import resolve

    if resolve(gateway, cert_dir, region, None, name).admin is None:
        raise UserError(
            "revoking a key takes an administrator",
            "pass --admin NAME (or YRDGW_ADMIN)",
            ExitCode.USAGE,
        )
    with remote.connect(gateway, cert_dir, region, Role.ADMIN, name) as client:
        key = client.revoke_signing_key(key_id, reason)
    show(
        key,
        output,
        name=lambda k: k.key_id,
        human=lambda: console.print(
            f"revoked {key.key_id} of {key.region}/{key.owner}", highlight=False
        ),
    )
