"""``yrdgw audit``: the tamper-evident audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from gateway.client import GatewayClient
    from gateway.security.audit_chain import ChainCheck

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
    """Check the audit log's hash chain and, offline, every stored row against it.

    Online (default) it fetches the log over mTLS and checks every hash link and the gateway's
    signed tree head. With --database-url it reads the database directly, in one consistent
    read: the chain, then every stored table compared with the log (immutable rows by the
    hashes their entries commit to, mutable state by replaying the log). Either way it names the
    first bad entry or row and exits 3 when something does not verify.
    """
    if database_url:
        from adapters import default_registry
        from gateway.services.audit import AuditReader

        with host.database(database_url, read_only=True) as db:
            checked = AuditReader(db).verify_storage(default_registry)
        result = checked.check
        if result.ok:
            unchecked = (
                f"; {checked.unchecked} values of entries written under detail rule 1 commit to "
                "nothing to compare"
                if checked.unchecked
                else ""
            )
            if output is not Format.TABLE:
                emit(result, output, rows=checked.rows, unchecked=checked.unchecked)
                return
            console.print(
                f"audit log OK: {result.entries} entries, head {result.head_hash.hex()}; "
                f"{checked.rows} stored rows match it{unchecked}"
            )
            return
        served = None
    else:
        with remote.connect(gateway, cert_dir, region, role, name) as client:
            result = remote.verify_audit_log(client)
            served = 0
            if result.ok:
                result, served = served_records(client, result)
    if output is not Format.TABLE:
        emit(result, output, served=served)
    if not result.ok:
        if result.first_bad_entry is not None and result.table != "audit_head":
            where = f"at entry {result.first_bad_entry}"
        else:
            where = f"at {result.where}"
        raise fail(f"audit log verification FAILED {where}: {result.problem}", ExitCode.FINDINGS)
    if output is Format.TABLE:
        console.print(
            f"audit log OK: {result.entries} entries, head {result.head_hash.hex()}, signed tree "
            f"head; the {served} records the feed serves and their envelopes match it "
            "(--database-url compares every stored row)"
        )


def emit(result: ChainCheck, output: Format, **extra: object) -> None:
    """The verdict as JSON or YAML on stdout (the failure line still goes to stderr)."""
    doc: dict[str, object] = {
        "ok": result.ok,
        "entries": result.entries,
        "head_hash": result.head_hash.hex(),
        "first_bad_entry": result.first_bad_entry,
        "table": result.table,
        "where": result.where,
        "problem": result.problem,
        **{k: v for k, v in extra.items() if v is not None},
    }
    typer.echo(dumps(doc, Format.YAML if output is Format.YAML else Format.JSON), nl=False)


def served_records(client: GatewayClient, result: ChainCheck) -> tuple[ChainCheck, int]:
    """Every record the feed serves, with the envelope it came in, hashes to what the entry that
    accepted it commits to (a record's feed cursor is its ``record_id``): what the gateway serves
    is what its log says it stored. The feed and the log are read as streams, in step. Returns
    the verdict and the number of records compared."""
    import hashlib
    import json

    from gateway.client import envelope_fields_of
    from gateway.security.audit_chain import ChainCheck
    from gateway.security.signing import envelope_hash

    events = client.subscribe()
    count = 0
    problem = ""
    key = ""
    for entry in client.audit_entries():
        if entry.sequence > result.entries:
            break
        if entry.kind not in ("methodology.accepted", "project.accepted", "issuance.accepted"):
            continue
        detail = json.loads(entry.detail)
        key = f"id={detail['record_id']}"
        event = next(events, None)
        env = event.envelope if event is not None else None
        if event is None or event.cursor != str(detail["record_id"]):
            at = "the end of the feed" if event is None else f"cursor {event.cursor}"
            problem = f"entry {entry.sequence} accepted it; the feed serves {at}"
        elif (
            hashlib.sha256(event.record.SerializeToString(deterministic=True)).hexdigest()
            != detail["record_sha256"]
        ):
            problem = (
                "the feed serves bytes that do not hash to the record_sha256 entry "
                f"{entry.sequence} commits to"
            )
        elif (
            env is not None
            and envelope_hash(envelope_fields_of(env), env.signature).hex()
            != detail["envelope_hash"]
        ):
            problem = (
                f"the feed serves it with an envelope that does not hash to the envelope_hash "
                f"entry {entry.sequence} commits to"
            )
        if problem:
            break
        count += 1
    # Read the feed to its end rather than cancel it: records accepted after the log was read
    # are not compared, and a stream cancelled mid-read leaves the gateway finishing its
    # read after the client has gone.
    for _ in events:
        pass
    if problem:
        return ChainCheck(False, result.entries, result.head_hash, problem, "records", key), count
    return result, count
