"""``yrdgw duplicates``: projects registered twice (duplicate cases) and the external lists of
projects registered in other schemes.

``list``, ``show`` and ``resolve`` call a running gateway through the SDK (DuplicateService);
``resolve`` is an administrator's decision, signed with the administrator's own key exactly as
``yrdgw recognition approve`` signs one. ``import`` runs on the gateway's host (like
``yrdgw reconcile run``): it reads the database the configuration (or ``--database-url``) names,
never creates or migrates it, and goes through the same service as the gateway.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli import host, remote
from gateway.cli.errors import CONTEXT, ExitCode, UserError
from gateway.cli.options import (
    CertDirOpt,
    ConfigOpt,
    DatabaseOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    region_code,
)
from gateway.cli.output import (
    Col,
    Format,
    OutputOpt,
    console,
    dumps,
    fitted,
    print_table,
    proto_time,
    show,
    table,
    zone_name,
)
from gateway.security.identity import Role

if TYPE_CHECKING:
    from gateway.services.duplicates import ImportOutcome

app = typer.Typer(
    help="Projects registered twice: duplicate cases and external project lists.",
    no_args_is_help=True,
)


def _scheme(value: str) -> str:
    """The scheme code, upper case (a usage error when it is not one)."""
    from adapters.external_list import check_scheme

    try:
        return check_scheme(value.upper())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("import")
def duplicates_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="The list: CSV (UTF-8, or GB18030 as Excel writes it) or XLSX; columns as in "
            "docs/templates/external-list.csv.",
            dir_okay=False,
        ),
    ],
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme",
            callback=_scheme,
            help="The scheme the list comes from: CCER, CEA (national ETS), a local ETS (SHEA...).",
        ),
    ],
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Import a list of projects registered in another scheme and match it against the regions'
    projects: each match opens a duplicate case (one side external) that holds the region
    side's overlapping issuances. All or nothing: a list with a bad row imports nothing and
    every bad row is named (row and column). Importing a list again replaces its rows."""
    from adapters.external_list import parse_external_list
    from gateway.services.duplicates import import_external

    CONTEXT["file"] = str(file)
    parsed = parse_external_list(file.read_bytes(), scheme)
    settings = host.quiet_settings(config, database_url)
    with host.services(settings) as services:
        outcome = import_external(
            services.db,
            parsed.rows,
            f"operator/{host.operator()}",
            approvals=services.recognition.policy,
            now=services.recognition.clock(),
            digest=parsed.digest,
        )
    _show(file, parsed.format, outcome, output)


def _show(file: Path, fmt: str, outcome: ImportOutcome, output: Format) -> None:
    from gateway.contract import duplicate_case_name

    cases = [
        {
            "name": duplicate_case_name(c.case_id),
            "rule": c.rule,
            "strength": c.strength,
            "first": c.first,
            "second": c.second,
            "held": list(c.held),
        }
        for c in outcome.cases
    ]
    if output is Format.NAME:
        for case in cases:
            typer.echo(case["name"])
        return
    if output in (Format.JSON, Format.YAML):
        doc = {
            "scheme": outcome.scheme,
            "file": str(file),
            "format": fmt,
            "rows": outcome.rows,
            "digest": outcome.digest,
            "cases_opened": cases,
        }
        typer.echo(dumps(doc, output), nl=False)
        return
    opened = len(cases)
    console.print(
        f"imported {outcome.rows} row(s) of {outcome.scheme} from {file} (sha256 "
        f"{outcome.digest[:16]}…): {opened} duplicate case(s) opened",
        highlight=False,
    )
    if cases:

        def short(name: str) -> str:
            return name.removeprefix("DUPLICATE_RULE_").removeprefix("MATCH_STRENGTH_").lower()

        cols: list[Col] = [
            Col("case", lambda c: c["name"], ident=True),
            Col("rule", lambda c: f"{short(c['rule'])} ({short(c['strength'])})"),
            Col("first", lambda c: c["first"], ident=True),
            Col("second", lambda c: c["second"], ident=True),
            Col("held", lambda c: str(len(c["held"])), optional=True),
        ]
        rows: list[Any] = cases
        print_table(fitted(rows, cols))


