"""The options several commands share, with their names and help texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.security.identity import Role

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: configuration).")
]
DirOpt = Annotated[Path, typer.Option("--dir", help="PKI directory.")]
CertDirOpt = Annotated[Path, typer.Option("--cert-dir", help="PKI directory.")]
GatewayOpt = Annotated[str, typer.Option("--gateway", help="Gateway host:port.")]
RegionOpt = Annotated[str, typer.Option("--region", help="Region code, e.g. 310000.")]
RoleOpt = Annotated[Role, typer.Option("--role", help="registry, admin or gateway.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Administrator name.")]
AdminNameOpt = Annotated[str, typer.Option("--name", help="Administrator name.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="File to write (default stdout).")]

DEFAULT_GATEWAY = "127.0.0.1:50051"
DEFAULT_PKI = Path("certs/dev")
