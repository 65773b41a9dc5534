"""``yrdgw reconcile``: operator commands on the gateway's host that reconcile registries'
holdings with the ledger, through the same service as the RPCs.

Exit codes of ``yrdgw reconcile run``: 0 every region consistent, 3 discrepancies found (or a
registry that needs chasing), 4 no snapshot to reconcile, 1 an error. ``reconcile submit`` is a
registry's call (SubmitHoldings) through the gateway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli import host, remote
from gateway.cli.errors import ExitCode, UserError
from gateway.cli.options import (
    CertDirOpt,
    ConfigOpt,
    DatabaseOpt,
    GatewayOpt,
    OutOpt,
    RegionOpt,
    region_code,
)
from gateway.cli.output import (
    Col,
    Format,
    OutputOpt,
    console,
    emit,
    err_console,
    fail,
    proto_time,
    show,
    table,
    zone_name,
)

if TYPE_CHECKING:
    from rich.progress import Progress
    from yrd.interop.v1 import reconciliation_pb2

    from gateway.services.snapshots import SnapshotBuilder

EXIT_DISCREPANCIES = ExitCode.FINDINGS


class ReportFormat(StrEnum):
    """The formats a reconciliation report downloads as."""

    JSON = "json"
    CSV = "csv"


app = typer.Typer(
    help="Reconcile registries' holdings with the ledger (operators, on the gateway host).",
    no_args_is_help=True,
)


def load_snapshot_file(path: Path, *, join: bool = True) -> tuple[str, SnapshotBuilder]:
    """A snapshot file: {"region", "snapshot_time" (ISO 8601), "completed_transfers": [names],
    "blocks": [{"origin", "start", "end", "state": active|held|reserved|retired|cancelled}]},
    checked; ``join``: as the gateway stores it (runs), else its blocks as given."""
    import json

    from gateway.contract import BLOCK_STATE_PROTO
    from gateway.services.snapshots import SnapshotBuilder

    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    when = dt.datetime.fromisoformat(doc["snapshot_time"])
    if when.tzinfo is None:
        raise ValueError("snapshot_time needs a time zone")
    snapshot = SnapshotBuilder(join=join)
    snapshot.header(when, doc.get("completed_transfers", []))
    snapshot.add(
        (str(b["origin"]), int(b["start"]), int(b["end"]), BLOCK_STATE_PROTO.get(b["state"], 0))
        for b in doc["blocks"]
    )
    return str(doc["region"]), snapshot


def snapshot_document(
    region: str, when: dt.datetime, blocks: list[tuple[str, int, int, str]], transfers: list[str]
) -> dict[str, Any]:
    """The snapshot file format (see ``load_snapshot_file``)."""
    return {
        "region": region,
        "snapshot_time": when.isoformat(),
        "completed_transfers": transfers,
        "blocks": [{"origin": o, "start": s, "end": e, "state": st} for o, s, e, st in blocks],
    }


@app.command("snapshot")
def reconcile_snapshot(
    region: Annotated[
        str, typer.Option("--of-region", "--region", callback=region_code, help="Region.")
    ],
    out: OutOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write what the ledger says REGION holds, in the snapshot file format: the snapshot a
    registry in full agreement would submit."""
    import json

    with host.services(host.quiet_settings(config, database_url)) as services:
        when, blocks, transfers = services.reconciliation.ledger_holdings(region)
    doc = snapshot_document(
        region, when, [(b.origin, b.start, b.end, b.state) for b in blocks], transfers
    )
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    emit(text, out)
    if out is not None:
        err_console.print(f"wrote {len(blocks)} blocks of {region} to {out}")


