"""``yrdgw demo``: a walk through what works, on a gateway started in process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.output import console


def demo(
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo's files in this directory.")
    ] = None,
) -> None:
    """Start a gateway in process with a temporary PKI and database and walk through what works."""
    from gateway.cli.errors import UserError
    from gateway.demo import run_demo

    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise UserError(
            f"{keep} is not empty (a demo kept there before?)",
            "pass another --keep directory, or remove this one",
        )
    raise typer.Exit(run_demo(console, keep))
