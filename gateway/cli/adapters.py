"""``yrdgw adapters``: the regional adapters (native formats ⇄ common schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.options import RegionOpt
from gateway.cli.output import console, err_console, fail, table

app = typer.Typer(
    help="The regional adapters (native formats ⇄ common schema).", no_args_is_help=True
)


@app.command("list")
def adapters_list() -> None:
    """The registered regions and the content types their adapters read."""
    from adapters import default_registry

    shown = table("region", "content type", "serial unit (g)", "max document (bytes)")
    for adapter in default_registry:
        shown.add_row(
            adapter.region,
            ", ".join(adapter.content_types),
            f"{adapter.serial_unit_grams:,}",
            f"{adapter.max_document_bytes:,}",
        )
    console.print(shown)


@app.command("convert")
def adapters_convert(
    file: Path,
    region: RegionOpt,
    to: Annotated[str, typer.Option(help="common (protobuf JSON) or native.")] = "common",
    target_region: Annotated[
        str | None, typer.Option(help="Region whose format to render.")
    ] = None,
) -> None:
    """Convert a native document (own or foreign records) to the common schema, or render it in
    another region's format."""
    import json

    from google.protobuf import json_format

    from adapters import NativeFormatError, NotExpressibleError, default_registry

    if to not in ("common", "native"):
        raise fail("--to is common or native")
    try:
        source = default_registry.get(region)
        # Any region's records: the document may hold records of other regions (foreign
        # records, as a native feed delivers them).
        records = source.to_common(source.content_types[0], file.read_bytes(), accept_foreign=True)
    except NativeFormatError as exc:
        for issue in exc.issues:
            err_console.print(f"  {issue}", highlight=False)
        raise fail(f"{file}: {len(exc.issues)} issue(s) in the {region} document") from exc
    except (OSError, LookupError) as exc:
        raise fail(str(exc)) from exc
    if to == "common":
        for record in records:
            print(
                json.dumps(
                    json_format.MessageToDict(record, preserving_proto_field_name=True),
                    ensure_ascii=False,
                )
            )
        return
    if target_region is None:
        raise fail("--to native needs --target-region")
    try:
        target = default_registry.get(target_region)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    failed = 0
    for record in records:
        try:
            data = target.from_common(record)
        except NotExpressibleError as exc:
            failed += 1
            err_console.print(f"{record.name}: {exc}", highlight=False)
            continue
        encoding = "gb18030" if target.content_types[0].startswith("text/") else "utf-8"
        print(data.decode(encoding))
    if failed:
        raise fail(f"{failed} record(s) cannot be expressed exactly in the {target_region} format")
