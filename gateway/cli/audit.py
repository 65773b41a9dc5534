"""``yrdgw audit``: the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import host, remote
from gateway.cli.errors import ExitCode
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import Format, OutputOpt, console, dumps, fail

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def audit_verify(
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    region: RegionOpt = None,
    role: RoleOpt = None,
    name: NameOpt = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Check a database (or a copy of one) offline, read-only, instead."),
    ] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Check every hash link of the audit log and the gateway's signed tree head.

    Online (default) it fetches the log over mTLS; with --database-url it reads the database
    directly. Either way it names the first bad entry and exits 3 when the log does not verify.
    """
    if database_url:
        from gateway.services.audit import AuditReader

        with host.database(database_url, read_only=True) as db:
            result = AuditReader(db).verify()
    else:
        with remote.connect(gateway, cert_dir, region, role, name) as client:
            result = remote.verify_audit_log(client)
    if output is not Format.TABLE:
        doc = {
            "ok": result.ok,
            "entries": result.entries,
            "head_hash": result.head_hash.hex(),
            "first_bad_entry": result.first_bad_entry,
            "problem": result.problem,
        }
        typer.echo(dumps(doc, Format.YAML if output is Format.YAML else Format.JSON), nl=False)
    if not result.ok:
        raise fail(
            f"audit log verification FAILED at entry {result.first_bad_entry}: {result.problem}",
            ExitCode.FINDINGS,
        )
    if output is Format.TABLE:
        console.print(f"audit log OK: {result.entries} entries, head {result.head_hash.hex()}")
