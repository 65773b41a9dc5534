"""``yrdgw recognition``: mutual recognition of methodologies and projects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import host, remote
from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    CertDirOpt,
    ConfigOpt,
    DatabaseOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    region_code,
    region_codes,
)
from gateway.cli.output import Col, Format, OutputOpt, console, show, table
from gateway.security.identity import Role

app = typer.Typer(help="Mutual recognition of methodologies and projects.", no_args_is_help=True)


def show_recognitions(recs: list[Any], output: Format) -> None:
    """Recognitions as OUTPUT says (tables: each with its assessment side by side)."""

    def human() -> None:
        for rec in recs:
            show_recognition(rec)

    show(recs, output, human=human)


def show_recognition(rec: Any) -> None:
    """A recognition: its state, approvals, assessment side by side, conditions and decisions."""
    from rich.markup import escape
    from yrd.interop.v1 import recognition_pb2

    state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
    console.print(
        f"[bold]{escape(rec.name)}[/bold]  {escape(rec.subject)}: {rec.requesting_region} → "
        f"{rec.recognising_region}  {state}  approvals {sum(d.verdict == 1 for d in rec.decisions)}"
        f"/{rec.required_approvals}",
        highlight=False,
    )
    a = rec.assessment
    if a.parameters:
        shown = table(
            "parameter",
            "subject (filed)",
            "counterpart (filed)",
            "normalised",
            "differs",
            title=f"equivalence with {a.counterpart or '(no counterpart)'}",
        )
        for p in a.parameters:
            shown.add_row(
                p.code,
                f"{p.subject.value} {p.subject.unit}" if p.HasField("subject") else "—",
                f"{p.counterpart.value} {p.counterpart.unit}" if p.HasField("counterpart") else "—",
                f"{p.subject_normalised or '—'} vs {p.counterpart_normalised or '—'} "
                f"{p.normalised_unit}",
                "[red]yes[/red]" if p.differs else "no",
            )
        console.print(shown)
    if a.HasField("suggested_ratio"):
        console.print(
            f"suggested ETS ratio {a.suggested_ratio.numerator}/{a.suggested_ratio.denominator}"
        )
    if a.summary:
        console.print(a.summary, highlight=False, markup=False)
    c = rec.conditions
    if c.HasField("ets_adjustment_ratio"):
        console.print(
            f"ETS ratio in force: {c.ets_adjustment_ratio.numerator}/"
            f"{c.ets_adjustment_ratio.denominator}"
        )
    for d in rec.decisions:
        verdict = "approved" if d.verdict == 1 else "rejected"
        console.print(
            f"  {d.region}/{d.admin} {verdict}: {d.comment}", highlight=False, markup=False
        )


@app.command("request")
def recognition_request(
    subject: Annotated[
        str, typer.Argument(help="regions/R/methodologies/ID or regions/R/projects/ID")
    ],
    region: RegionOpt = None,
    version: Annotated[str, typer.Option(help="Methodology version.")] = "",
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", callback=region_codes, help="Recognising regions (all others when omitted)."
        ),
    ] = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Ask other regions to recognise your methodology version or project (as the registry, or
    as an administrator with --admin)."""
    with remote.signing(
        gateway, cert_dir, region, None, name, check="`yrdgw recognition list`"
    ) as client:
        made = client.request_recognition(subject, version=version, regions=to or ())
    show_recognitions(list(made), output)


def _decide(
    kind: str,
    recognition: str,
    region: str | None,
    name: str | None,
    text: str,
    gateway: str | None,
    cert_dir: Path | None,
    output: Format,
) -> None:
    from gateway.cli.context import resolve

    if resolve(gateway, cert_dir, region, None, name).admin is None:
        raise UserError(
            f"only an administrator may {kind} a recognition",
            "pass --admin NAME (or set YRDGW_ADMIN)",
            ExitCode.USAGE,
        )
    check = f"`yrdgw recognition show {recognition}`"
    with remote.signing(gateway, cert_dir, region, Role.ADMIN, name, check=check) as client:
        if kind == "approve":
            rec = client.approve_recognition(recognition, text)
        elif kind == "reject":
            rec = client.reject_recognition(recognition, text)
        else:
            rec = client.revoke_recognition(recognition, text)
    show_recognitions([rec], output)


