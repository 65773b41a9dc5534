"""``yrdgw ledger``: the unit ledger (a region's holdings; the invariants on the database)."""

from __future__ import annotations

from typing import Any

import typer

from gateway.cli import host, remote
from gateway.cli.errors import ExitCode
from gateway.cli.options import CertDirOpt, ConfigOpt, DatabaseOpt, GatewayOpt, RegionOpt
from gateway.cli.output import Col, Format, OutputOpt, console, dumps, err_console, fail, show

app = typer.Typer(help="The unit ledger.", no_args_is_help=True)


@app.command("holdings")
def ledger_holdings(
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """The blocks your region holds, with totals per origin and state (-o name: block names)."""
    from yrd.interop.v1 import records_pb2

    with remote.connect(gateway, cert_dir, region) as client:
        me = client.region
        blocks = client.holdings(me)

    def state(b: Any) -> str:
        return str(
            records_pb2.UnitBlockState.Name(b.state).removeprefix("UNIT_BLOCK_STATE_").lower()
        )

    show(
        blocks,
        output,
        cols=[
            Col("block", lambda b: b.name, ident=True, optional=True),
            Col("origin", lambda b: b.origin_region),
            Col("project", lambda b: b.project, ident=True),
            Col("vintage", lambda b: str(b.vintage)),
            Col("serials", lambda b: f"{b.serials.start}..{b.serials.end}", ident=True),
            Col("grams", lambda b: f"{b.serials.end - b.serials.start + 1:,}"),
            Col("state", state),
        ],
    )
    if output is not Format.TABLE:
        return
    totals: dict[tuple[str, str], int] = {}
    for b in blocks:
        key = (b.origin_region, state(b))
        totals[key] = totals.get(key, 0) + b.serials.end - b.serials.start + 1
    for (origin, st), grams in sorted(totals.items()):
        console.print(f"{me} holds {grams:,} g from {origin}, {st}", highlight=False)


@app.command("check")
def ledger_check(
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Check the ledger's invariants on the database (read-only); exits 3 and lists the
    problems if any fail."""
    from gateway.services.ledger import check_invariants

    with host.database(host.settings(config, database_url).database_url, read_only=True) as db:
        report = check_invariants(db)
    if output is not Format.TABLE:
        doc = {"ok": report.ok, "problems": [str(p) for p in report.problems]}
        typer.echo(dumps(doc, Format.YAML if output is Format.YAML else Format.JSON), nl=False)
    if not report.ok:
        for problem in report.problems:
            err_console.print(f"  {problem}", highlight=False, markup=False)
        raise fail(f"{len(report.problems)} invariant violation(s)", ExitCode.FINDINGS)
    if output is Format.TABLE:
        console.print("ledger invariants hold")
