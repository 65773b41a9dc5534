"""``yrdgw report``: the regulators' report pack, read from the gateway's database."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import host
from gateway.cli.options import ConfigOpt, DatabaseOpt
from gateway.cli.output import console, fail

REPORTS = ("ets-offsets", "flows", "retirements", "discrepancies", "recognitions")


class Format(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"
    JSON = "json"


def _day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"{option} must be a date YYYY-MM-DD, got {value!r}") from exc


def report(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(REPORTS)}.")],
    since: Annotated[str, typer.Option("--since", help="First day (China time), YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--until", help="Last day, included, YYYY-MM-DD.")],
    output: Annotated[
        Format, typer.Option("--output", "-o", help="xlsx (Chinese and English sheets), csv, json.")
    ] = Format.XLSX,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="File to write (default: stdout for csv and json; for xlsx"
            " NAME_SINCE_UNTIL.xlsx in the current directory).",
        ),
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """A report of the pack over a period of China civil days, both included: ETS offsets by
    compliance year and beneficiary with the cap used; cross-region flows by origin and holder;
    retirements by purpose; reconciliation discrepancies, open and resolved; recognitions in
    force at the end of the period. Grams are integers; tonnes beside them have six decimals."""
    if name not in REPORTS:
        raise fail(f"no report {name!r}; reports: {', '.join(REPORTS)}")
    first, last = _day(since, "--since"), _day(until, "--until")
    if last < first:
        raise fail(f"--until {last} is before --since {first}")
    from gateway.report_pack import file_name, render
    from gateway.services.reports import ReportPack

    settings = host.quiet_settings(config, database_url)
    with host.database(settings.database_url) as db:
        built = ReportPack(db, settings.ets_offset_policies).build(name, first, last)
    data = render(built, output.value)
    if out is None and output is Format.XLSX:
        out = Path(file_name(built, "xlsx"))
    if out is None:
        typer.echo(data.decode(), nl=False)
        return
    out.write_bytes(data)
    console.print(f"wrote {out} ({len(built.rows)} rows)")
