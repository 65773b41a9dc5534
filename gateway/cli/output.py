"""What every command prints with: the two consoles, ``-o table|json|yaml|name``, tables that
never cut an identifier, ``--out`` files, times in the configured zone, and failures."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from gateway.cli.errors import ExitCode

if TYPE_CHECKING:
    import datetime as dt

    from rich.table import Table


def _stdout_console() -> Console:
    # Piped or redirected, tables keep their natural width: a pipe has no edge to fit.
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return Console()
    return Console(width=1000)


console = _stdout_console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = ExitCode.ERROR, hint: str = "") -> typer.Exit:
    """Print ``error: MESSAGE`` (and ``hint: HINT``) on stderr; the caller raises the returned
    exit (default code 1). The message is printed as text: ``[...]`` in it stays."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    if hint:
        err_console.print(f"[dim]hint:[/dim] {escape(hint)}", highlight=False)
    return typer.Exit(code)


def report(exc: BaseException) -> int:
    """Say a failure in one or two lines (details indented), with its traceback under --debug;
    returns the exit code."""
    from gateway.cli.errors import debugging, explain

    if debugging():
        import traceback

        traceback.print_exception(exc)
    found = explain(exc)
    err_console.print(f"[red]error:[/red] {escape(found.message)}", highlight=False)
    for line in found.details:
        err_console.print(f"  {escape(line)}", highlight=False)
    if found.hint:
        err_console.print(f"[dim]hint:[/dim] {escape(found.hint)}", highlight=False)
    return int(found.code)


class Format(StrEnum):
    """How a command prints what it found: a table for people, JSON or YAML (the proto3 JSON
    mapping, every field) for programs, or the bare resource names, one a line, for pipes."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


OutputOpt = Annotated[
    Format,
    typer.Option(
        "--output",
        "-o",
        help="table, json, yaml, or name (bare resource names, one a line).",
        envvar="YRDGW_OUTPUT",
        show_envvar=True,
        case_sensitive=False,
    ),
]


@dataclass(frozen=True)
class Col:
    """A table column: its header, the text of a row's cell, whether it holds an identifier the
    next command needs (never cut), and whether it may be left out when the terminal is narrow."""

    header: str
    cell: Callable[[Any], str]
    ident: bool = False
    optional: bool = False


def table(*columns: str, title: str | None = None) -> Table:
    """A rich table with these column headers; cells fold rather than being cut off."""
    from rich.table import Table

    shown = Table(title=title)
    for c in columns:
        shown.add_column(c, overflow="fold")
    return shown


def fitted(rows: Sequence[Any], cols: Sequence[Col], title: str | None = None) -> Table:
    """A table of ROWS whose identifier columns are as wide as their longest value: optional
    columns are left out (last first) while the identifiers would not fit the console."""
    from rich.table import Table

    cells = [[c.cell(r) for c in cols] for r in rows]
    widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    keep = list(range(len(cols)))

    def needed() -> int:
        return sum(widths[i] + 3 for i in keep if cols[i].ident or not cols[i].optional) + 1

    for i in reversed(range(len(cols))):
        if needed() <= console.width:
            break
        if cols[i].optional:
            keep.remove(i)
    shown = Table(title=title)
    for i in keep:
        c = cols[i]
        if c.ident:
            shown.add_column(c.header, no_wrap=True, min_width=widths[i], overflow="fold")
        else:
            # Other columns may wrap, down to a readable width.
            shown.add_column(c.header, overflow="fold", min_width=min(widths[i], 12))
    for row in cells:
        shown.add_row(*(escape(row[i]) for i in keep))
    return shown


def print_table(shown: Table) -> None:
    """Print a table without cropping it: wider than the terminal, its lines wrap there instead
    of losing their ends (identifier columns have their full width as minimum)."""
    needed = sum((c.min_width or 0) + 3 for c in shown.columns) + 1
    if needed <= console.width:
        console.print(shown)
        return
    width = console.width
    console.width = needed
    try:
        console.print(shown, crop=False)
    finally:
        console.width = width


def show(
    data: Any,
    fmt: Format,
    *,
    cols: Sequence[Col] = (),
    name: Callable[[Any], str] | None = None,
    title: str | None = None,
    human: Callable[[], None] | None = None,
    plain: Callable[[Any], Any] | None = None,
) -> None:
    """Print DATA (one object or a list) as FMT: JSON/YAML of ``plain(item)`` (proto messages:
    the proto3 JSON mapping), NAME of ``name(item)`` (default: its ``name``), and for TABLE
    ``human()`` when given, else a table of COLS."""
    items = data if isinstance(data, list) else [data]
    if fmt is Format.NAME:
        for item in items:
            typer.echo(name(item) if name else _name_of(item))
        return
    if fmt in (Format.JSON, Format.YAML):
        convert = plain or to_plain
        doc = [convert(i) for i in items] if isinstance(data, list) else convert(data)
        typer.echo(dumps(doc, fmt), nl=False)
        return
    if human is not None:
        human()
        return
    print_table(fitted(items, cols, title))


def dumps(doc: Any, fmt: Format) -> str:
    """DOC as JSON or YAML text (with a final newline)."""
    if fmt is Format.YAML:
        import yaml

        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    import json

    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def to_plain(item: Any) -> Any:
    """A proto message in the proto3 JSON mapping (field names as in the .proto); other values
    as they are."""
    if hasattr(item, "DESCRIPTOR"):
        from google.protobuf import json_format

        return json_format.MessageToDict(item, preserving_proto_field_name=True)
    return item


def _name_of(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("name", ""))
    return str(getattr(item, "name", item))


def zone_name() -> str:
    """The zone times are shown in: YRDGW_TIMEZONE, else Asia/Shanghai."""
    return os.environ.get("YRDGW_TIMEZONE") or "Asia/Shanghai"


def local_time(when: dt.datetime | None) -> str:
    """WHEN in the configured zone, with its UTC offset (``2026-12-05 06:42:08 +08:00``)."""
    if when is None:
        return ""
    import datetime as dt
    from zoneinfo import ZoneInfo

    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    shown = when.astimezone(ZoneInfo(zone_name()))
    offset = shown.strftime("%z")
    return shown.strftime("%Y-%m-%d %H:%M:%S ") + f"{offset[:3]}:{offset[3:]}"


def proto_time(ts: Any) -> str:
    """A protobuf Timestamp (unset: empty) in the configured zone."""
    import datetime as dt

    if not (ts.seconds or ts.nanos):
        return ""
    return local_time(ts.ToDatetime(dt.UTC))


def emit(text: str, out: Path | None) -> None:
    """Write TEXT to the file OUT, or to stdout when OUT is None."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
