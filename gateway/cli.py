"""``yrdgw``: the command line. An entrypoint like the gRPC server: it calls the same services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
app.add_typer(pki_app, name="pki")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
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
) -> None:
    """Fetch the whole audit log, check every hash link and the gateway's signed tree head."""
    from gateway.audit_client import verify_remote_log

    with _client(gateway, cert_dir, region, role, name) as client:
        try:
            result = verify_remote_log(client)
        except (DomainError, TransportError) as exc:
            raise _fail(str(exc)) from exc
    if not result.ok:
        raise _fail(f"audit log verification FAILED: {result.problem}", 2)
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
