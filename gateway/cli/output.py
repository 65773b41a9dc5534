"""What every command prints with: the two consoles, tables, ``--out`` files and error exits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: MESSAGE`` on stderr; the caller raises the returned exit (default code 1)."""
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def table(*columns: str, title: str | None = None) -> Table:
    """A rich table with these column headers."""
    from rich.table import Table

    return Table(*columns, title=title)


def emit(text: str, out: Path | None) -> None:
    """Write TEXT to the file OUT, or to stdout when OUT is None."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
