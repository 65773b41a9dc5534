"""``yrdgw duplicates``: projects registered twice (duplicate cases) and the external lists of
projects registered in other schemes.

``import`` runs on the gateway's host (like ``yrdgw reconcile run``): it reads the database the
configuration (or ``--database-url``) names, never creates or migrates it, and goes through the
same service as the gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli import host
from gateway.cli.errors import CONTEXT
from gateway.cli.options import ConfigOpt, DatabaseOpt
from gateway.cli.output import Col, Format, OutputOpt, console, dumps, fitted, print_table

if TYPE_CHECKING:
    from gateway.services.duplicates import ImportOutcome

app = typer.Typer(
    help="Projects registered twice: duplicate cases and external project lists.",
    no_args_is_help=True,
)


def _scheme(value: str) -> str:
    """The scheme code, upper case (a usage error when it is not one)."""
    from adapters.external_list import check_scheme

    try:
        return check_scheme(value.upper())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("import")
def duplicates_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="The list: CSV (UTF-8, or GB18030 as Excel writes it) or XLSX; columns as in "
            "docs/templates/external-list.csv.",
            dir_okay=False,
        ),
    ],
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme",
            callback=_scheme,
            help="The scheme the list comes from: CCER, CEA (national ETS), a local ETS (SHEA...).",
        ),
    ],
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Import a list of projects registered in another scheme and match it against the regions'
    projects: each match opens a duplicate case (one side external) that holds the region
    side's overlapping issuances. All or nothing: a list with a bad row imports nothing and
    every bad row is named (row and column). Importing a list again replaces its rows."""
    from adapters.external_list import parse_external_list
    from gateway.services.duplicates import import_external

    CONTEXT["file"] = str(file)
    parsed = parse_external_list(file.read_bytes(), scheme)
    settings = host.quiet_settings(config, database_url)
    with host.services(settings) as services:
        outcome = import_external(
            services.db,
            parsed.rows,
            f"operator/{host.operator()}",
            approvals=services.recognition.policy,
            now=services.recognition.clock(),
            digest=parsed.digest,
        )
    _show(file, parsed.format, outcome, output)


def _show(file: Path, fmt: str, outcome: ImportOutcome, output: Format) -> None:
    from gateway.contract import duplicate_case_name

    cases = [
        {
            "name": duplicate_case_name(c.case_id),
            "rule": c.rule,
            "strength": c.strength,
            "first": c.first,
            "second": c.second,
            "held": list(c.held),
        }
        for c in outcome.cases
    ]
    if output is Format.NAME:
        for case in cases:
            typer.echo(case["name"])
        return
    if output in (Format.JSON, Format.YAML):
        doc = {
            "scheme": outcome.scheme,
            "file": str(file),
            "format": fmt,
            "rows": outcome.rows,
            "digest": outcome.digest,
            "cases_opened": cases,
        }
        typer.echo(dumps(doc, output), nl=False)
        return
    opened = len(cases)
    console.print(
        f"imported {outcome.rows} row(s) of {outcome.scheme} from {file} (sha256 "
        f"{outcome.digest[:16]}…): {opened} duplicate case(s) opened",
        highlight=False,
    )
    if cases:

        def short(name: str) -> str:
            return name.removeprefix("DUPLICATE_RULE_").removeprefix("MATCH_STRENGTH_").lower()

        cols: list[Col] = [
            Col("case", lambda c: c["name"], ident=True),
            Col("rule", lambda c: f"{short(c['rule'])} ({short(c['strength'])})"),
            Col("first", lambda c: c["first"], ident=True),
            Col("second", lambda c: c["second"], ident=True),
            Col("held", lambda c: str(len(c["held"])), optional=True),
        ]
        rows: list[Any] = cases
        print_table(fitted(rows, cols))
