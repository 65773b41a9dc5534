"""The options several commands share, with their names, environment variables and help texts.

Who calls the gateway (``--gateway``, ``--cert-dir``, ``--region``, ``--admin``) comes from the
flag, else its ``YRDGW_*`` variable, else the current context (``yrdgw context``), else the
defaults below; ``--region`` is always the caller's own region (see ``gateway.cli.context``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from gateway.security.identity import Role

DEFAULT_PORT = 50051
DEFAULT_GATEWAY = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_PKI = Path("certs/dev")
_REGION = re.compile(r"^\d{6}$")


def region_code(value: str | None) -> str | None:
    """A six-digit GB/T 2260 region code (a usage error otherwise)."""
    if value is not None and value != "" and not _REGION.match(value):
        raise typer.BadParameter(
            f"a region is a six-digit GB/T 2260 code (e.g. 310000), not {value!r}"
        )
    return value


def region_codes(values: list[str] | None) -> list[str] | None:
    """Each a six-digit region code (a usage error otherwise)."""
    for value in values or []:
        region_code(value)
    return values


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="YRDGW_CONFIG",
        show_envvar=True,
        help="TOML configuration file (see docs/gateway.example.toml).",
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="YRDGW_DATABASE_URL",
        show_envvar=True,
        help="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "(default: the configuration's).",
    ),
]
DirOpt = Annotated[Path, typer.Option("--dir", help="PKI directory.")]
CertDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cert-dir",
        envvar="YRDGW_CERT_DIR",
        show_envvar=True,
        help="PKI directory holding your certificate "
        f"(default: the context's, else {DEFAULT_PKI}).",
    ),
]
GatewayOpt = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        envvar="YRDGW_GATEWAY",
        show_envvar=True,
        help=f"Gateway HOST[:PORT], port {DEFAULT_PORT} when left out (default: the context's, "
        f"else {DEFAULT_GATEWAY}).",
    ),
]


def complete_region(incomplete: str) -> list[str]:
    """Shell completion of --region: the regions with a certificate in the PKI directory."""
    import os

    root = Path(os.environ.get("YRDGW_CERT_DIR") or DEFAULT_PKI) / "regions"
    found = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    return [r for r in found if r.startswith(incomplete)]


RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        envvar="YRDGW_REGION",
        show_envvar=True,
        callback=region_code,
        autocompletion=complete_region,
        help="Your own region, six digits (default: the context's, else that of the only identity "
        "in --cert-dir).",
    ),
]
SubjectRegionOpt = Annotated[
    str,
    typer.Option("--region", callback=region_code, help="Region of the certificate's subject."),
]
RoleOpt = Annotated[
    Role | None,
    typer.Option("--role", help="Who you are (default: admin with --admin, else registry)."),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--admin",
        "--name",
        envvar="YRDGW_ADMIN",
        show_envvar=True,
        help="Act as this administrator of your region (e.g. admin-a).",
    ),
]
AdminNameOpt = NameOpt
SubjectNameOpt = Annotated[str | None, typer.Option("--name", help="Administrator name.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="File to write (default stdout).")]
OfRegionOpt = Annotated[
    str, typer.Option("--of-region", callback=region_code, help="Only this region's.")
]


def gateway_target(value: str) -> str:
    """HOST[:PORT] with the default port when none is given (gRPC's own default would be 443)."""
    if value.startswith("[") and "]:" not in value:  # [::1]
        return f"{value}:{DEFAULT_PORT}"
    if value.count(":") == 1 or value.startswith(("unix:", "dns:", "ipv4:", "ipv6:", "[")):
        return value
    if value.count(":") > 1:  # a bare IPv6 address
        return f"[{value}]:{DEFAULT_PORT}"
    return f"{value}:{DEFAULT_PORT}"
