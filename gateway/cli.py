"""``yrdgw``: the command line. An entrypoint like the gRPC server: it calls the same services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.client import GatewayClient, TransportError
from gateway.config import load_settings
from gateway.errors import DomainError
from gateway.logs import configure_logging
from gateway.security.identity import Role
from gateway.security.pki import DEFAULT_ADMINS, PKIDir, PKIError, init, issue, revoke
from gateway.storage.db import Database
from mutual_recognition import DELTA_REGIONS

app = typer.Typer(
    help="Yangtze Delta carbon-inclusive interoperability gateway.", no_args_is_help=True
)
pki_app = typer.Typer(
    help="The federation PKI: CA, certificates, CRL, signing keys.", no_args_is_help=True
)
db_app = typer.Typer(help="The gateway database.", no_args_is_help=True)
keys_app = typer.Typer(help="The record-signing key directory.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
registry_app = typer.Typer(help="A registry's side of the record exchange.", no_args_is_help=True)
adapters_app = typer.Typer(
    help="The regional adapters (native formats ⇄ common schema).", no_args_is_help=True
)
app.add_typer(pki_app, name="pki")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(registry_app, name="registry")
app.add_typer(adapters_app, name="adapters")
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
DirOpt = Annotated[Path, typer.Option("--dir", help="PKI directory.")]
CertDirOpt = Annotated[Path, typer.Option("--cert-dir", help="PKI directory.")]
GatewayOpt = Annotated[str, typer.Option("--gateway", help="Gateway host:port.")]
RegionOpt = Annotated[str, typer.Option("--region", help="Region code, e.g. 310000.")]
RoleOpt = Annotated[Role, typer.Option("--role", help="registry, admin or gateway.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Administrator name.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _client(
    gateway: str, cert_dir: Path, region: str, role: Role, name: str | None
) -> GatewayClient:
    try:
        return GatewayClient(gateway, PKIDir(cert_dir), region=region, role=role, name=name)
    except (PKIError, OSError) as exc:
        raise _fail(str(exc)) from exc


@app.command()
def serve(
    config: ConfigOpt = None,
    listen: Annotated[str | None, typer.Option(help="host:port to bind.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    cert_dir: Annotated[Path | None, typer.Option(help="PKI directory.")] = None,
    metrics_listen: Annotated[
        str | None, typer.Option(help="host:port for /metrics; '' disables.")
    ] = None,
) -> None:
    """Run the gateway until SIGTERM (graceful) or SIGINT."""
    from gateway.server import GatewayServer

    overrides = {
        k: v
        for k, v in {
            "listen": listen,
            "database_url": database_url,
            "cert_dir": cert_dir,
            "metrics_listen": metrics_listen,
        }.items()
        if v is not None
    }
    settings = load_settings(config, **overrides)
    configure_logging(settings.log_format, settings.log_level)
    try:
        GatewayServer(settings).serve_until_signalled()
    except (PKIError, OSError) as exc:
        raise _fail(str(exc)) from exc


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Migrate the database schema to the newest revision."""
    settings = load_settings(config, **({"database_url": database_url} if database_url else {}))
    db = Database.from_url(settings.database_url)
    try:
        db.upgrade()
        console.print(f"database at revision {db.current_revision()}")
    finally:
        db.dispose()


@pki_app.command("init")
def pki_init(
    directory: DirOpt = Path("certs/dev"),
    region: Annotated[
        list[str] | None, typer.Option("--region", help="Regions (repeatable).")
    ] = None,
    admin: Annotated[
        list[str] | None, typer.Option("--admin", help="Admin names (repeatable).")
    ] = None,
) -> None:
    """Create a root CA, the gateway certificate, and per region a registry and admins."""
    pki = PKIDir(directory)
    try:
        made = init(pki, tuple(region or DELTA_REGIONS), tuple(admin or DEFAULT_ADMINS))
    except PKIError as exc:
        raise _fail(str(exc)) from exc
    table = Table("identity", "certificate", title=f"PKI in {directory}")
    for files in made:
        table.add_row(str(files.directory.relative_to(directory)), str(files.cert))
    console.print(table)
    console.print(f"root CA: {pki.ca_cert}; revocation list: {pki.crl}")


