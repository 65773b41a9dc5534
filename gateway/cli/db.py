"""``yrdgw db``: the gateway database's schema (the only commands that create or migrate it,
besides ``yrdgw serve`` with ``migrate_on_start``)."""

from __future__ import annotations

import typer

from gateway.cli import host
from gateway.cli.errors import ExitCode, mask
from gateway.cli.options import ConfigOpt, DatabaseOpt
from gateway.cli.output import Col, Format, OutputOpt, console, show

app = typer.Typer(help="The gateway database's schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Create the database schema, or migrate it to the newest revision."""
    with host.database(host.settings(config, database_url).database_url, create=True) as db:
        db.upgrade()
        console.print(f"database at revision {db.current_revision()}", highlight=False)


@app.command("current")
def db_current(
    config: ConfigOpt = None, database_url: DatabaseOpt = None, output: OutputOpt = Format.TABLE
) -> None:
    """The database's schema revision and the newest this yrdgw knows (read-only). Exits 3
    when the database needs `yrdgw db upgrade`."""
    url = host.settings(config, database_url).database_url
    with host.database(url, read_only=True, schema=False) as db:
        current, head = db.current_revision(), db.head_revision()
    doc = {"name": current or "", "current": current or "", "head": head or "", "url": mask(url)}
    show(
        doc,
        output,
        human=lambda: console.print(
            f"revision {current or '(none: not a yrdgw database)'}; newest {head}"
            + ("" if current == head else " — run `yrdgw db upgrade`"),
            highlight=False,
        ),
    )
    if current != head:
        raise typer.Exit(ExitCode.FINDINGS)


@app.command("history")
def db_history(output: OutputOpt = Format.TABLE) -> None:
    """The schema revisions this yrdgw knows, newest first."""
    from alembic.script import ScriptDirectory

    from gateway.storage.db import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    rows = [
        {"name": s.revision, "down_revision": str(s.down_revision or ""), "doc": s.doc or ""}
        for s in scripts.walk_revisions()
    ]
    show(
        rows,
        output,
        cols=[
            Col("revision", lambda r: r["name"], ident=True),
            Col("after", lambda r: r["down_revision"], ident=True),
            Col("what", lambda r: r["doc"]),
        ],
    )
