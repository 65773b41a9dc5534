"""``yrdgw``: the command line. An entrypoint like the gRPC server: it calls the same services.

This module assembles the command groups, one module each; the shared options are in
``options``, the output helpers in ``output``, the client of a running gateway in ``remote`` and
the configuration, database and services of commands on the gateway's host in ``host``. Each
command imports what it needs (the SDK, the server, SQLAlchemy) when it runs, so that ``--help``
and shell completion load only typer and these modules.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from gateway.cli import (
    adapters,
    audit,
    console,
    context,
    db,
    demo,
    duplicates,
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


def _no_type_label_on_flags() -> None:
    """Flags take no value: help shows no ``<bool>`` type label beside them (typer 0.29 does)."""
    from typing import Any

    from typer.core import TyperOption

    labelled = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else labelled(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_type_label_on_flags()

app = typer.Typer(
    help="Yangtze Delta carbon-inclusive interoperability gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from gateway.contract import PROTOCOL_PACKAGE, PROTOCOL_VERSION

        typer.echo(
            f"yrdgw {version('yrd-gateway')} (protocol {PROTOCOL_PACKAGE} {PROTOCOL_VERSION})"
        )
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="YRDGW_DEBUG",
            help="Show the traceback of a failure.",
            show_envvar=True,
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Yangtze Delta carbon-inclusive interoperability gateway."""
    if debug:
        os.environ["YRDGW_DEBUG"] = "1"


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
app.add_typer(duplicates.app, name="duplicates")
app.add_typer(context.app, name="context")


def main() -> None:
    """Run the command line (the ``yrdgw`` script and ``python -m gateway``): a failure a command
    lets through is said in one or two lines (with the traceback only under ``--debug``)."""
    from gateway.cli.errors import debugging

    if not debugging() and "--debug" not in sys.argv:
        # gRPC's C core would print its own log lines (a port in use, say) before ours.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        app()
    except SystemExit:
        raise
    except BaseException as exc:  # every failure ends here, as one or two lines
        from gateway.cli.output import report

        sys.exit(report(exc))
