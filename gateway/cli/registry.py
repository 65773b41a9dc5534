"""``yrdgw registry``: a registry's side of the record exchange (publish and subscribe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import remote
from gateway.cli.options import DEFAULT_GATEWAY, DEFAULT_PKI, CertDirOpt, GatewayOpt, RegionOpt
from gateway.cli.output import console, err_console, fail, table
from gateway.security.identity import Role

app = typer.Typer(help="A registry's side of the record exchange.", no_args_is_help=True)


@app.command("publish")
def registry_publish(
    files: Annotated[list[Path], typer.Argument(help="Native documents to publish, in order.")],
    region: RegionOpt,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    content_type: Annotated[
        str | None, typer.Option(help="Content type; default: the region's native format.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Envelopes per stream message.")
    ] = 100,
) -> None:
    """Sign each file with the region's registry key and publish them over one stream.

    The signer's sequence and previous hash are kept in signer-state.json beside the key (and
    taken from the gateway when that file is missing). Exits 1 if any file was refused.
    """
    from adapters import default_registry

    try:
        documents = [(f, f.read_bytes()) for f in files]
    except OSError as exc:
        raise fail(str(exc)) from exc
    ct = content_type or default_registry.get(region).content_types[0]
    with remote.signing(gateway, cert_dir, region, with_reason=False) as client:
        results = client.publish([(ct, data) for _, data in documents], batch_size=batch_size)
    shown = table("file", "result", "records / reason")
    refused = 0
    for (path, _), result in zip(documents, results, strict=True):
        if result.accepted:
            shown.add_row(str(path), "[green]accepted[/green]", "\n".join(result.record_names))
        else:
            refused += 1
            detail = "\n".join(f"  {k}: {v}" for k, v in sorted(result.field_errors.items()))
            shown.add_row(
                str(path),
                f"[red]refused[/red] {result.reason}",
                f"{result.message}\n{detail}".strip(),
            )
    console.print(shown)
    if refused:
        raise fail(f"{refused} of {len(documents)} file(s) refused")


@app.command("subscribe")
def registry_subscribe(
    region: RegionOpt,
    gateway: GatewayOpt = DEFAULT_GATEWAY,
    cert_dir: CertDirOpt = DEFAULT_PKI,
    native: Annotated[
        bool, typer.Option("--native", help="Records in your own native format.")
    ] = False,
    cursor: Annotated[str, typer.Option("--from", help="Resume after this cursor.")] = "",
    follow: Annotated[bool, typer.Option("--follow", help="Keep streaming new records.")] = False,
    of_region: Annotated[
        list[str] | None, typer.Option("--of-region", help="Only these regions.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
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
