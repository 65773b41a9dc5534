"""``yrdgw context``: named sets of who-calls-which-gateway, kept in a small TOML file.

The file is ``$YRDGW_CONTEXTS``, else ``$XDG_CONFIG_HOME/yrdgw/contexts.toml`` (``~/.config/…``).
A command that calls the gateway takes each of gateway, cert_dir, region and admin from its flag,
else its ``YRDGW_*`` variable, else the current context (``YRDGW_CONTEXT`` names another), else
the defaults; the region is inferred when the certificate directory holds one identity only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    gateway_target,
)
from gateway.cli.output import Format, OutputOpt, console, show
from gateway.security.identity import Role

app = typer.Typer(
    help="Named contexts: which gateway you call, as whom (kubectl-style).", no_args_is_help=True
)
KEYS = ("gateway", "cert_dir", "region", "admin")


def contexts_file() -> Path:
    """Where the contexts are kept."""
    if os.environ.get("YRDGW_CONTEXTS"):
        return Path(os.environ["YRDGW_CONTEXTS"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "yrdgw" / "contexts.toml"


def load() -> dict[str, Any]:
    """The contexts file as {"current": name, "contexts": {name: {key: value}}}."""
    import tomllib

    path = contexts_file()
    if not path.exists():
        return {"current": "", "contexts": {}}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(
            f"{path}: TOML syntax error: {exc}", "fix or delete the contexts file"
        ) from exc
    doc.setdefault("current", "")
    doc.setdefault("contexts", {})
    return doc


def save(doc: dict[str, Any]) -> None:
    path = contexts_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON strings are valid TOML basic strings for the values kept here.
    lines = [f"current = {json.dumps(doc.get('current', ''))}", ""]
    for name, values in sorted(doc["contexts"].items()):
        lines.append(f"[contexts.{json.dumps(name)}]")
        lines += [f"{k} = {json.dumps(str(v))}" for k, v in values.items() if v not in ("", None)]
        lines.append("")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)


def current() -> tuple[str, dict[str, str]]:
    """The current context's name and values (empty when there is none)."""
    doc = load()
    name = os.environ.get("YRDGW_CONTEXT") or doc.get("current", "")
    if not name:
        return "", {}
    if name not in doc["contexts"]:
        raise UserError(
            f"no context named {name!r} in {contexts_file()}",
            "list them with `yrdgw context list`",
            ExitCode.USAGE,
        )
    return name, {k: str(v) for k, v in doc["contexts"][name].items()}


@dataclass(frozen=True)
class Caller:
    """Who calls which gateway: resolved from flags, environment, context and the cert dir."""

    gateway: str
    cert_dir: Path
    region: str
    role: Role
    admin: str | None


def resolve(
    gateway: str | None,
    cert_dir: Path | None,
    region: str | None,
    role: Role | None = None,
    admin: str | None = None,
) -> Caller:
    """The caller, from the flags (or their variables), the current context, the defaults."""
    _, ctx = current()
    target = gateway_target(gateway or ctx.get("gateway") or DEFAULT_GATEWAY)
    directory = cert_dir or Path(ctx.get("cert_dir") or DEFAULT_PKI)
    who = admin or ctx.get("admin") or None
    if role is Role.REGISTRY:
        who = None
    chosen = role or (Role.ADMIN if who else Role.REGISTRY)
    code = region or ctx.get("region") or infer_region(directory, chosen, who)
    return Caller(target, directory, code, chosen, who)


def identities(directory: Path) -> list[tuple[str, str | None]]:
    """The (region, administrator or None) of each identity whose certificate is in DIRECTORY."""
    found: list[tuple[str, str | None]] = []
    for cert in sorted(directory.glob("regions/*/registry/cert.pem")):
        found.append((cert.parent.parent.name, None))
    for cert in sorted(directory.glob("regions/*/admin/*/cert.pem")):
        found.append((cert.parent.parent.parent.name, cert.parent.name))
    return found


def infer_region(directory: Path, role: Role, admin: str | None) -> str:
    """The region of the one identity of ROLE in DIRECTORY (a usage error when not one)."""
    if not directory.is_dir():
        raise UserError(
            f"no certificate directory {directory}",
            "pass --cert-dir DIR (or set YRDGW_CERT_DIR, or `yrdgw context set`)",
        )
    mine = [
        (r, n)
        for r, n in identities(directory)
        if (role is Role.ADMIN) == (n is not None) and (admin is None or n == admin)
    ]
    regions = sorted({r for r, _ in mine})
    if len(regions) == 1:
        return regions[0]
    raise UserError(
        f"which region are you? {directory} holds {len(mine)} {role.value} identities"
        + (f" ({', '.join(regions[:6])}{'…' if len(regions) > 6 else ''})" if regions else ""),
        "pass --region CODE (or set YRDGW_REGION, or `yrdgw context set NAME --region CODE`)",
        ExitCode.USAGE,
    )


@app.command("set")
def context_set(
    name: Annotated[str, typer.Argument(help="Context name, e.g. ah-registry.")],
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    region: RegionOpt = None,
    admin: NameOpt = None,
    use: Annotated[bool, typer.Option("--use", help="Make it the current context.")] = False,
) -> None:
    """Create or update a context (only the values given change)."""
    doc = load()
    values = doc["contexts"].setdefault(name, {})
    given = {"gateway": gateway, "cert_dir": cert_dir, "region": region, "admin": admin}
    for key, value in given.items():
        if value is not None:
            values[key] = str(value.resolve() if isinstance(value, Path) else value)
    if use or not doc.get("current"):
        doc["current"] = name
    save(doc)
    console.print(f"context {name} saved in {contexts_file()}", highlight=False)


@app.command("use")
def context_use(name: Annotated[str, typer.Argument(help="Context name.")]) -> None:
    """Make NAME the current context."""
    doc = load()
    if name not in doc["contexts"]:
        raise UserError(
            f"no context named {name!r} in {contexts_file()}",
            f"create it with `yrdgw context set {name} --gateway HOST:PORT --region CODE`",
        )
    doc["current"] = name
    save(doc)
    console.print(f"now using context {name}", highlight=False)


@app.command("list")
def context_list(output: OutputOpt = Format.TABLE) -> None:
    """The contexts (the current one marked *)."""
    from gateway.cli.output import Col

    doc = load()
    here = os.environ.get("YRDGW_CONTEXT") or doc.get("current", "")
    rows = [
        {"name": n, "current": n == here, **{k: v.get(k, "") for k in KEYS}}
        for n, v in sorted(doc["contexts"].items())
    ]
    show(
        rows,
        output,
        cols=[
            Col("", lambda r: "*" if r["current"] else ""),
            Col("name", lambda r: r["name"], ident=True),
            Col("gateway", lambda r: r["gateway"], ident=True),
            Col("region", lambda r: r["region"]),
            Col("admin", lambda r: r["admin"]),
            Col("cert dir", lambda r: r["cert_dir"], optional=True),
        ],
    )
