"""``yrdgw transfer``: two-phase cross-region transfers and retirements, signed with the
region's registry key; ``transfer expire`` runs the expiry job on the gateway's host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import host, remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    CertDirOpt,
    ConfigOpt,
    DatabaseOpt,
    GatewayOpt,
    RegionOpt,
)
from gateway.cli.output import console, fail, table
from gateway.security.identity import Role

app = typer.Typer(help="Two-phase cross-region transfers and retirements.", no_args_is_help=True)

PURPOSES = {
    "transfer": 1,
    "ets-offset": 2,
    "voluntary-neutrality": 3,
    "charitable": 4,
}


def parse_ranges(ranges: list[str]) -> list[tuple[int, int]]:
    """``START-END`` texts (grams) as (start, end); a malformed one exits 1."""
    out = []
    for text in ranges:
        start, sep, end = text.partition("-")
        if not sep or not start.isdigit() or not end.isdigit():
            raise fail(f"--range takes START-END in grams, got {text!r}")
        out.append((int(start), int(end)))
    return out


def show_transfer(t: Any) -> None:
    """A transfer's fields and blocks as a table."""
    from google.protobuf import json_format

    state = json_format.MessageToDict(t, preserving_proto_field_name=True)
    blocks = state.pop("blocks", [])
    shown = table("field", "value", title=t.name)
    for key, value in state.items():
        shown.add_row(key, str(value))
    for b in blocks:
        serials = b["serials"]
        shown.add_row(
            "block", f"{b['origin_region']} {serials['start']}..{serials['end']} {b['state']}"
        )
    console.print(shown)


@app.command("propose")
def transfer_propose(
    transfer_id: str,
    region: RegionOpt,
    to: Annotated[str, typer.Option("--to", help="Destination region code.")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    origin: Annotated[str, typer.Option(help="Origin region of the serial ranges.")] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    project: Annotated[str, typer.Option(help="Project resource name, to take a quantity.")] = "",
    vintage: Annotated[int, typer.Option(help="Vintage, with --project.")] = 0,
    grams: Annotated[int, typer.Option(help="Quantity in grams, with --project.")] = 0,
) -> None:
    """Propose moving serial ranges (or a quantity of a project's vintage) to another region."""
    ranges = parse_ranges(serial_range or [])
    with remote.signing(gateway, cert_dir, region) as client:
        t = client.propose_transfer(
            transfer_id,
            to,
            origin=origin or region,
            ranges=ranges,
            project=project,
            vintage=vintage,
            quantity_grams=grams,
        )
    show_transfer(t)


def _answer(kind: str, name: str, region: str, gateway: str, cert_dir: Path, reason: str) -> None:
    with remote.signing(gateway, cert_dir, region) as client:
        if kind == "accept":
            t = client.accept_transfer(name)
        elif kind == "reject":
            t = client.reject_transfer(name, reason)
        else:
            t = client.cancel_transfer(name, reason)
    show_transfer(t)


@app.command("accept")
def transfer_accept(
    name: str,
    region: RegionOpt,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Accept a transfer proposed to your region: its units move to you."""
    _answer("accept", name, region, gateway, cert_dir, "")


@app.command("reject")
def transfer_reject(
    name: str,
    region: RegionOpt,
    reason: Annotated[str, typer.Option(help="Why.")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Reject a transfer proposed to your region: its units are released."""
    _answer("reject", name, region, gateway, cert_dir, reason)


@app.command("cancel")
def transfer_cancel(
    name: str,
    region: RegionOpt,
    reason: Annotated[str, typer.Option(help="Why.")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Cancel your own pending proposal."""
    _answer("cancel", name, region, gateway, cert_dir, reason)


@app.command("retire")
def transfer_retire(
    retirement_id: str,
    region: RegionOpt,
    purpose: Annotated[str, typer.Option(help="ets-offset, voluntary-neutrality or charitable.")],
    beneficiary: Annotated[str, typer.Option(help="Beneficiary (the compliance entity for ETS).")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    origin: Annotated[str, typer.Option(help="Origin region of the serial ranges.")] = "",
    serial_range: Annotated[
        list[str] | None, typer.Option("--range", help="START-END in grams (repeatable).")
    ] = None,
    compliance_year: Annotated[int, typer.Option(help="ETS compliance year.")] = 0,
    obligation_grams: Annotated[int, typer.Option(help="Entity's declared obligation, grams.")] = 0,
) -> None:
    """Retire units your region holds, for good."""
    if purpose not in PURPOSES or purpose == "transfer":
        raise fail("--purpose is ets-offset, voluntary-neutrality or charitable")
    with remote.signing(gateway, cert_dir, region) as client:
        r = client.retire(
            retirement_id,
            PURPOSES[purpose],  # type: ignore[arg-type]
            beneficiary,
            origin=origin or region,
            ranges=parse_ranges(serial_range or []),
            compliance_year=compliance_year,
            declared_obligation_grams=obligation_grams,
        )
    console.print(
        f"retired {r.quantity_grams:,} g as {r.name}; credited {r.credited_grams:,} g "
        f"(ratio {r.ratio_numerator}/{r.ratio_denominator})"
    )


@app.command("show")
def transfer_show(
    name: str,
    region: RegionOpt = "310000",
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Show one transfer."""
    with remote.connect(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        t = client.get_transfer(name)
    show_transfer(t)


@app.command("list")
def transfer_list(
    region: RegionOpt = "310000",
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    source: Annotated[str, typer.Option(help="Only from this region.")] = "",
    destination: Annotated[str, typer.Option(help="Only to this region.")] = "",
) -> None:
    """List transfers."""
    from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

    shown = table("transfer", "from", "to", "grams", "state")
    with remote.connect(gateway, cert_dir, region, Role.REGISTRY, None) as client:
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
            for t in page.transfers:
                state = transfer_pb2.TransferState.Name(t.state).removeprefix("TRANSFER_STATE_")
                shown.add_row(
                    t.name,
                    t.source_region,
                    t.destination_region,
                    f"{t.quantity_grams:,}",
                    state,
                )
            token = page.next_page_token
            if not token:
                break
    console.print(shown)


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
    console.print(detail)
    if outcome != "ok":
        raise typer.Exit(1)