@pki_app.command("issue")
def pki_issue(
    region: RegionOpt,
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    directory: DirOpt = Path("certs/dev"),
) -> None:
    """Issue a certificate and signing key for a new registry or administrator."""
    try:
        files = issue(PKIDir(directory), role, region, name)
    except PKIError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"issued {files.cert} and signing key {files.signing_key}")


@pki_app.command("revoke")
def pki_revoke(
    region: Annotated[str | None, typer.Option(help="Region code.")] = None,
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    cert: Annotated[Path | None, typer.Option(help="Certificate file to revoke instead.")] = None,
    directory: DirOpt = Path("certs/dev"),
) -> None:
    """Add a certificate to the CRL the server loads (it reloads when the file changes)."""
    pki = PKIDir(directory)
    try:
        path = cert or pki.files(role, region, name).cert
        serial = revoke(pki, path)
    except (PKIError, OSError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"revoked serial {serial:x} ({path}); CRL {pki.crl}")


@app.command()
def health(
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
) -> None:
    """Check the gateway's health over mTLS as one identity."""
    with _client(gateway, cert_dir, region, role, name) as client:
        try:
            status = client.health()
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    console.print(status)
    if status != "SERVING":
        raise typer.Exit(1)


@keys_app.command("list")
def keys_list(
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    of_region: Annotated[str, typer.Option("--of-region", help="Only this region's keys.")] = "",
    include_revoked: bool = False,
) -> None:
    """List record-signing keys."""
    with _client(gateway, cert_dir, region, role, name) as client:
        try:
            keys = client.list_signing_keys(of_region, include_revoked)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    table = Table("key id", "region", "owner", "revoked")
    for k in keys:
        table.add_row(
            k.key_id, k.region, k.owner, k.revoke_reason if k.HasField("revoke_time") else ""
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str,
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    name: Annotated[str, typer.Option("--name", help="Administrator name.")],
    region: RegionOpt,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Revoke a signing key of your region (administrators)."""
    with _client(gateway, cert_dir, region, Role.ADMIN, name) as client:
        try:
            key = client.revoke_signing_key(key_id, reason)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    console.print(f"revoked {key.key_id} of {key.region}/{key.owner}")


@audit_app.command("verify")
def audit_verify(
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    region: RegionOpt = "310000",
    role: RoleOpt = Role.REGISTRY,
    name: NameOpt = None,
    database_url: Annotated[
        str | None, typer.Option(help="Check a database (or a copy of one) offline instead.")
    ] = None,
) -> None:
    """Check every hash link of the audit log and the gateway's signed tree head.

    Online (default) it fetches the log over mTLS; with --database-url it reads the database
    directly. Either way it names the first bad entry and exits 2 when the log does not verify.
    """
    if database_url:
        from gateway.services.audit import AuditReader

        db = Database.from_url(database_url)
        try:
            result = AuditReader(db).verify()
        finally:
            db.dispose()
    else:
        from gateway.client.audit import verify_remote_log

        with _client(gateway, cert_dir, region, role, name) as client:
            try:
                result = verify_remote_log(client)
            except (DomainError, TransportError) as exc:
                raise _fail(str(exc)) from exc
    if not result.ok:
        raise _fail(
            f"audit log verification FAILED at entry {result.first_bad_entry}: {result.problem}", 2
        )
    console.print(f"audit log OK: {result.entries} entries, head {result.head_hash.hex()}")


@app.command()
def demo(
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo's files in this directory.")
    ] = None,
) -> None:
    """Start a gateway in process with a temporary PKI and database and walk through what works."""
    from gateway.demo import run_demo

    raise typer.Exit(run_demo(console, keep))


@app.command("console")
def console_command(
    region: RegionOpt,
    admin: Annotated[str, typer.Option("--admin", help="Administrator name, e.g. admin-a.")],
    cert_dir: CertDirOpt = Path("certs/dev"),
    gateway: GatewayOpt = "127.0.0.1:50051",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1; 0: a free one.")
    ] = 0,
) -> None:
    """Start the administrators' web console on 127.0.0.1: a client of the gateway with your
    certificate that signs your decisions with your key. Open the URL it prints (with its token)."""
    from gateway.console import run_console

    try:
        code = run_console(
            gateway=gateway, cert_dir=cert_dir, region=region, admin=admin, port=port
        )
    except (PKIError, OSError, DomainError, TransportError) as exc:
        raise _fail(f"{getattr(exc, 'reason', '')} {exc}".strip()) from exc
    raise typer.Exit(code)


def main() -> None:
    app()


# -- registry: publish and subscribe ----------------------------------------------------------


@registry_app.command("publish")
def registry_publish(
    files: Annotated[list[Path], typer.Argument(help="Native documents to publish, in order.")],
    region: RegionOpt,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    content_type: Annotated[
        str | None, typer.Option(help="Content type; default: the region's native format.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Envelopes per stream message.")
    ] = 100,
) -> None:
    """Sign each file with the region's registry key and publish them over one stream.

    The signer's sequence and previous hash are kept in signer-state.json beside the key (and
    taken from the gateway when that file is missing). Exits 1 if any file was refused.
    """
    from adapters import default_registry
    from gateway.client.signer_state import load_state, save_state

    try:
        documents = [(f, f.read_bytes()) for f in files]
    except OSError as exc:
        raise _fail(str(exc)) from exc
    ct = content_type or default_registry.get(region).content_types[0]
    with _client(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        try:
            if not load_state(client.files, client.signer):
                client.sync_signer()
            results = client.publish([(ct, data) for _, data in documents], batch_size=batch_size)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
        finally:
            save_state(client.files, client.signer)
    table = Table("file", "result", "records / reason")
    refused = 0
    for (path, _), result in zip(documents, results, strict=True):
        if result.accepted:
            table.add_row(str(path), "[green]accepted[/green]", "\n".join(result.record_names))
        else:
            refused += 1
            detail = "\n".join(f"  {k}: {v}" for k, v in sorted(result.field_errors.items()))
            table.add_row(
                str(path),
                f"[red]refused[/red] {result.reason}",
                f"{result.message}\n{detail}".strip(),
            )
    console.print(table)
    if refused:
        raise _fail(f"{refused} of {len(documents)} file(s) refused")


@registry_app.command("subscribe")
def registry_subscribe(
    region: RegionOpt,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    native: Annotated[
        bool, typer.Option("--native", help="Records in your own native format.")
    ] = False,
    cursor: Annotated[str, typer.Option("--from", help="Resume after this cursor.")] = "",
    follow: Annotated[bool, typer.Option("--follow", help="Keep streaming new records.")] = False,
    of_region: Annotated[
        list[str] | None, typer.Option("--of-region", help="Only these regions.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
) -> None:
    """Print the feed of accepted records (and exit), or keep following it with --follow."""
    import json

    from google.protobuf import json_format

    last = cursor
    with _client(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        try:
            for event in client.subscribe(
                cursor, native=native, regions=of_region or (), follow=follow
            ):
                last = event.cursor
                kind = event.record.WhichOneof("kind") or ""
                record = getattr(event.record, kind)
                if as_json:
                    out = json_format.MessageToDict(event.record, preserving_proto_field_name=True)
                    out["cursor"] = event.cursor
                    if event.native_payload:
                        out["native"] = event.native_payload.decode(
                            "gb18030" if "csv" in event.native_content_type else "utf-8"
                        )
                    elif event.native_unavailable_reason:
                        out["native_unavailable_reason"] = event.native_unavailable_reason
                    print(json.dumps(out, ensure_ascii=False), flush=True)
                    continue
                form = ""
                if native:
                    form = (
                        f" [{event.native_content_type}]"
                        if event.native_payload
                        else f" [common: {event.native_unavailable_reason}]"
                    )
                console.print(
                    escape(f"{event.cursor:>8}  {kind:<11} {record.name}{form}"), highlight=False
                )
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
        except KeyboardInterrupt:
            pass
    err_console.print(f"next cursor: {last or '(start)'}")


# -- adapters -------------------------------------------------------------------------------


@adapters_app.command("list")
def adapters_list() -> None:
    """The registered regions and the content types their adapters read."""
    from adapters import default_registry

    table = Table("region", "content type", "serial unit (g)", "max document (bytes)")
    for adapter in default_registry:
        table.add_row(
            adapter.region,
            ", ".join(adapter.content_types),
            f"{adapter.serial_unit_grams:,}",
            f"{adapter.max_document_bytes:,}",
        )
    console.print(table)


@adapters_app.command("convert")
def adapters_convert(
    file: Path,
    region: RegionOpt,
    to: Annotated[str, typer.Option(help="common (protobuf JSON) or native.")] = "common",
    target_region: Annotated[
        str | None, typer.Option(help="Region whose format to render.")
    ] = None,
) -> None:
    """Convert a native document to the common schema, or render it in another region's format."""
    import json

    from google.protobuf import json_format

    from adapters import NativeFormatError, NotExpressibleError, default_registry

    if to not in ("common", "native"):
        raise _fail("--to is common or native")
    try:
        source = default_registry.get(region)
        records = source.to_common(source.content_types[0], file.read_bytes())
    except NativeFormatError as exc:
        for issue in exc.issues:
            err_console.print(f"  {issue}", highlight=False)
        raise _fail(f"{file}: {len(exc.issues)} issue(s) in the {region} document") from exc
    except (OSError, LookupError) as exc:
        raise _fail(str(exc)) from exc
    if to == "common":
        for record in records:
            print(
                json.dumps(
                    json_format.MessageToDict(record, preserving_proto_field_name=True),
                    ensure_ascii=False,
                )
            )
        return
    if target_region is None:
        raise _fail("--to native needs --target-region")
    try:
        target = default_registry.get(target_region)
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    failed = 0
    for record in records:
        try:
            data = target.from_common(record)
        except NotExpressibleError as exc:
            failed += 1
            err_console.print(f"{record.name}: {exc}", highlight=False)
            continue
        encoding = "gb18030" if target.content_types[0].startswith("text/") else "utf-8"
        print(data.decode(encoding))
    if failed:
        raise _fail(f"{failed} record(s) cannot be expressed exactly in the {target_region} format")


