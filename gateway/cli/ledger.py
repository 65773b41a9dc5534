"""``yrdgw ledger``: the unit ledger (a region's holdings; the invariants on the database)."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import host, remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    ConfigOpt,
    GatewayOpt,
    RegionOpt,
)
from gateway.cli.output import console, err_console, fail, table
from gateway.security.identity import Role

app = typer.Typer(help="The unit ledger.", no_args_is_help=True)


@app.command("holdings")
def ledger_holdings(
    region: RegionOpt,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """The blocks a region holds, with totals per origin and state."""
    from yrd.interop.v1 import records_pb2

    with remote.connect(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        blocks = client.holdings(region)
    shown = table("origin", "project", "vintage", "serials", "grams", "state")
    totals: dict[tuple[str, str], int] = {}
    for b in blocks:
        state = records_pb2.UnitBlockState.Name(b.state).removeprefix("UNIT_BLOCK_STATE_").lower()
        size = b.serials.end - b.serials.start + 1
        totals[(b.origin_region, state)] = totals.get((b.origin_region, state), 0) + size
        shown.add_row(
            b.origin_region,
            b.project,
            str(b.vintage),
            f"{b.serials.start}..{b.serials.end}",
            f"{size:,}",
            state,
        )
    console.print(shown)
    for (origin, state), grams in sorted(totals.items()):
        console.print(f"{region} holds {grams:,} g from {origin}, {state}")


@app.command("check")
def ledger_check(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: the configuration's).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check the ledger's invariants on the database; exits 2 and lists the problems if any fail."""
    from gateway.services.ledger import check_invariants

    with host.database(host.settings(config, database_url).database_url) as db:
        report = check_invariants(db)
    if not report.ok:
        for problem in report.problems:
            err_console.print(f"  {problem}", highlight=False)
        raise fail(f"{len(report.problems)} invariant violation(s)", 2)
    console.print("ledger invariants hold")
