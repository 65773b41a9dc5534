"""``yrdgw transfer``: two-phase cross-region transfers and retirements, signed with the
region's registry key; ``transfer expire`` runs the expiry job on the gateway's host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import host, remote, retirements
from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    CertDirOpt,
    ConfigOpt,
    DatabaseOpt,
    GatewayOpt,
    RegionOpt,
    region_code,
)
from gateway.cli.output import (
    Col,
    Format,
    OutputOpt,
    console,
    fail,
    proto_time,
    show,
    table,
    zone_name,
)
from gateway.cli.retirements import PURPOSES, Purpose

app = typer.Typer(help="Two-phase cross-region transfers and retirements.", no_args_is_help=True)
app.add_typer(retirements.app, name="retirements")


def parse_ranges(ranges: list[str]) -> list[tuple[int, int]]:
    """``START-END`` texts (grams) as (start, end); a malformed one is a usage error (exit 2)."""
    out = []
    for text in ranges:
        start, sep, end = text.partition("-")
        if not sep or not start.isdigit() or not end.isdigit():
            raise UserError(
                f"--range takes START-END in grams, got {text!r}",
                "e.g. --range 1-1000000 (serials are whole grams, start ≤ end)",
                ExitCode.USAGE,
            )
        out.append((int(start), int(end)))
    return out


def _state(t: Any) -> str:
    from yrd.interop.v1 import transfer_pb2

    return str(transfer_pb2.TransferState.Name(t.state).removeprefix("TRANSFER_STATE_"))


def _blocks(t: Any) -> str:
    return "\n".join(f"{b.origin_region} {b.serials.start}..{b.serials.end}" for b in t.blocks)


TRANSFER_COLS = [
    Col("transfer", lambda t: t.name, ident=True),
    Col("from", lambda t: t.source_region),
    Col("to", lambda t: t.destination_region),
    Col("grams", lambda t: f"{t.quantity_grams:,}"),
    Col("state", _state),
    Col(f"proposed ({zone_name()})", lambda t: proto_time(t.propose_time), optional=True),
    Col("serials", _blocks, ident=True, optional=True),
]


def show_transfer(t: Any, output: Format = Format.TABLE) -> None:
    """A transfer: its fields and blocks as a table (or as OUTPUT says)."""

    def human() -> None:
        shown = table("field", "value", title=t.name)
        shown.add_row("state", _state(t))
        shown.add_row("from → to", f"{t.source_region} → {t.destination_region}")
        shown.add_row("grams", f"{t.quantity_grams:,}")
        shown.add_row(f"proposed ({zone_name()})", proto_time(t.propose_time))
        shown.add_row(f"expires ({zone_name()})", proto_time(t.expire_time))
        if t.HasField("resolve_time"):
            shown.add_row(f"resolved ({zone_name()})", proto_time(t.resolve_time))
        for r in t.reasons:
            shown.add_row("reason", f"{r.reason}: {r.message}")
        for b in t.blocks:
            shown.add_row(
                "block", f"{b.origin_region} {b.serials.start}..{b.serials.end} {b.project}"
            )
        console.print(shown)

    show(t, output, human=human)


@app.command("propose")
def transfer_propose(
    transfer_id: Annotated[str, typer.Argument(help="Your id for it (the idempotency key).")],
    to: Annotated[str, typer.Option("--to", callback=region_code, help="Destination region.")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    origin: Annotated[
        str, typer.Option(callback=region_code, help="Origin region of the serial ranges.")
    ] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    project: Annotated[str, typer.Option(help="Project resource name, to take a quantity.")] = "",
    vintage: Annotated[int, typer.Option(help="Vintage, with --project.")] = 0,
    grams: Annotated[int, typer.Option(help="Quantity in grams, with --project.")] = 0,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Propose moving serial ranges (or a quantity of a project's vintage) to another region."""
    from gateway.cli.context import resolve
    from gateway.contract import transfer_name

    ranges = parse_ranges(serial_range or [])
    me = resolve(gateway, cert_dir, region).region
    check = f"`yrdgw transfer show {transfer_name(me, transfer_id)}`"
    with remote.signing(gateway, cert_dir, me, check=check) as client:
        t = client.propose_transfer(
            transfer_id,
            to,
            origin=origin or me,
            ranges=ranges,
            project=project,
            vintage=vintage,
            quantity_grams=grams,
        )
    show_transfer(t, output)


