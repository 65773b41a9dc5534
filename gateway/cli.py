"""``yrdgw``: the command line. An entrypoint like the gRPC server: it calls the same services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.client import GatewayClient, TransportError
from gateway.config import DELTA_REGIONS, load_settings
from gateway.errors import DomainError
from gateway.logs import configure_logging
from gateway.security.identity import Role
from gateway.security.pki import DEFAULT_ADMINS, PKIDir, PKIError, init, issue, revoke
from gateway.storage.db import Database

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
        from gateway.audit_client import verify_remote_log

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
    from gateway.signer_state import load_state, save_state

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
