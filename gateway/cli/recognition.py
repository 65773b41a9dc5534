"""``yrdgw recognition``: mutual recognition of methodologies and projects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import host, remote
from gateway.cli.options import (
    DEFAULT_GATEWAY,
    DEFAULT_PKI,
    AdminNameOpt,
    CertDirOpt,
    ConfigOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
)
from gateway.cli.output import console, fail, table
from gateway.security.identity import Role

app = typer.Typer(help="Mutual recognition of methodologies and projects.", no_args_is_help=True)


def show_recognition(rec: Any) -> None:
    """A recognition: its state, approvals, assessment side by side, conditions and decisions."""
    from yrd.interop.v1 import recognition_pb2

    state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
    console.print(
        f"[bold]{rec.name}[/bold]  {rec.subject}: {rec.requesting_region} → "
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
        console.print(a.summary, highlight=False)
    c = rec.conditions
    if c.HasField("ets_adjustment_ratio"):
        console.print(
            f"ETS ratio in force: {c.ets_adjustment_ratio.numerator}/"
            f"{c.ets_adjustment_ratio.denominator}"
        )
    for d in rec.decisions:
        verdict = "approved" if d.verdict == 1 else "rejected"
        console.print(f"  {d.region}/{d.admin} {verdict}: {d.comment}", highlight=False)


@app.command("request")
def recognition_request(
    subject: Annotated[
        str, typer.Argument(help="regions/R/methodologies/ID or regions/R/projects/ID")
    ],
    region: RegionOpt,
    version: Annotated[str, typer.Option(help="Methodology version.")] = "",
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Recognising regions (all others when omitted)."),
    ] = None,
    name: NameOpt = None,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Ask other regions to recognise your methodology version or project (as the registry, or
    as an administrator with --name)."""
    role = Role.ADMIN if name else Role.REGISTRY
    with remote.signing(gateway, cert_dir, region, role, name) as client:
        made = client.request_recognition(subject, version=version, regions=to or ())
    for rec in made:
        show_recognition(rec)


def _decide(
    kind: str, recognition: str, region: str, name: str, text: str, gateway: str, cert_dir: Path
) -> None:
    with remote.signing(gateway, cert_dir, region, Role.ADMIN, name) as client:
        if kind == "approve":
            rec = client.approve_recognition(recognition, text)
        elif kind == "reject":
            rec = client.reject_recognition(recognition, text)
        else:
            rec = client.revoke_recognition(recognition, text)
    show_recognition(rec)


@app.command("approve")
def recognition_approve(
    recognition: str,
    region: RegionOpt,
    name: AdminNameOpt,
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Approve a recognition your region was asked for (signed with your key)."""
    _decide("approve", recognition, region, name, comment, gateway, cert_dir)


@app.command("reject")
def recognition_reject(
    recognition: str,
    region: RegionOpt,
    name: AdminNameOpt,
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Reject a recognition your region was asked for."""
    _decide("reject", recognition, region, name, comment, gateway, cert_dir)


@app.command("revoke")
def recognition_revoke(
    recognition: str,
    region: RegionOpt,
    name: AdminNameOpt,
    reason: Annotated[str, typer.Option(help="Reason (required).")],
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Revoke a recognition in force: pending transfers it leaves unrecognised are rejected at once
    (their units go back to the source)."""
    _decide("revoke", recognition, region, name, reason, gateway, cert_dir)


@app.command("show")
def recognition_show(
    recognition: str,
    region: RegionOpt = "310000",
    name: NameOpt = None,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """Show a recognition with its assessment side by side."""
    role = Role.ADMIN if name else Role.REGISTRY
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        rec = client.get_recognition(recognition)
    show_recognition(rec)


@app.command("units")
def recognition_units(
    recognition: str,
    config: ConfigOpt = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL.")] = None,
) -> None:
    """Report the units the recognising region holds under a recognition (e.g. after it was
    revoked: completed transfers stand, and this lists what they brought in)."""
    from gateway.errors import DomainError
    from gateway.services.recognition import RecognitionService

    with host.database(host.settings(config, database_url).database_url) as db:
        try:
            rec, blocks = RecognitionService(db).held_under(recognition)
        except DomainError as exc:
            raise fail(str(exc)) from exc
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
    region: RegionOpt = "310000",
    name: NameOpt = None,
    recognising: Annotated[str, typer.Option(help="Only recognitions by this region.")] = "",
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
) -> None:
    """List recognitions."""
    from yrd.interop.v1 import recognition_pb2

    role = Role.ADMIN if name else Role.REGISTRY
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        found = client.list_recognitions(recognising=recognising)
    shown = table("recognition", "subject", "by", "state", "approvals")
    for rec in found:
        state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
        approvals = sum(d.verdict == recognition_pb2.VERDICT_APPROVE for d in rec.decisions)
        shown.add_row(
            rec.name,
            rec.subject,
            rec.recognising_region,
            state,
            f"{approvals}/{rec.required_approvals}",
        )
    console.print(shown)
