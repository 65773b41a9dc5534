"""``yrdgw db``: the gateway database."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import host
from gateway.cli.options import ConfigOpt
from gateway.cli.output import console

app = typer.Typer(help="The gateway database.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Migrate the database schema to the newest revision."""
    with host.database(host.settings(config, database_url).database_url) as db:
        db.upgrade()
        console.print(f"database at revision {db.current_revision()}")
