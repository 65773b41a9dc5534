"""The demo's duplicate registration step: one rooftop PV plant filed in Qingpu (Shanghai, 310118)
and in Wujiang (Jiangsu, 320509, its site given in GCJ-02); the gateway opens a certain case and
holds both registrations' overlapping issuances; a transfer of held units is refused; both
regions' administrators (each region's quorum) resolve it as one plant registered twice with
Qingpu standing, and the Wujiang issuance is cancelled whole.
"""

from __future__ import annotations

from rich.console import Console

from gateway.client import GatewayClient
from gateway.errors import DomainError
from gateway.samples import (
    QINGPU_ISSUANCE,
    QINGPU_PROJECT,
    WUJIANG_ISSUANCE,
    duplicate_pair_documents,
)
from gateway.security.identity import Role
from gateway.security.pki import PKIDir

COMMENT = "同一电网户号、同一业主，相距约 31 米：同一电站两地登记 / one plant filed twice"


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()


def duplicate_step(
    console: Console,
    step: int,
    target: str,
    pki: PKIDir,
    registries: list[GatewayClient],
    sh_admins: tuple[GatewayClient, GatewayClient],
) -> int:
    """Run the step (numbered ``step``) with the regions' registry clients and Shanghai's two
    administrators; returns the number of failures."""
    from yrd.interop.v1 import duplicates_pb2, records_pb2

    sh, js = registries[0], registries[1]
    failures = 0
    pair = duplicate_pair_documents()
    published = sh.publish(pair["310000"])
    failures += not all(r.accepted for r in published)
    console.print(
        f"[bold]{step}.[/bold] one rooftop PV plant filed twice: Shanghai (Qingpu 310118) files "
        f"{QINGPU_PROJECT} (site in WGS-84) and issues its 2024 output ({QINGPU_ISSUANCE})"
    )
    (project,) = js.publish(pair["320000"][:1])
    failures += not project.accepted
    cases = js.list_duplicate_cases(subject=QINGPU_PROJECT)
    if len(cases) != 1 or cases[0].strength != duplicates_pb2.MATCH_STRENGTH_CERTAIN:
        console.print(f"[red]   expected one certain duplicate case, found {len(cases)}[/red]")
        return failures + 1
    case = cases[0]
    e = case.evidence
    same = [
        label
        for label, alike in (
            ("grid account", e.same_grid_account),
            ("owner credit code", e.same_owner_credit_code),
        )
        if alike
    ]
    console.print(
        f"   Jiangsu (Wujiang 320509) files {case.second.subject} (site given in GCJ-02): the "
        f"gateway opens {case.name}, "
        f"{_short(duplicates_pb2.MatchStrength.Name(case.strength), 'MATCH_STRENGTH_')}: the "
        f"same {' and '.join(same) or '-'}, {e.distance_metres} m apart in WGS-84"
    )
    (issued,) = js.publish(pair["320000"][1:])
    failures += not issued.accepted
    case = js.get_duplicate_case(case.name)
    held = [i.issuance for i in case.issuances if i.outcome == duplicates_pb2.HOLD_OUTCOME_HELD]
    failures += WUJIANG_ISSUANCE not in held
    console.print(
        f"   Jiangsu issues the same months ({WUJIANG_ISSUANCE}): held at acceptance; the case "
        f"holds {', '.join(held)}"
    )
    wujiang = js.holdings("320000")
    serials = next(b.serials for b in wujiang if b.issuance == WUJIANG_ISSUANCE)
    try:
        js.propose_transfer(
            "js-sh-2025-held", "310000", origin="320000", ranges=[(serials.start, serials.end)]
        )
        failures += 1
        console.print("[red]   a transfer of held units was accepted[/red]")
    except DomainError as exc:
        failures += exc.reason != "UNITS_HELD"
        console.print(
            f"   Jiangsu proposes a transfer of those units: refused, {exc.code.name} / "
            f"{exc.reason} ({exc.metadata.get('cases', '')})"
        )
    with GatewayClient(target, pki, region="320000", role=Role.ADMIN, name="admin-a") as js_admin:
        for admin in (*sh_admins, js_admin):
            case = admin.resolve_duplicate_case(
                case.name, "DUPLICATE", COMMENT, standing=QINGPU_PROJECT
            )
    state = duplicates_pb2.DuplicateCaseState.Name(case.state).removeprefix("DUPLICATE_CASE_STATE_")
    quorum = {r.region: r.required_approvals for r in sh.gateway_info().regions}
    failures += case.state != duplicates_pb2.DUPLICATE_CASE_STATE_DUPLICATE
    outcomes = {
        i.issuance: _short(duplicates_pb2.HoldOutcome.Name(i.outcome), "HOLD_OUTCOME_")
        for i in case.issuances
    }
    console.print(
        f"   Shanghai's admin-a and admin-b (quorum {quorum.get('310000')}) and Jiangsu's "
        f"admin-a (quorum {quorum.get('320000')}) sign DUPLICATE, {QINGPU_PROJECT} standing: the "
        f"case is {state}; "
        + "; ".join(f"{name} {outcome}" for name, outcome in sorted(outcomes.items()))
    )
    cancelled = [b for b in js.holdings("320000") if b.issuance == WUJIANG_ISSUANCE]
    failures += not cancelled or any(
        b.state != records_pb2.UNIT_BLOCK_STATE_CANCELLED for b in cancelled
    )
    failures += outcomes.get(WUJIANG_ISSUANCE) != "cancelled"
    failures += outcomes.get(QINGPU_ISSUANCE) != "released"
    # Every registry reads the new records, as after step 7, so the federation stays in sync.
    for client in registries:
        list(client.subscribe())
    return failures