# -- transfers and the ledger -------------------------------------------------------------------

transfer_app = typer.Typer(
    help="Two-phase cross-region transfers and retirements.", no_args_is_help=True
)
ledger_app = typer.Typer(help="The unit ledger.", no_args_is_help=True)
app.add_typer(transfer_app, name="transfer")
app.add_typer(ledger_app, name="ledger")

PURPOSES = {
    "transfer": 1,
    "ets-offset": 2,
    "voluntary-neutrality": 3,
    "charitable": 4,
}


def _signing_registry(
    gateway: str, cert_dir: Path, region: str
) -> AbstractContextManager[GatewayClient]:
    """A registry client whose signer continues its saved chain (or the gateway's head)."""
    return _signing_client(gateway, cert_dir, region, Role.REGISTRY, None)


def _parse_ranges(ranges: list[str]) -> list[tuple[int, int]]:
    out = []
    for text in ranges:
        start, sep, end = text.partition("-")
        if not sep or not start.isdigit() or not end.isdigit():
            raise _fail(f"--range takes START-END in grams, got {text!r}")
        out.append((int(start), int(end)))
    return out


def _show_transfer(t: Any) -> None:
    from google.protobuf import json_format

    state = json_format.MessageToDict(t, preserving_proto_field_name=True)
    blocks = state.pop("blocks", [])
    table = Table("field", "value", title=t.name)
    for key, value in state.items():
        table.add_row(key, str(value))
    for b in blocks:
        serials = b["serials"]
        table.add_row(
            "block", f"{b['origin_region']} {serials['start']}..{serials['end']} {b['state']}"
        )
    console.print(table)


