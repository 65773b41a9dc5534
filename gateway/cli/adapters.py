"""``yrdgw adapters``: the regional adapters (native formats ⇄ common schema)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.errors import ExitCode
from gateway.cli.options import region_code
from gateway.cli.output import Col, Format, OutputOpt, err_console, fail, show


class Target(StrEnum):
    """What ``adapters convert`` writes."""

    COMMON = "common"
    NATIVE = "native"


app = typer.Typer(
    help="The regional adapters (native formats ⇄ common schema).", no_args_is_help=True
)


@app.command("list")
def adapters_list(output: OutputOpt = Format.TABLE) -> None:
    """The registered regions and the content types their adapters read (-o name: regions)."""
    from adapters import default_registry

    rows = [
        {
            "name": a.region,
            "content_types": list(a.content_types),
            "serial_unit_grams": a.serial_unit_grams,
            "max_document_bytes": a.max_document_bytes,
        }
        for a in default_registry
    ]
    show(
        rows,
        output,
        cols=[
            Col("region", lambda r: r["name"]),
            Col("content type", lambda r: "\n".join(r["content_types"]), ident=True),
            Col("serial unit (g)", lambda r: f"{r['serial_unit_grams']:,}"),
            Col("max document (bytes)", lambda r: f"{r['max_document_bytes']:,}", optional=True),
        ],
    )


@app.command("convert")
def adapters_convert(
    file: Path,
    region: Annotated[
        str,
        typer.Option(
            "--region",
            "--format-region",
            callback=region_code,
            help="Region whose native format FILE is in.",
        ),
    ],
    to: Annotated[Target, typer.Option(help="common (protobuf JSON) or native.")] = Target.COMMON,
    target_region: Annotated[
        str | None,
        typer.Option(callback=region_code, help="Region whose format to render (--to native)."),
    ] = None,
) -> None:
    """Convert a native document (own or foreign records) to the common schema, or render it in
    another region's format."""
    import json

    from google.protobuf import json_format

    from adapters import NativeFormatError, NotExpressibleError, default_registry

    if to is Target.NATIVE and target_region is None:
        raise fail("--to native needs --target-region", ExitCode.USAGE)
    try:
        source = default_registry.get(region)
        # Any region's records: the document may hold records of other regions (foreign
        # records, as a native feed delivers them).
        records = source.to_common(source.content_types[0], file.read_bytes(), accept_foreign=True)
    except NativeFormatError as exc:
        for issue in exc.issues:
            err_console.print(f"  {issue}", highlight=False, markup=False)
        raise fail(f"{file}: {len(exc.issues)} issue(s) in the {region} document") from exc
    except LookupError as exc:
        raise fail(str(exc), hint="the regions with adapters: `yrdgw adapters list`") from exc
    if to is Target.COMMON:
        for record in records:
            print(
                json.dumps(
                    json_format.MessageToDict(record, preserving_proto_field_name=True),
                    ensure_ascii=False,
                )
            )
        return
    assert target_region is not None
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
            err_console.print(f"{record.name}: {exc}", highlight=False, markup=False)
            continue
        encoding = "gb18030" if target.content_types[0].startswith("text/") else "utf-8"
        print(data.decode(encoding))
    if failed:
        raise fail(f"{failed} record(s) cannot be expressed exactly in the {target_region} format")
