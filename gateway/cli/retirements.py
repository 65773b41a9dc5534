"""``yrdgw transfer retirements``: read retirements (ListRetirements, GetRetirement)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from gateway.cli import remote
from gateway.cli.options import CertDirOpt, GatewayOpt, RegionOpt, region_code
from gateway.cli.output import Col, Format, OutputOpt, console, proto_time, show, table, zone_name

app = typer.Typer(help="Retirements: list them, show one.", no_args_is_help=True)


class Purpose(StrEnum):
    """Why units are retired (TransferPurpose without TRANSFER)."""

    ETS_OFFSET = "ets-offset"
    VOLUNTARY_NEUTRALITY = "voluntary-neutrality"
    CHARITABLE = "charitable"


PURPOSES = {"transfer": 1, "ets-offset": 2, "voluntary-neutrality": 3, "charitable": 4}


def _purpose(r: Any) -> str:
    from yrd.interop.v1 import transfer_pb2

    name = transfer_pb2.TransferPurpose.Name(r.purpose).removeprefix("TRANSFER_PURPOSE_")
    return str(name).lower().replace("_", "-")


def _blocks(r: Any) -> str:
    return "\n".join(f"{b.origin_region} {b.serials.start}..{b.serials.end}" for b in r.blocks)


RETIREMENT_COLS = [
    Col("retirement", lambda r: r.name, ident=True),
    Col("purpose", _purpose),
    Col("grams", lambda r: f"{r.quantity_grams:,}"),
    Col("credited", lambda r: f"{r.credited_grams:,}"),
    Col("year", lambda r: str(r.compliance_year or ""), optional=True),
    Col("beneficiary", lambda r: r.beneficiary, optional=True),
    Col(f"retired ({zone_name()})", lambda r: proto_time(r.retire_time), optional=True),
]


def show_retirement(r: Any, output: Format = Format.TABLE) -> None:
    """A retirement: its fields and the blocks it consumed as a table (or as OUTPUT says)."""

    def human() -> None:
        shown = table("field", "value", title=r.name)
        shown.add_row("holder", r.holder_region)
        shown.add_row("purpose", _purpose(r))
        shown.add_row("beneficiary", r.beneficiary)
        if r.compliance_year:
            shown.add_row("compliance year", str(r.compliance_year))
        if r.declared_obligation_grams:
            shown.add_row("declared obligation (g)", f"{r.declared_obligation_grams:,}")
        shown.add_row("grams", f"{r.quantity_grams:,}")
        shown.add_row(
            "credited (g)",
            f"{r.credited_grams:,} (ratio {r.ratio_numerator}/{r.ratio_denominator})",
        )
        if r.outside_grams:
            shown.add_row(f"from outside {r.holder_region} (g)", f"{r.outside_grams:,}")
        shown.add_row(f"retired ({zone_name()})", proto_time(r.retire_time))
        for b in r.blocks:
            shown.add_row(
                "block", f"{b.origin_region} {b.serials.start}..{b.serials.end} {b.project}"
            )
        console.print(shown)

    show(r, output, human=human)


@app.command("list")
def retirements_list(
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    of_region: Annotated[
        str, typer.Option(callback=region_code, help="Only those this region retired.")
    ] = "",
    purpose: Annotated[Purpose | None, typer.Option(help="Only those of this purpose.")] = None,
    compliance_year: Annotated[
        int, typer.Option(help="Only those of this compliance year (0: any).")
    ] = 0,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List retirements, in the order they took effect."""
    with remote.connect(gateway, cert_dir, region) as client:
        found = client.list_retirements(
            of_region,
            PURPOSES[purpose.value] if purpose else 0,  # type: ignore[arg-type]
            compliance_year,
            limit=sys.maxsize,  # every page: the CLI lists them all
        )
    show(found, output, cols=RETIREMENT_COLS)


@app.command("show")
def retirements_show(
    name: Annotated[str, typer.Argument(help="regions/HOLDER/retirements/ID")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Show one retirement and the blocks it consumed."""
    with remote.connect(gateway, cert_dir, region) as client:
        r = client.get_retirement(name)
    show_retirement(r, output)
