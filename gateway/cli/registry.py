"""``yrdgw registry``: a registry's side of the record exchange (publish and subscribe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import remote
from gateway.cli.errors import UserError
from gateway.cli.options import CertDirOpt, GatewayOpt, RegionOpt, region_codes
from gateway.cli.output import Col, Format, OutputOpt, console, err_console, fail, show
from gateway.security.identity import Role

app = typer.Typer(help="A registry's side of the record exchange.", no_args_is_help=True)


@app.command("publish")
def registry_publish(
    files: Annotated[list[Path], typer.Argument(help="Native documents to publish, in order.")],
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    content_type: Annotated[
        str | None, typer.Option(help="Content type; default: the region's native format.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Envelopes per stream message.")
    ] = 100,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Sign each file with the region's registry key and publish them over one stream.

    The signer's sequence and previous hash are kept in signer-state.json beside the key (and
    taken from the gateway when that file is missing). Exits 1 if any file was refused.
    """
    from adapters import default_registry
    from gateway.cli.context import resolve

    documents = [(f, f.read_bytes()) for f in files]
    me = resolve(gateway, cert_dir, region).region
    if content_type is None:
        try:
            content_type = default_registry.get(me).content_types[0]
        except LookupError as exc:
            raise UserError(
                f"no adapter knows the native format of region {me}",
                "pass --content-type (see `yrdgw adapters list`)",
            ) from exc
    ct = content_type
    check = f"`yrdgw registry subscribe --of-region {me}` (the feed lists what was accepted)"
    with remote.signing(gateway, cert_dir, me, check=check) as client:
        results = client.publish([(ct, data) for _, data in documents], batch_size=batch_size)
    rows = [
        {
            "file": str(path),
            "accepted": result.accepted,
            "records": list(result.record_names),
            "reason": result.reason,
            "message": result.message,
            "field_errors": dict(sorted(result.field_errors.items())),
        }
        for (path, _), result in zip(documents, results, strict=True)
    ]
    refused = sum(not r["accepted"] for r in rows)

    def outcome(r: dict[str, Any]) -> str:
        if r["accepted"]:
            return "\n".join(r["records"])
        detail = "\n".join(f"  {k}: {v}" for k, v in r["field_errors"].items())
        return f"{r['message']}\n{detail}".strip()

    show(
        rows,
        output,
        name=lambda r: "\n".join(r["records"]),
        cols=[
            Col("file", lambda r: r["file"], ident=True),
            Col("result", lambda r: "accepted" if r["accepted"] else f"refused {r['reason']}"),
            Col("records / reason", outcome, ident=True),
        ],
    )
    if refused:
        raise fail(f"{refused} of {len(documents)} file(s) refused")


@app.command("subscribe")
def registry_subscribe(
    region: RegionOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    native: Annotated[
        bool, typer.Option("--native", help="Records in your own native format.")
    ] = False,
    cursor: Annotated[str, typer.Option("--from", help="Resume after this cursor.")] = "",
    follow: Annotated[bool, typer.Option("--follow", help="Keep streaming new records.")] = False,
    of_region: Annotated[
        list[str] | None,
        typer.Option("--of-region", callback=region_codes, help="Only these regions' records."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event (same as -o json).")
    ] = False,
    output: Annotated[
        Format,
        typer.Option(
            "--output", "-o", help="table, json (one object a line), or name (record names)."
        ),
    ] = Format.TABLE,
) -> None:
    """Print the feed of accepted records (and exit), or keep following it with --follow.

    When the gateway shuts down it ends the stream with the cursor to resume from, which is
    printed on stderr; with --follow the command then reconnects from it (backing off while the
    gateway is unreachable), so every record is printed once. Ends with the next cursor on stderr.
    """
    import json

    from google.protobuf import json_format
    from rich.markup import escape

    from gateway.errors import GatewayShuttingDown

    last = cursor
    as_json = as_json or output in (Format.JSON, Format.YAML)

    def resuming(at: str, why: Exception) -> None:
        err_console.print(
            escape(f"stream ended: {remote.refusal(why)}; cursor: {at or '(start)'}"),
            highlight=False,
        )
        err_console.print(f"reconnecting from {at or '(start)'}", highlight=False)

    with remote.connect(gateway, cert_dir, region, Role.REGISTRY, None) as client:
        events = (
            client.follow(cursor, native=native, regions=of_region or (), on_resume=resuming)
            if follow
            else client.subscribe(cursor, native=native, regions=of_region or ())
        )
        try:
            for event in events:
                last = event.cursor
                kind = event.record.WhichOneof("kind") or ""
                record = getattr(event.record, kind)
                if as_json:
                    out = json_format.MessageToDict(event.record, preserving_proto_field_name=True)
                    out["cursor"] = event.cursor
                    if event.native_payload:
                        out["native"] = event.native_payload.decode(
                            "gb18030" if "csv" in event.native_content_type else "utf-8"
                        )
                    elif event.native_unavailable_reason:
                        out["native_unavailable_reason"] = event.native_unavailable_reason
                    print(json.dumps(out, ensure_ascii=False), flush=True)
                    continue
                if output is Format.NAME:
                    print(record.name, flush=True)
                    continue
                form = ""
                if native:
                    form = (
                        f" [{event.native_content_type}]"
                        if event.native_payload
                        else f" [common: {event.native_unavailable_reason}]"
                    )
                console.print(
                    escape(f"{event.cursor:>8}  {kind:<11} {record.name}{form}"), highlight=False
                )
        except KeyboardInterrupt:
            pass
        except GatewayShuttingDown as exc:
            last = exc.cursor or last
            err_console.print(f"next cursor: {last or '(start)'}")
            raise fail(escape(f"{remote.refusal(exc)}; resume with --from '{last}'")) from exc
    err_console.print(f"next cursor: {last or '(start)'}")
