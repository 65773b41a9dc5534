"""Operator commands that run on the gateway's host against its database, through the same
services as the RPCs: reconciliation runs and reports, the scheduler, the expiry job.

Exit codes of ``yrdgw reconcile run``: 0 every region consistent, 3 discrepancies found (or a
registry that needs chasing), 1 an error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from yrd.interop.v1 import reconciliation_pb2

from gateway.assembly import Services, build_services
from gateway.config import GatewaySettings, load_settings
from gateway.errors import DomainError, SnapshotMissing
from gateway.logs import configure_logging
from gateway.report_export import report_csv, report_json, short_kind, short_status
from gateway.scheduler import EXPIRE, GatewayScheduler, run_once
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIError
from gateway.services.reconciliation import (
    PROTO_OF_STATE,
    STAGES,
    SnapshotBuilder,
    discrepancy_counts,
)
from gateway.storage.db import Database

EXIT_DISCREPANCIES = 3
reconcile_app = typer.Typer(
    help="Reconcile registries' holdings with the ledger (operators, on the gateway host).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="File to write (default: stdout).")]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: configuration).")
]


def _settings(config: Path | None, database_url: str | None) -> GatewaySettings:
    settings = load_settings(config, **({"database_url": database_url} if database_url else {}))
    configure_logging(settings.log_format, "warning")
    return settings


@contextmanager
def _services(settings: GatewaySettings) -> Iterator[Services]:
    db = Database.from_url(settings.database_url)
    try:
        if settings.migrate_on_start:
            db.upgrade()
        yield build_services(settings, db)
    except (PKIError, DomainError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.dispose()


def load_snapshot_file(path: Path) -> tuple[str, SnapshotBuilder]:
    """A snapshot file: {"region", "snapshot_time" (ISO 8601), "completed_transfers": [names],
    "blocks": [{"origin", "start", "end", "state": active|reserved|retired|cancelled}]}."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    when = dt.datetime.fromisoformat(doc["snapshot_time"])
    if when.tzinfo is None:
        raise ValueError("snapshot_time needs a time zone")
    snapshot = SnapshotBuilder()
    snapshot.header(when, doc.get("completed_transfers", []))
    snapshot.add(
        (str(b["origin"]), int(b["start"]), int(b["end"]), PROTO_OF_STATE.get(b["state"], 0))
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


@reconcile_app.command("snapshot")
def reconcile_snapshot(
    region: Annotated[str, typer.Option("--region", help="Region code.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default stdout).")
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write what the ledger says REGION holds, in the snapshot file format: the snapshot a
    registry in full agreement would submit."""
    with _services(_settings(config, database_url)) as services:
        when, blocks, transfers = services.reconciliation.ledger_holdings(region)
    doc = snapshot_document(
        region, when, [(b.origin, b.start, b.end, b.state) for b in blocks], transfers
    )
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    _emit(text, out)
    if out is not None:
        err_console.print(f"wrote {len(blocks)} blocks of {region} to {out}")


@reconcile_app.command("run")
def reconcile_run(
    region: Annotated[
        str | None, typer.Option("--region", help="One region (default: all configured).")
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", help="Load this snapshot file for the region first."),
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Reconcile each region's latest holdings snapshot: totals, unit blocks, transfers.

    Exits 0 when every region is consistent, 3 when discrepancies were found.
    """
    settings = _settings(config, database_url)
    regions = [region] if region else list(settings.reconcile_regions)
    reports: list[reconciliation_pb2.ReconciliationReport] = []
    missing: list[str] = []
    with _services(settings) as services, _progress() as progress:
        if snapshot is not None:
            file_region, builder = _load_or_exit(snapshot)
            if region and file_region != region:
                raise _exit(f"{snapshot} is a snapshot of {file_region}, not {region}")
            regions = [file_region]
            task = progress.add_task(f"{file_region} snapshot", total=len(builder.blocks) or 1)
            summary = services.reconciliation.store_snapshot(
                file_region, builder, submitted_by=f"operator/{_operator()}"
            )
            progress.update(task, completed=len(builder.blocks) or 1)
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
    if region and missing:
        raise _exit(f"{region} has submitted no holdings snapshot")
    if any(r.status != reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED for r in reports):
        raise typer.Exit(EXIT_DISCREPANCIES)


@reconcile_app.command("list")
def reconcile_list(
    region: Annotated[str, typer.Option("--region", help="Only this region.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """The newest reports, newest first."""
    with _services(_settings(config, database_url)) as services:
        reports, _ = services.reconciliation.list(region=region, page_size=limit)
    table = Table("report", "region", "status", "finished", "discrepancies")
    for r in reports:
        counts = discrepancy_counts(r)
        table.add_row(
            r.name,
            r.region,
            short_status(r),
            r.finish_time.ToDatetime(dt.UTC).isoformat(timespec="seconds"),
            ", ".join(f"{k} {n}" for k, n in counts.items()) or "none",
        )
    console.print(table)


@reconcile_app.command("report")
def reconcile_report(
    report_id: Annotated[str, typer.Argument(help="Report id or name (reconciliations/ID).")],
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default stdout).")
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Download one signed report as JSON or CSV."""
    if fmt not in ("json", "csv"):
        raise _exit("--format is json or csv")
    name = report_id if report_id.startswith("reconciliations/") else f"reconciliations/{report_id}"
    with _services(_settings(config, database_url)) as services:
        report = services.reconciliation.get(name)
    text = report_json(report) if fmt == "json" else report_csv(report)
    _emit(text, out)


def transfer_expire(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the expiry job once: proposals past their deadline are expired, their units released."""
    with _services(_settings(config, database_url)) as services:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        result = run_once(services.jobs, EXPIRE, now, f"cli/{_operator()}")
    if result is None:
        raise _exit("the expiry job is running in another process right now; try again")
    outcome, detail = result
    console.print(detail)
    if outcome != "ok":
        raise typer.Exit(1)


def scheduler_command(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the scheduled jobs in this process only (no gRPC server) until SIGTERM or SIGINT."""
    settings = load_settings(config, **({"database_url": database_url} if database_url else {}))
    configure_logging(settings.log_format, settings.log_level)
    done = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with _services(settings) as services:
        scheduler = GatewayScheduler(settings, services.jobs)
        scheduler.start()
        try:
            done.wait()
        finally:
            scheduler.stop()


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        yield progress


def _summary(reports: list[reconciliation_pb2.ReconciliationReport], missing: list[str]) -> None:
    table = Table("region", "report", "status", "kind", "count", "grams")
    for r in reports:
        by_kind: dict[str, tuple[int, int]] = {}
        for d in r.discrepancies:
            n, g = by_kind.get(short_kind(d.kind), (0, 0))
            by_kind[short_kind(d.kind)] = (n + 1, g + d.quantity_grams)
        style = "green" if r.status == reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED else "red"
        status = f"[{style}]{short_status(r)}[/{style}]"
        if not by_kind:
            table.add_row(r.region, r.name, status, "-", "0", "0")
        for i, (kind, (n, g)) in enumerate(sorted(by_kind.items())):
            table.add_row(
                r.region if i == 0 else "",
                r.name if i == 0 else "",
                status if i == 0 else "",
                kind,
                str(n),
                f"{g:,}",
            )
    for code in missing:
        table.add_row(code, "-", "[yellow]NO SNAPSHOT[/yellow]", "-", "-", "-")
    console.print(table)


def _load_or_exit(path: Path) -> tuple[str, SnapshotBuilder]:
    try:
        return load_snapshot_file(path)
    except (OSError, ValueError, KeyError, TypeError, DomainError) as exc:
        raise _exit(f"{path}: {exc}") from exc


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def _exit(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _operator() -> str:
    return f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()}"
