"""``yrdgw``: the command line. An entrypoint like the gRPC server: it calls the same services.

This module assembles the command groups, one module each; the shared options are in
``options``, the output helpers in ``output``, the client of a running gateway in ``remote`` and
the configuration, database and services of commands on the gateway's host in ``host``. Each
command imports what it needs (the SDK, the server, SQLAlchemy) when it runs, so that ``--help``
and shell completion load only typer and these modules.
"""

from __future__ import annotations

import typer

from gateway.cli import (
    adapters,
    audit,
    console,
    db,
    demo,
    health,
    info,
    keys,
    ledger,
    pki,
    recognition,
    reconcile,
    registry,
    report,
    serve,
    status,
    transfer,
)

app = typer.Typer(
    help="Yangtze Delta carbon-inclusive interoperability gateway.", no_args_is_help=True
)
app.command("serve")(serve.serve)
app.command("health")(health.health)
app.command("info")(info.info)
app.command("status")(status.status)
app.command("report")(report.report)
app.command("demo")(demo.demo)
app.command("console")(console.console)
app.command("scheduler")(serve.scheduler)
app.add_typer(pki.app, name="pki")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(registry.app, name="registry")
app.add_typer(adapters.app, name="adapters")
app.add_typer(transfer.app, name="transfer")
app.add_typer(ledger.app, name="ledger")
app.add_typer(recognition.app, name="recognition")
app.add_typer(reconcile.app, name="reconcile")


def main() -> None:
    """Run the command line (the ``yrdgw`` script and ``python -m gateway``)."""
    app()
