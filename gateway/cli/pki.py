"""``yrdgw pki``: the federation PKI (CA, certificates, CRL, signing keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    DEFAULT_PKI,
    DirOpt,
    SubjectNameOpt,
    SubjectRegionOpt,
    region_code,
    region_codes,
)
from gateway.cli.output import Col, Format, OutputOpt, console, fail, show
from gateway.security.identity import Role

app = typer.Typer(
    help="The federation PKI: CA, certificates, CRL, signing keys.", no_args_is_help=True
)


@app.command("init")
def pki_init(
    directory: DirOpt = DEFAULT_PKI,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", callback=region_codes, help="Regions (repeatable)."),
    ] = None,
    admin: Annotated[
        list[str] | None, typer.Option("--admin", help="Admin names (repeatable).")
    ] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Create a root CA, the gateway certificate, and per region a registry and admins."""
    from gateway.security.pki import DEFAULT_ADMINS, PKIDir, PKIError, init
    from mutual_recognition import DELTA_REGIONS

    pki = PKIDir(directory)
    try:
        made = init(pki, tuple(region or DELTA_REGIONS), tuple(admin or DEFAULT_ADMINS))
    except PKIError as exc:
        raise fail(str(exc), hint="choose another --dir, or remove this one first") from exc
    rows = [
        {"name": str(f.directory.relative_to(directory)), "certificate": str(f.cert)} for f in made
    ]
    show(
        rows,
        output,
        cols=[
            Col("identity", lambda r: r["name"], ident=True),
            Col("certificate", lambda r: r["certificate"], ident=True, optional=True),
        ],
        title=f"PKI in {directory}",
    )
    if output is Format.TABLE:
        console.print(f"root CA: {pki.ca_cert}; revocation list: {pki.crl}", highlight=False)


@app.command("issue")
def pki_issue(
    region: SubjectRegionOpt,
    role: Annotated[Role, typer.Option(help="Role of the subject.")] = Role.REGISTRY,
    name: SubjectNameOpt = None,
    directory: DirOpt = DEFAULT_PKI,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an identity that exists (a new key).")
    ] = False,
) -> None:
    """Issue a certificate and signing key for a new registry or administrator.

    A running gateway learns a new signing key when it starts or gets SIGHUP."""
    from gateway.security.pki import PKIDir, PKIError, issue

    pki = PKIDir(directory)
    try:
        existing = pki.files(role, region, name)
    except PKIError as exc:
        raise UserError(str(exc), code=ExitCode.USAGE) from exc
    if existing.cert.exists() and not force:
        raise UserError(
            f"{existing.directory} already holds this identity's certificate and keys",
            "pass --force to replace them (the old signing key then signs nothing new; "
            "revoke the old certificate with `yrdgw pki revoke --cert FILE`)",
        )
    try:
        files = issue(pki, role, region, name)
    except PKIError as exc:
        raise fail(str(exc)) from exc
    console.print(f"issued {files.cert} and signing key {files.signing_key}", highlight=False)
    console.print(
        "a running gateway learns the new key at its next start or SIGHUP "
        "(`kill -HUP $(pgrep -f 'yrdgw serve')`)",
        highlight=False,
    )


@app.command("revoke")
def pki_revoke(
    region: Annotated[
        str | None, typer.Option(callback=region_code, help="Region of the certificate's subject.")
    ] = None,
    role: Annotated[Role, typer.Option(help="Role of the subject.")] = Role.REGISTRY,
    name: SubjectNameOpt = None,
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