def _answer(
    kind: str,
    name: str,
    region: str | None,
    gateway: str | None,
    cert_dir: Path | None,
    reason: str,
    output: Format,
) -> None:
    with remote.signing(gateway, cert_dir, region, check=f"`yrdgw transfer show {name}`") as client:
        if kind == "accept":
            t = client.accept_transfer(name)
        elif kind == "reject":
            t = client.reject_transfer(name, reason)
        else:
            t = client.cancel_transfer(name, reason)
    show_transfer(t, output)


NameArg = Annotated[str, typer.Argument(help="regions/SOURCE/transfers/ID")]


@app.command("accept")
def transfer_accept(
    name: NameArg,
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Accept a transfer proposed to your region: its units move to you."""
    _answer("accept", name, region, gateway, cert_dir, "", output)


@app.command("reject")
def transfer_reject(
    name: NameArg,
    reason: Annotated[str, typer.Option(help="Why.")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Reject a transfer proposed to your region: its units are released."""
    _answer("reject", name, region, gateway, cert_dir, reason, output)


@app.command("cancel")
def transfer_cancel(
    name: NameArg,
    reason: Annotated[str, typer.Option(help="Why.")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Cancel your own pending proposal."""
    _answer("cancel", name, region, gateway, cert_dir, reason, output)


@app.command("retire")
def transfer_retire(
    retirement_id: Annotated[str, typer.Argument(help="Your id for it (the idempotency key).")],
    purpose: Annotated[Purpose, typer.Option(help="Why the units are retired.")],
    beneficiary: Annotated[str, typer.Option(help="Beneficiary (the compliance entity for ETS).")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    origin: Annotated[
        str, typer.Option(callback=region_code, help="Origin region of the serial ranges.")
    ] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    compliance_year: Annotated[int, typer.Option(help="ETS compliance year.")] = 0,
    obligation_grams: Annotated[int, typer.Option(help="Entity's declared obligation, grams.")] = 0,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Retire units your region holds, for good."""
    from gateway.cli.context import resolve
    from gateway.contract import retirement_name

    ranges = parse_ranges(serial_range or [])
    me = resolve(gateway, cert_dir, region).region
    check = f"`yrdgw transfer retirements show {retirement_name(me, retirement_id)}`"
    with remote.signing(gateway, cert_dir, me, check=check) as client:
        r = client.retire(
            retirement_id,
            PURPOSES[purpose.value],  # type: ignore[arg-type]
            beneficiary,
            origin=origin or me,
            ranges=ranges,
            compliance_year=compliance_year,
            declared_obligation_grams=obligation_grams,
        )
    show(
        r,
        output,
        human=lambda: console.print(
            f"retired {r.quantity_grams:,} g as {r.name}; credited {r.credited_grams:,} g "
            f"(ratio {r.ratio_numerator}/{r.ratio_denominator})",
            highlight=False,
        ),
    )


@app.command("show")
def transfer_show(
    name: NameArg,
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Show one transfer."""
    with remote.connect(gateway, cert_dir, region) as client:
        t = client.get_transfer(name)
    show_transfer(t, output)


@app.command("list")
def transfer_list(
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    source: Annotated[str, typer.Option(callback=region_code, help="Only from this region.")] = "",
    destination: Annotated[
        str, typer.Option(callback=region_code, help="Only to this region.")
    ] = "",
    output: OutputOpt = Format.TABLE,
) -> None:
    """List transfers."""
    from yrd.interop.v1 import transfer_service_pb2

    found = []
    with remote.connect(gateway, cert_dir, region) as client:
        token = ""
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
            found += list(page.transfers)
            token = page.next_page_token
            if not token:
                break
    show(found, output, cols=TRANSFER_COLS)


@app.command("expire")
def transfer_expire(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the expiry job once: proposals past their deadline are expired, their units released."""
    import datetime as dt

    from gateway.scheduler import EXPIRE, run_once

    with host.services(host.quiet_settings(config, database_url)) as services:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        result = run_once(services.jobs, EXPIRE, now, f"cli/{host.operator()}")
    if result is None:
        raise fail("the expiry job is running in another process right now; try again")
    outcome, detail = result
    console.print(detail, highlight=False, markup=False)
    if outcome != "ok":
        raise typer.Exit(ExitCode.ERROR)
