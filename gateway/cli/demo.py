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
    from gateway.demo import run_demo

    raise typer.Exit(run_demo(console, keep))