@app.command("run")
def reconcile_run(
    region: Annotated[
        str | None,
        typer.Option(
            "--of-region",
            "--region",
            callback=region_code,
            help="One region (default: all configured).",
        ),
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", help="Load this snapshot file for the region first."),
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Reconcile each region's latest holdings snapshot: totals, unit blocks, transfers.

    Exits 0 when every region is consistent, 3 when discrepancies were found, 4 when there
    was no snapshot to reconcile.
    """
    from rich.progress import TaskID
    from yrd.interop.v1 import reconciliation_pb2

    from gateway.errors import SnapshotMissing
    from gateway.security.identity import Identity, Role
    from gateway.services.reconciliation import STAGES

    settings = host.quiet_settings(config, database_url)
    regions = [region] if region else list(settings.reconcile_regions)
    reports: list[reconciliation_pb2.ReconciliationReport] = []
    missing: list[str] = []
    with host.services(settings) as services, _progress() as progress:
        if snapshot is not None:
            file_region, builder = _load_or_exit(snapshot)
            if region and file_region != region:
                raise fail(
                    f"{snapshot} is a snapshot of {file_region}, not {region}", ExitCode.USAGE
                )
            regions = [file_region]
            task = progress.add_task(f"{file_region} snapshot", total=builder.block_count or 1)
            summary = services.reconciliation.store_snapshot(
                file_region, builder, submitted_by=f"operator/{host.operator()}"
            )
            progress.update(task, completed=builder.block_count or 1)
            err_console.print(f"loaded {summary.name}: {summary.block_count} blocks")
        for code in regions:
            tasks = {s: progress.add_task(f"{code} {s}", total=1) for s in STAGES}

            def advance(
                stage: str, done: int, total: int, tasks: dict[str, TaskID] = tasks
            ) -> None:
                for finished in STAGES[:done]:
                    progress.update(tasks[finished], completed=1)

            try:
                reports.append(
                    services.reconciliation.run(Identity(Role.GATEWAY, None), code, advance)
                )
            except SnapshotMissing:
                missing.append(code)
                for t in tasks.values():
                    progress.remove_task(t)
    _summary(reports, missing)
    if missing and not reports:
        raise fail(
            f"nothing to reconcile: no holdings snapshot from {', '.join(missing)}",
            ExitCode.NOTHING_TO_DO,
            hint="a registry submits one with `yrdgw reconcile submit FILE`, or load one here "
            "with --snapshot FILE",
        )
    if any(r.status != reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED for r in reports):
        raise typer.Exit(EXIT_DISCREPANCIES)


@app.command("list")
def reconcile_list(
    region: Annotated[
        str, typer.Option("--of-region", "--region", callback=region_code, help="Only this region.")
    ] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many.")] = 20,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """The newest reports, newest first (read-only)."""
    from gateway.report_export import short_status
    from gateway.services.reconciliation import discrepancy_counts

    with host.services(host.quiet_settings(config, database_url), read_only=True) as services:
        reports, _ = services.reconciliation.list(region=region, page_size=limit)
    show(
        list(reports),
        output,
        cols=[
            Col("report", lambda r: r.name, ident=True),
            Col("region", lambda r: r.region),
            Col("status", short_status),
            Col(f"finished ({zone_name()})", lambda r: proto_time(r.finish_time)),
            Col(
                "discrepancies",
                lambda r: ", ".join(f"{k} {n}" for k, n in discrepancy_counts(r).items()) or "none",
                optional=True,
            ),
        ],
    )


@app.command("report")
def reconcile_report(
    report_id: Annotated[str, typer.Argument(help="Report id or name (reconciliations/ID).")],
    fmt: Annotated[ReportFormat, typer.Option("--format", help="json or csv.")] = "json",  # type: ignore[assignment]
    out: OutOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Download one signed report as JSON or CSV (read-only)."""
    from gateway.contract import is_reconciliation_name, reconciliation_name
    from gateway.report_export import report_csv, report_json

    name = report_id if is_reconciliation_name(report_id) else reconciliation_name(report_id)
    with host.services(host.quiet_settings(config, database_url), read_only=True) as services:
        report = services.reconciliation.get(name)
    text = report_json(report) if fmt == ReportFormat.JSON else report_csv(report)
    emit(text, out)


@app.command("submit")
def reconcile_submit(
    file: Annotated[Path, typer.Argument(help="Snapshot file (the `reconcile snapshot` format).")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Submit your registry's holdings snapshot to the gateway (SubmitHoldings), from a file in
    the snapshot format; the gateway's next reconciliation of your region uses it."""
    from yrd.interop.v1 import records_pb2

    from gateway.contract import BLOCK_STATE_PROTO

    file_region, builder = _load_or_exit(file, join=False)
    with builder, remote.connect(gateway, cert_dir, region) as client:
        if file_region != client.region:
            raise UserError(
                f"{file} is a snapshot of {file_region}, and you are {client.region}",
                "a registry submits its own holdings only (--region)",
                ExitCode.USAGE,
            )
        assert builder.snapshot_time is not None
        # The checked blocks, streamed back from the builder's spool as the file gives them.
        blocks = (
            (
                origin,
                start,
                end,
                BLOCK_STATE_PROTO.get(state, records_pb2.UNIT_BLOCK_STATE_UNSPECIFIED),
            )
            for rows in builder.rows()
            for origin, start, end, state in rows
        )
        reply = client.submit_holdings(
            builder.snapshot_time, blocks, sorted(builder.transfer_names)
        )
    show(
        reply,
        output,
        name=lambda r: r.snapshot,
        human=lambda: console.print(
            f"submitted {reply.snapshot}: {reply.block_count} blocks, {reply.quantity_grams:,} g",
            highlight=False,
        ),
    )


@contextmanager
def _progress() -> Iterator[Progress]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        yield progress


def _summary(reports: list[reconciliation_pb2.ReconciliationReport], missing: list[str]) -> None:
    from yrd.interop.v1 import reconciliation_pb2

    from gateway.report_export import short_kind, short_status

    shown = table("region", "report", "status", "kind", "count", "grams")
    for r in reports:
        by_kind: dict[str, tuple[int, int]] = {}
        for d in r.discrepancies:
            n, g = by_kind.get(short_kind(d.kind), (0, 0))
            by_kind[short_kind(d.kind)] = (n + 1, g + d.quantity_grams)
        style = "green" if r.status == reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED else "red"
        status = f"[{style}]{short_status(r)}[/{style}]"
        if not by_kind:
            shown.add_row(r.region, r.name, status, "-", "0", "0")
        for i, (kind, (n, g)) in enumerate(sorted(by_kind.items())):
            shown.add_row(
                r.region if i == 0 else "",
                r.name if i == 0 else "",
                status if i == 0 else "",
                kind,
                str(n),
                f"{g:,}",
            )
    for code in missing:
        shown.add_row(code, "-", "[yellow]NO SNAPSHOT[/yellow]", "-", "-", "-")
    console.print(shown)


def _load_or_exit(path: Path, *, join: bool = True) -> tuple[str, SnapshotBuilder]:
    from gateway.errors import DomainError

    try:
        return load_snapshot_file(path, join=join)
    except OSError:
        raise
    except KeyError as exc:
        raise UserError(
            f"{path}: not a snapshot file (no {exc} field)",
            "the format: `yrdgw reconcile snapshot --help`",
        ) from exc
    except (ValueError, TypeError, DomainError) as exc:
        raise UserError(
            f"{path}: not a valid snapshot ({exc})",
            "the format: `yrdgw reconcile snapshot --help`",
        ) from exc
