"""``yrdgw status``: is every region in sync, and what is stuck (StatusService)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from gateway.cli import remote
from gateway.cli.options import (
    AdminNameOpt,
    CertDirOpt,
    GatewayOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import Format, OutputOpt, console, dumps, table

if TYPE_CHECKING:
    from rich.table import Table


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _pending(p: dict[str, Any]) -> str:
    return f"{p['count']} (oldest {_age(p['oldest_age_seconds'])})" if p["count"] else "0"


def _row(r: dict[str, Any], as_of: str) -> list[str]:
    last, sub = r["last_record"], r["subscriber"]
    snap, rec = r["last_snapshot"], r["last_reconciliation"]
    certs = r["certificates"]
    soonest = min((c["days_left"] for c in certs), default=None)
    refused = sum(r["refusals_last_hour"].values())
    return [
        r["region"],
        f"#{last['cursor']} {last['accept_time']}" if last else "-",
        f"#{sub['cursor'] or 0}" if sub else "never",
        f"{sub['lag_records']} / {_age(sub['lag_seconds'])}" if sub else "-",
        _pending(r["pending_out"]),
        _pending(r["pending_in"]),
        snap["receive_time"] if snap else "-",
        f"{rec['status']} ({rec['discrepancy_count']})" if rec else "-",
        str(len(r["signing_keys"])),
        f"{soonest}d" if soonest is not None else "-",
        ", ".join(f"{k} {n}" for k, n in r["refusals_last_hour"].items()) if refused else "0",
        _duplicates(r, as_of),
    ]


def _duplicates(r: dict[str, Any], as_of: str) -> str:
    """Open duplicate cases (with the oldest's age) and grams held, or "0"."""
    import datetime as dt

    cases, held = r.get("open_duplicate_cases", 0), r.get("held_grams", 0)
    if not cases and not held:
        return "0"
    shown = f"{cases}"
    oldest = r.get("oldest_open_case_time")
    if oldest:
        age = dt.datetime.fromisoformat(as_of) - dt.datetime.fromisoformat(oldest)
        shown += f" (oldest {_age(max(0, int(age.total_seconds())))})"
    return f"{shown}, {held:,} g held"


def status_table(doc: dict[str, Any]) -> Table:
    """The status's one row per region."""
    out = table(
        "region",
        "last record",
        "subscriber at",
        "lag (records / time)",
        "pending out",
        "pending in",
        "last snapshot",
        "last reconciliation",
        "keys",
        "cert expires in",
        "refused (1 h)",
        "duplicate cases open, held",
        title=f"federation status at {doc['as_of']}, feed head #{doc['feed_head_cursor'] or 0}",
    )
    for r in doc["regions"]:
        out.add_row(*_row(r, doc["as_of"]))
    return out


def status(
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    name: AdminNameOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Per region: last record published, the feed position its registry reads at and the lag
    behind the head, pending transfers, last snapshot and reconciliation, keys, certificate
    expiry, refusals of the last hour, open duplicate cases and grams held. Administrators and
    the gateway may ask."""
    from gateway.client.status import federation_status_dict

    with remote.connect(gateway, cert_dir, region, role, name) as client:
        doc = federation_status_dict(client.federation_status())
    if output is Format.NAME:
        for r in doc["regions"]:
            typer.echo(r["region"])
        return
    if output is not Format.TABLE:
        typer.echo(dumps(doc, output), nl=False)
        return
    console.print(status_table(doc))
    expiring = [
        (c["identity"], c["days_left"])
        for part in (doc["certificates"], *(r["certificates"] for r in doc["regions"]))
        for c in part
        if c["days_left"] < 30
    ]
    for identity, days in expiring:
        console.print(f"[yellow]certificate of {identity} expires in {days} days[/yellow]")