@transfer_app.command("propose")
def transfer_propose(
    transfer_id: str,
    region: RegionOpt,
    to: Annotated[str, typer.Option("--to", help="Destination region code.")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    origin: Annotated[str, typer.Option(help="Origin region of the serial ranges.")] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    project: Annotated[str, typer.Option(help="Project resource name, to take a quantity.")] = "",
    vintage: Annotated[int, typer.Option(help="Vintage, with --project.")] = 0,
    grams: Annotated[int, typer.Option(help="Quantity in grams, with --project.")] = 0,
) -> None:
    """Propose moving serial ranges (or a quantity of a project's vintage) to another region."""
    ranges = _parse_ranges(serial_range or [])
    with _signing_registry(gateway, cert_dir, region) as client:
        t = client.propose_transfer(
            transfer_id,
            to,
            origin=origin or region,
            ranges=ranges,
            project=project,
            vintage=vintage,
            quantity_grams=grams,
        )
    _show_transfer(t)


def _answer(kind: str, name: str, region: str, gateway: str, cert_dir: Path, reason: str) -> None:
    with _signing_registry(gateway, cert_dir, region) as client:
        if kind == "accept":
            t = client.accept_transfer(name)
        elif kind == "reject":
            t = client.reject_transfer(name, reason)
        else:
            t = client.cancel_transfer(name, reason)
    _show_transfer(t)


@transfer_app.command("accept")
def transfer_accept(
    name: str,
    region: RegionOpt,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Accept a transfer proposed to your region: its units move to you."""
    _answer("accept", name, region, gateway, cert_dir, "")


@transfer_app.command("reject")
def transfer_reject(
    name: str,
    region: RegionOpt,
    reason: Annotated[str, typer.Option(help="Why.")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Reject a transfer proposed to your region: its units are released."""
    _answer("reject", name, region, gateway, cert_dir, reason)


@transfer_app.command("cancel")
def transfer_cancel(
    name: str,
    region: RegionOpt,
    reason: Annotated[str, typer.Option(help="Why.")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Cancel your own pending proposal."""
    _answer("cancel", name, region, gateway, cert_dir, reason)


@transfer_app.command("retire")
def transfer_retire(
    retirement_id: str,
    region: RegionOpt,
    purpose: Annotated[str, typer.Option(help="ets-offset, voluntary-neutrality or charitable.")],
    beneficiary: Annotated[str, typer.Option(help="Beneficiary (the compliance entity for ETS).")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    origin: Annotated[str, typer.Option(help="Origin region of the serial ranges.")] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    compliance_year: Annotated[int, typer.Option(help="ETS compliance year.")] = 0,
    obligation_grams: Annotated[int, typer.Option(help="Entity's declared obligation, grams.")] = 0,
) -> None:
    """Retire units your region holds, for good."""
    if purpose not in PURPOSES or purpose == "transfer":
        raise _fail("--purpose is ets-offset, voluntary-neutrality or charitable")
    with _signing_registry(gateway, cert_dir, region) as client:
        r = client.retire(
            retirement_id,
            PURPOSES[purpose],  # type: ignore[arg-type]
            beneficiary,
            origin=origin or region,
            ranges=_parse_ranges(serial_range or []),
            compliance_year=compliance_year,
            declared_obligation_grams=obligation_grams,
        )
    console.print(
        f"retired {r.quantity_grams:,} g as {r.name}; credited {r.credited_grams:,} g "
        f"(ratio {r.ratio_numerator}/{r.ratio_denominator})"
    )


@transfer_app.command("show")
def transfer_show(
    name: str,
    region: RegionOpt = "310000",
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Show one transfer."""
    with _client(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        try:
            t = client.get_transfer(name)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    _show_transfer(t)


@transfer_app.command("list")
def transfer_list(
    region: RegionOpt = "310000",
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
    source: Annotated[str, typer.Option(help="Only from this region.")] = "",
    destination: Annotated[str, typer.Option(help="Only to this region.")] = "",
) -> None:
    """List transfers."""
    from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

    table = Table("transfer", "from", "to", "grams", "state")
    with _client(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        token = ""
        try:
            while True:
                page = client.call(
                    client.transfers.ListTransfers,
                    transfer_service_pb2.ListTransfersRequest(
                        source_region=source,
                        destination_region=destination,
                        page_size=500,
                        page_token=token,
                    ),
                )
                for t in page.transfers:
                    state = transfer_pb2.TransferState.Name(t.state).removeprefix("TRANSFER_STATE_")
                    table.add_row(
                        t.name,
                        t.source_region,
                        t.destination_region,
                        f"{t.quantity_grams:,}",
                        state,
                    )
                token = page.next_page_token
                if not token:
                    break
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    console.print(table)


@ledger_app.command("holdings")
def ledger_holdings(
    region: RegionOpt,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """The blocks a region holds, with totals per origin and state."""
    from yrd.interop.v1 import records_pb2

    with _client(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        try:
            blocks = client.holdings(region)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    table = Table("origin", "project", "vintage", "serials", "grams", "state")
    totals: dict[tuple[str, str], int] = {}
    for b in blocks:
        state = records_pb2.UnitBlockState.Name(b.state).removeprefix("UNIT_BLOCK_STATE_").lower()
        size = b.serials.end - b.serials.start + 1
        totals[(b.origin_region, state)] = totals.get((b.origin_region, state), 0) + size
        table.add_row(
            b.origin_region,
            b.project,
            str(b.vintage),
            f"{b.serials.start}..{b.serials.end}",
            f"{size:,}",
            state,
        )
    console.print(table)
    for (origin, state), grams in sorted(totals.items()):
        console.print(f"{region} holds {grams:,} g from {origin}, {state}")


@ledger_app.command("check")
def ledger_check(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: the configuration's).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check the ledger's invariants on the database; exits 2 and lists the problems if any fail."""
    from gateway.services.ledger import check_invariants

    settings = load_settings(config, **({"database_url": database_url} if database_url else {}))
    db = Database.from_url(settings.database_url)
    try:
        report = check_invariants(db)
    finally:
        db.dispose()
    if not report.ok:
        for problem in report.problems:
            err_console.print(f"  {problem}", highlight=False)
        raise _fail(f"{len(report.problems)} invariant violation(s)", 2)
    console.print("ledger invariants hold")


# -- mutual recognition -------------------------------------------------------------------------

recognition_app = typer.Typer(
    help="Mutual recognition of methodologies and projects.", no_args_is_help=True
)
app.add_typer(recognition_app, name="recognition")


@contextmanager
def _signing_client(
    gateway: str, cert_dir: Path, region: str, role: Role, name: str | None
) -> Iterator[GatewayClient]:
    """A client whose signer (registry or administrator key) continues its saved chain."""
    from gateway.client.signer_state import load_state, save_state

    with _client(gateway, cert_dir, region, role, name) as client:
        try:
            if not load_state(client.files, client.signer):
                client.sync_signer()
            yield client
        except (DomainError, TransportError) as exc:
            raise _fail(f"{getattr(exc, 'reason', '')} {exc}".strip()) from exc
        finally:
            save_state(client.files, client.signer)


def _show_recognition(rec: Any) -> None:
    from yrd.interop.v1 import recognition_pb2

    state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
    console.print(
        f"[bold]{rec.name}[/bold]  {rec.subject}: {rec.requesting_region} → "
        f"{rec.recognising_region}  {state}  approvals {sum(d.verdict == 1 for d in rec.decisions)}"
        f"/{rec.required_approvals}",
        highlight=False,
    )
    a = rec.assessment
    if a.parameters:
        table = Table(
            "parameter",
            "subject (filed)",
            "counterpart (filed)",
            "normalised",
            "differs",
            title=f"equivalence with {a.counterpart or '(no counterpart)'}",
        )
        for p in a.parameters:
            table.add_row(
                p.code,
                f"{p.subject.value} {p.subject.unit}" if p.HasField("subject") else "—",
                f"{p.counterpart.value} {p.counterpart.unit}" if p.HasField("counterpart") else "—",
                f"{p.subject_normalised or '—'} vs {p.counterpart_normalised or '—'} "
                f"{p.normalised_unit}",
                "[red]yes[/red]" if p.differs else "no",
            )
        console.print(table)
    if a.HasField("suggested_ratio"):
        console.print(
            f"suggested ETS ratio {a.suggested_ratio.numerator}/{a.suggested_ratio.denominator}"
        )
    if a.summary:
        console.print(a.summary, highlight=False)
    c = rec.conditions
    if c.HasField("ets_adjustment_ratio"):
        console.print(
            f"ETS ratio in force: {c.ets_adjustment_ratio.numerator}/"
            f"{c.ets_adjustment_ratio.denominator}"
        )
    for d in rec.decisions:
        verdict = "approved" if d.verdict == 1 else "rejected"
        console.print(f"  {d.region}/{d.admin} {verdict}: {d.comment}", highlight=False)


@recognition_app.command("request")
def recognition_request(
    subject: Annotated[
        str, typer.Argument(help="regions/R/methodologies/ID or regions/R/projects/ID")
    ],
    region: RegionOpt,
    version: Annotated[str, typer.Option(help="Methodology version.")] = "",
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Recognising regions (all others when omitted)."),
    ] = None,
    name: NameOpt = None,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Ask other regions to recognise your methodology version or project (as the registry, or
    as an administrator with --name)."""
    role = Role.ADMIN if name else Role.REGISTRY
    with _signing_client(gateway, cert_dir, region, role, name) as client:
        made = client.request_recognition(subject, version=version, regions=to or ())
    for rec in made:
        _show_recognition(rec)


def _decide(
    kind: str, recognition: str, region: str, name: str, text: str, gateway: str, cert_dir: Path
) -> None:
    with _signing_client(gateway, cert_dir, region, Role.ADMIN, name) as client:
        if kind == "approve":
            rec = client.approve_recognition(recognition, text)
        elif kind == "reject":
            rec = client.reject_recognition(recognition, text)
        else:
            rec = client.revoke_recognition(recognition, text)
    _show_recognition(rec)


@recognition_app.command("approve")
def recognition_approve(
    recognition: str,
    region: RegionOpt,
    name: Annotated[str, typer.Option("--name", help="Administrator name.")],
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Approve a recognition your region was asked for (signed with your key)."""
    _decide("approve", recognition, region, name, comment, gateway, cert_dir)


@recognition_app.command("reject")
def recognition_reject(
    recognition: str,
    region: RegionOpt,
    name: Annotated[str, typer.Option("--name", help="Administrator name.")],
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Reject a recognition your region was asked for."""
    _decide("reject", recognition, region, name, comment, gateway, cert_dir)


@recognition_app.command("revoke")
def recognition_revoke(
    recognition: str,
    region: RegionOpt,
    name: Annotated[str, typer.Option("--name", help="Administrator name.")],
    reason: Annotated[str, typer.Option(help="Reason (required).")],
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Revoke a recognition in force: pending transfers relying on it fail at accept."""
    _decide("revoke", recognition, region, name, reason, gateway, cert_dir)


@recognition_app.command("show")
def recognition_show(
    recognition: str,
    region: RegionOpt = "310000",
    name: NameOpt = None,
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """Show a recognition with its assessment side by side."""
    with _client(gateway, cert_dir, region, Role.ADMIN if name else Role.REGISTRY, name) as client:
        try:
            rec = client.get_recognition(recognition)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    _show_recognition(rec)


@recognition_app.command("units")
def recognition_units(
    recognition: str,
    config: ConfigOpt = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL.")] = None,
) -> None:
    """Report the units the recognising region holds under a recognition (e.g. after it was
    revoked: completed transfers stand, and this lists what they brought in)."""
    from gateway.services.recognition import RecognitionService

    settings = load_settings(config, **({"database_url": database_url} if database_url else {}))
    db = Database.from_url(settings.database_url)
    try:
        rec, blocks = RecognitionService(db).held_under(recognition)
    except DomainError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()
    table = Table(
        "origin",
        "project",
        "vintage",
        "serials",
        "grams",
        "state",
        title=f"{rec.recognising_region} holds under {rec.name} ({rec.state.value})",
    )
    total = 0
    for b in blocks:
        size = b.serial_end - b.serial_start + 1
        total += size
        table.add_row(
            b.origin_region,
            b.project_name,
            str(b.vintage),
            f"{b.serial_start}..{b.serial_end}",
            f"{size:,}",
            b.state,
        )
    console.print(table)
    console.print(f"{len(blocks)} block(s), {total:,} g")


@recognition_app.command("list")
def recognition_list(
    region: RegionOpt = "310000",
    name: NameOpt = None,
    recognising: Annotated[str, typer.Option(help="Only recognitions by this region.")] = "",
    gateway: GatewayOpt = "127.0.0.1:50051",
    cert_dir: CertDirOpt = Path("certs/dev"),
) -> None:
    """List recognitions."""
    from yrd.interop.v1 import recognition_pb2

    with _client(gateway, cert_dir, region, Role.ADMIN if name else Role.REGISTRY, name) as client:
        try:
            found = client.list_recognitions(recognising=recognising)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    table = Table("recognition", "subject", "by", "state", "approvals")
    for rec in found:
        state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
        approvals = sum(d.verdict == recognition_pb2.VERDICT_APPROVE for d in rec.decisions)
        table.add_row(
            rec.name,
            rec.subject,
            rec.recognising_region,
            state,
            f"{approvals}/{rec.required_approvals}",
        )
    console.print(table)


# Operator commands on the gateway host (gateway.cli_ops): reconciliation, scheduler, expiry.
def _register_operator_commands() -> None:
    from gateway.cli_ops import reconcile_app, scheduler_command, transfer_expire

    app.add_typer(reconcile_app, name="reconcile")
    app.command("scheduler")(scheduler_command)
    transfer_app.command("expire")(transfer_expire)


_register_operator_commands()
