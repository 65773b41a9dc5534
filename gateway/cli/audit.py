"""``yrdgw audit``: the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import host, remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import console, fail
from gateway.security.identity import Role

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


FINDINGS = 3
"""Exit code when the log or a stored row does not verify (0 ok, 1 error, 2 usage)."""


@app.command("verify")
def audit_verify(
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    database_url: Annotated[
        str | None, typer.Option(help="Check a database (or a copy of one) offline instead.")
    ] = None,
) -> None:
    """Check the audit log's hash chain and, offline, every stored row against it.

    Online (default) it fetches the log over mTLS and checks every hash link and the gateway's
    signed tree head. With --database-url it reads the database directly, in one consistent
    read: the chain, then every stored table compared with the log (immutable rows by the
    hashes their entries commit to, mutable state by replaying the log). Either way it names the
    first bad entry or row and exits 3 when something does not verify.
    """
    if database_url:
        from sqlalchemy.exc import SQLAlchemyError

        from adapters import default_registry
        from gateway.services.audit import AuditReader

        with host.database(database_url) as db:
            try:
                revision, head = db.current_revision(), db.head_revision()
            except SQLAlchemyError as exc:
                raise fail(f"cannot read {database_url}: {exc.__class__.__name__}") from None
            if revision != head:
                raise fail(
                    f"the database is at schema revision {revision or 'none'}, this yrdgw "
                    f"verifies {head}: run `yrdgw db upgrade` (on a copy) first"
                )
            checked = AuditReader(db).verify_storage(default_registry)
        result = checked.check
        if result.ok:
            unchecked = (
                f"; {checked.unchecked} values of entries written under detail rule 1 commit to "
                "nothing to compare"
                if checked.unchecked
                else ""
            )
            console.print(
                f"audit log OK: {result.entries} entries, head {result.head_hash.hex()}; "
                f"{checked.rows} stored rows match it{unchecked}"
            )
            return
    else:
        with remote.connect(gateway, cert_dir, region, role, name) as client:
            result = remote.verify_audit_log(client)
    if not result.ok:
        if result.first_bad_entry is not None and result.table != "audit_head":
            where = f"at entry {result.first_bad_entry}"
        else:
            where = f"at {result.where}"
        raise fail(f"audit log verification FAILED {where}: {result.problem}", FINDINGS)
    console.print(
        f"audit log OK: {result.entries} entries, head {result.head_hash.hex()} "
        "(the chain and the signed tree head; --database-url also compares the stored rows)"
    )
