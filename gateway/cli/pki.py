"""``yrdgw pki``: the federation PKI (CA, certificates, CRL, signing keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.options import DEFAULT_PKI, DirOpt, NameOpt, RegionOpt, RoleOpt
from gateway.cli.output import console, fail, table
from gateway.security.identity import Role

app = typer.Typer(
    help="The federation PKI: CA, certificates, CRL, signing keys.", no_args_is_help=True
)


@app.command("init")
def pki_init(
    directory: DirOpt = DEFAULT_PKI,
    region: Annotated[
        list[str] | None, typer.Option("--region", help="Regions (repeatable).")
    ] = None,
    admin: Annotated[
        list[str] | None, typer.Option("--admin", help="Admin names (repeatable).")
    ] = None,
) -> None:
    """Create a root CA, the gateway certificate, and per region a registry and admins."""
    from gateway.security.pki import DEFAULT_ADMINS, PKIDir, PKIError, init
    from mutual_recognition import DELTA_REGIONS

    pki = PKIDir(directory)
    try:
        made = init(pki, tuple(region or DELTA_REGIONS), tuple(admin or DEFAULT_ADMINS))
    except PKIError as exc:
        raise fail(str(exc)) from exc
    shown = table("identity", "certificate", title=f"PKI in {directory}")
    for files in made:
        shown.add_row(str(files.directory.relative_to(directory)), str(files.cert))
    console.print(shown)
    console.print(f"root CA: {pki.ca_cert}; revocation list: {pki.crl}")


@app.command("issue")
def pki_issue(
    region: RegionOpt,
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    directory: DirOpt = DEFAULT_PKI,
) -> None:
    """Issue a certificate and signing key for a new registry or administrator."""
    from gateway.security.pki import PKIDir, PKIError, issue

    try:
        files = issue(PKIDir(directory), role, region, name)
    except PKIError as exc:
        raise fail(str(exc)) from exc
    console.print(f"issued {files.cert} and signing key {files.signing_key}")


@app.command("revoke")
def pki_revoke(
    region: Annotated[str | None, typer.Option(help="Region code.")] = None,
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    cert: Annotated[Path | None, typer.Option(help="Certificate file to revoke instead.")] = None,
    directory: DirOpt = DEFAULT_PKI,
) -> None:
    """Add a certificate to the CRL the server loads (it reloads when the file changes)."""
    from gateway.security.pki import PKIDir, PKIError, revoke

    pki = PKIDir(directory)
    try:
        path = cert or pki.files(role, region, name).cert
        serial = revoke(pki, path)
    except (PKIError, OSError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"revoked serial {serial:x} ({path}); CRL {pki.crl}")