@app.command("approve")
def recognition_approve(
    recognition: Annotated[str, typer.Argument(help="recognitions/ID")],
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Approve a recognition your region was asked for (signed with your key)."""
    _decide("approve", recognition, region, name, comment, gateway, cert_dir, output)


@app.command("reject")
def recognition_reject(
    recognition: Annotated[str, typer.Argument(help="recognitions/ID")],
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Reject a recognition your region was asked for."""
    _decide("reject", recognition, region, name, comment, gateway, cert_dir, output)


@app.command("revoke")
def recognition_revoke(
    recognition: Annotated[str, typer.Argument(help="recognitions/ID")],
    reason: Annotated[str, typer.Option(help="Reason (required).")],
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Revoke a recognition in force: pending transfers it leaves unrecognised are rejected at once
    (their units go back to the source)."""
    _decide("revoke", recognition, region, name, reason, gateway, cert_dir, output)


@app.command("show")
def recognition_show(
    recognition: Annotated[str, typer.Argument(help="recognitions/ID")],
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Show a recognition with its assessment side by side."""
    with remote.connect(gateway, cert_dir, region, None, name) as client:
        rec = client.get_recognition(recognition)
    show_recognitions([rec], output)


@app.command("units")
def recognition_units(
    recognition: Annotated[str, typer.Argument(help="recognitions/ID")],
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Report the units the recognising region holds under a recognition (e.g. after it was
    revoked: completed transfers stand, and this lists what they brought in). On the gateway's
    host, read-only, on the configured database."""
    from gateway.contract import block_name
    from gateway.services.recognition import RecognitionService

    with host.database(host.settings(config, database_url).database_url, read_only=True) as db:
        rec, blocks = RecognitionService(db).held_under(recognition)
    if output is not Format.TABLE:
        rows = [
            {
                "name": block_name(b.origin_region, b.id),
                "origin_region": b.origin_region,
                "project": b.project_name,
                "vintage": b.vintage,
                "serial_start": b.serial_start,
                "serial_end": b.serial_end,
                "state": b.state,
            }
            for b in blocks
        ]
        show(rows, output)
        return
    shown = table(
        "origin",
        "project",
        "vintage",
        "serials",
        "grams",
        "state",
        title=f"{rec.recognising_region} holds under {rec.name} ({rec.state.value})",
    )
    total = 0
    for b in blocks:
        size = b.serial_end - b.serial_start + 1
        total += size
        shown.add_row(
            b.origin_region,
            b.project_name,
            str(b.vintage),
            f"{b.serial_start}..{b.serial_end}",
            f"{size:,}",
            b.state,
        )
    console.print(shown)
    console.print(f"{len(blocks)} block(s), {total:,} g")


@app.command("list")
def recognition_list(
    region: RegionOpt = None,
    name: NameOpt = None,
    recognising: Annotated[
        str,
        typer.Option(
            "--recognising",
            "--of-region",
            callback=region_code,
            help="Only recognitions by this region.",
        ),
    ] = "",
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List recognitions."""
    from yrd.interop.v1 import recognition_pb2

    with remote.connect(gateway, cert_dir, region, None, name) as client:
        found = list(client.list_recognitions(recognising=recognising))

    def state(rec: Any) -> str:
        return str(
            recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
        )

    def approvals(rec: Any) -> str:
        n = sum(d.verdict == recognition_pb2.VERDICT_APPROVE for d in rec.decisions)
        return f"{n}/{rec.required_approvals}"

    show(
        found,
        output,
        cols=[
            Col("recognition", lambda r: r.name, ident=True),
            Col("subject", lambda r: r.subject, ident=True),
            Col("from", lambda r: r.requesting_region, optional=True),
            Col("by", lambda r: r.recognising_region),
            Col("state", state),
            Col("approvals", approvals),
        ],
    )