class CaseState(StrEnum):
    """A duplicate case's state, as a filter."""

    OPEN = "open"
    DISTINCT = "distinct"
    DUPLICATE = "duplicate"


class Strength(StrEnum):
    """How strongly a rule's match suggests one physical project, as a filter."""

    CERTAIN = "certain"
    PROBABLE = "probable"
    POSSIBLE = "possible"


def _enum(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, lower case (``MATCH_STRENGTH_CERTAIN`` →
    ``certain``); "-" for UNSPECIFIED."""
    name = str(enum.Name(value)).removeprefix(prefix).lower()
    return "-" if name == "unspecified" else name


def case_state(c: Any) -> str:
    from yrd.interop.v1 import duplicates_pb2

    return _enum(duplicates_pb2.DuplicateCaseState, c.state, "DUPLICATE_CASE_STATE_").upper()


def strength(c: Any) -> str:
    from yrd.interop.v1 import duplicates_pb2

    return _enum(duplicates_pb2.MatchStrength, c.strength, "MATCH_STRENGTH_")


def rule(c: Any) -> str:
    from yrd.interop.v1 import duplicates_pb2

    return _enum(duplicates_pb2.DuplicateRule, c.rule, "DUPLICATE_RULE_").replace("_", " ")


def resolution(value: int) -> str:
    from yrd.interop.v1 import duplicates_pb2

    return _enum(duplicates_pb2.CaseResolution, value, "CASE_RESOLUTION_").upper()


def distance(c: Any) -> str:
    return f"{c.evidence.distance_metres} m" if c.evidence.distance_metres else "-"


def held_count(c: Any) -> str:
    from yrd.interop.v1 import duplicates_pb2

    return str(sum(i.outcome == duplicates_pb2.HOLD_OUTCOME_HELD for i in c.issuances))


CASE_COLS = [
    Col("case", lambda c: c.name, ident=True),
    Col("state", case_state),
    Col("strength", strength),
    Col("first", lambda c: c.first.subject, ident=True),
    Col("second", lambda c: c.second.subject, ident=True),
    Col("distance", distance, optional=True),
    Col("held", held_count, optional=True),
    Col("decisions", lambda c: str(len(c.decisions)), optional=True),
    Col(f"opened ({zone_name()})", lambda c: proto_time(c.open_time), optional=True),
]


def _date(d: Any) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else "…"


def _period(p: Any) -> str:
    return f"{_date(p.start)} – {_date(p.end)}" if (p.start.year or p.end.year) else "-"


def _site(site: Any, *, datum: bool = True) -> str:
    from yrd.interop.v1 import records_pb2

    if not (site.latitude or site.longitude):
        return "-"
    shown = f"{site.latitude}, {site.longitude}"
    if datum:
        name = _enum(records_pb2.CoordinateDatum, site.datum, "COORDINATE_DATUM_").upper()
        shown += f" ({'WGS84' if name == '-' else name})"
    return shown


def _side_rows(first: Any, second: Any) -> list[tuple[str, str, str]]:
    """(field, first, second) rows of a case's two sides, identity keys exactly as filed."""
    from yrd.interop.v1 import records_pb2

    def category(side: Any) -> str:
        return _enum(records_pb2.ScenarioCategory, side.category, "SCENARIO_CATEGORY_").replace(
            "_", " "
        )

    def capacity(side: Any) -> str:
        return f"{side.capacity.value} {side.capacity.unit}" if side.capacity.value else "-"

    fields: list[tuple[str, Any]] = [
        ("region", lambda s: s.region or "(external list)"),
        ("title", lambda s: s.title or "-"),
        ("owner", lambda s: s.owner or "-"),
        ("owner credit code (filed)", lambda s: s.identity.owner_credit_code or "-"),
        ("grid account (filed)", lambda s: s.identity.grid_account or "-"),
        ("site (filed)", lambda s: _site(s.identity.site)),
        ("site (WGS-84, matched)", lambda s: _site(s.site_wgs84, datum=False)),
        ("category", category),
        ("capacity", capacity),
        (f"registered ({zone_name()})", lambda s: proto_time(s.registered_time) or "-"),
        ("crediting period", lambda s: _period(s.crediting_period)),
    ]
    return [(label, cell(first), cell(second)) for label, cell in fields]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _deciding(c: Any, quorums: dict[str, int]) -> str:
    """Each deciding region with its decisions so far over its quorum: ``310000 1/2``."""
    shown = [
        f"{r} {sum(d.region == r for d in c.decisions)}/{quorums.get(r, c.required_approvals)}"
        for r in c.deciding_regions
    ]
    return ", ".join(shown) or "-"


def show_case(c: Any, quorums: dict[str, int]) -> None:
    """A case side by side: both registrations, the evidence, what it holds, the decisions (per
    deciding region, against its quorum in ``quorums``) and the findings."""
    from rich.markup import escape
    from yrd.interop.v1 import records_pb2

    console.print(
        f"[bold]{escape(c.name)}[/bold]  {case_state(c)}  {strength(c)} ({rule(c)})  "
        f"opened {proto_time(c.open_time)}  deciding (decisions/quorum): "
        f"{_deciding(c, quorums)}",
        highlight=False,
    )
    sides = table("", f"first: {c.first.subject}", f"second: {c.second.subject}")
    for label, a, b in _side_rows(c.first, c.second):
        sides.add_row(label, escape(a), escape(b))
    console.print(sides)
    e = c.evidence
    console.print(
        f"evidence: same grid account {_yes(e.same_grid_account)}, same owner credit code "
        f"{_yes(e.same_owner_credit_code)}, distance {distance(c)} (WGS-84), same category "
        f"{_yes(e.same_category)}, capacity ratio {e.capacity_ratio or '-'}",
        highlight=False,
    )
    if c.issuances:
        from yrd.interop.v1 import duplicates_pb2

        held = table("issuance", "monitoring period", "grams", "outcome", title="issuances held")
        for i in c.issuances:
            held.add_row(
                i.issuance,
                _period(i.monitoring_period),
                f"{i.quantity_grams:,}",
                _enum(duplicates_pb2.HoldOutcome, i.outcome, "HOLD_OUTCOME_"),
            )
        console.print(held)
    else:
        console.print("issuances held: none (no overlapping issued periods)")
    if c.decisions:
        decided = table(
            "region/admin",
            "resolution",
            "standing",
            "comment",
            f"at ({zone_name()})",
            title="decisions",
        )
        for d in c.decisions:
            decided.add_row(
                f"{d.region}/{d.admin}",
                resolution(d.resolution),
                d.standing or "-",
                escape(d.comment),
                proto_time(d.decide_time),
            )
        console.print(decided)
    else:
        console.print("decisions: none yet")
    if c.findings:
        found = table("issuance", "serials", "holder", "state", "grams", title="findings")
        for f in c.findings:
            found.add_row(
                f.issuance,
                f"{f.serials.start}..{f.serials.end}",
                f.holder_region,
                _enum(records_pb2.UnitBlockState, f.state, "UNIT_BLOCK_STATE_"),
                f"{f.quantity_grams:,}",
            )
        console.print(found)
    if c.resolve_time.seconds:
        console.print(
            f"resolved {resolution(c.resolution)} at {proto_time(c.resolve_time)}"
            + (f"; standing: {c.standing}" if c.standing else ""),
            highlight=False,
        )


def print_case(case: Any, output: Format, client: Any) -> None:
    """One case as OUTPUT says (a table: side by side, with the regions' quorums CLIENT asks
    the gateway for)."""

    def human() -> None:
        show_case(case, {r.region: r.required_approvals for r in client.gateway_info().regions})

    show(case, output, human=human)


@app.command("list")
def duplicates_list(
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    of_region: Annotated[
        str,
        typer.Option(
            callback=region_code, help="Only cases with a side registered in this region."
        ),
    ] = "",
    state: Annotated[CaseState | None, typer.Option(help="Only cases in this state.")] = None,
    strength_: Annotated[
        Strength | None, typer.Option("--strength", help="Only cases of this strength.")
    ] = None,
    subject: Annotated[
        str,
        typer.Option(
            help="Only cases with this subject on a side (regions/R/projects/ID or "
            "schemes/S/projects/ID)."
        ),
    ] = "",
    page_size: Annotated[
        int,
        typer.Option(min=0, max=1000, help="Cases per page asked of the gateway (0: its default)."),
    ] = 0,
    limit: Annotated[int, typer.Option(min=0, help="At most this many cases (0: every page).")] = 0,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List duplicate cases, newest first."""
    from gateway.contract import MATCH_STRENGTH_PROTO

    with remote.connect(gateway, cert_dir, region, None, name) as client:
        pages = client.duplicate_cases(
            region=of_region,
            state=state.value if state else "",
            strength=(
                MATCH_STRENGTH_PROTO[f"MATCH_STRENGTH_{strength_.value.upper()}"]
                if strength_
                else 0
            ),
            subject=subject,
            page_size=page_size,
        )
        found = list(itertools.islice(pages, limit) if limit else pages)
    show(found, output, cols=CASE_COLS)


@app.command("show")
def duplicates_show(
    case: Annotated[str, typer.Argument(help="duplicateCases/ID")],
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Show a case side by side: both registrations' identity keys as filed, the sites in WGS-84
    and their distance, the evidence, the issuances held, the decisions and the findings."""
    with remote.connect(gateway, cert_dir, region, None, name) as client:
        found = client.get_duplicate_case(case)
        print_case(found, output, client)


def _verdict(distinct: bool, duplicate: bool, standing: str) -> str:
    """The resolution the flags name (a usage error unless exactly one is given)."""
    if distinct == duplicate:
        raise UserError(
            "say either --distinct or --duplicate",
            "--distinct: two projects (the holds are released); --duplicate [--standing SUBJECT]: "
            "one project registered twice (the other side's held issuances are cancelled)",
            ExitCode.USAGE,
        )
    if distinct and standing:
        raise UserError(
            "--standing goes with --duplicate only",
            "a DISTINCT decision names no standing registration",
            ExitCode.USAGE,
        )
    return "DISTINCT" if distinct else "DUPLICATE"


@app.command("resolve")
def duplicates_resolve(
    case: Annotated[str, typer.Argument(help="duplicateCases/ID")],
    comment: Annotated[str, typer.Option(help="Comment (required).")],
    distinct: Annotated[
        bool, typer.Option("--distinct", help="Two distinct projects: release the holds.")
    ] = False,
    duplicate: Annotated[
        bool,
        typer.Option(
            "--duplicate",
            help="One project registered twice: the registration that does not stand has its "
            "held issuances cancelled.",
        ),
    ] = False,
    standing: Annotated[
        str,
        typer.Option(
            help="With --duplicate: the subject of the registration that stands (default: the "
            "earlier one)."
        ),
    ] = "",
    region: RegionOpt = None,
    name: NameOpt = None,
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Decide a duplicate case as an administrator of a deciding region (signed with your key).
    The case is resolved once every deciding region's quorum agrees on the same decision."""
    from gateway.cli.context import resolve

    verdict = _verdict(distinct, duplicate, standing)
    if resolve(gateway, cert_dir, region, None, name).admin is None:
        raise UserError(
            "only an administrator may resolve a duplicate case",
            "pass --admin NAME (or set YRDGW_ADMIN)",
            ExitCode.USAGE,
        )
    check = f"`yrdgw duplicates show {case}`"
    with remote.signing(gateway, cert_dir, region, Role.ADMIN, name, check=check) as client:
        decided = client.resolve_duplicate_case(case, verdict, comment, standing=standing)
        print_case(decided, output, client)
    if output is Format.TABLE and case_state(decided) == "OPEN":
        console.print(
            f"decision recorded; the case stays OPEN until every deciding region's quorum agrees "
            f"({len(decided.decisions)} decision(s) so far)",
            highlight=False,
        )
