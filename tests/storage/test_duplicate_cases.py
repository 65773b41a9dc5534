"""Resolving duplicate cases at the service layer, on SQLite and PostgreSQL: decisions and
quorums, what DISTINCT and DUPLICATE do to the held issuances (released, cancelled with pending
transfers ended and findings), an issuance held by two cases, refusals that change nothing, the
audit entries, and the ledger's invariants after each step.

The case is opened here with the detection's own storage (``DuplicateStore``) and the ledger's
hold (``LedgerStore.hold_issuances``), so these tests do not depend on detection's rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from yrd.interop.v1 import duplicate_service_pb2, duplicates_pb2, records_pb2, transfer_pb2

import mutual_recognition as mr
from gateway import errors
from gateway.client import EnvelopeSigner
from gateway.contract import CASE_VERDICT_TYPE, duplicate_case_name
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.duplicate_cases import DuplicateCaseService
from gateway.storage.db import Database
from gateway.storage.duplicate_store import DuplicateStore
from gateway.storage.ledger_store import LedgerStore
from gateway.storage.models import AuditEntryRow, TransferRow
from tests.storage.test_ledger import AH, JS, SH, World, _order, _retire, holder_of

SH_PROJECT = "regions/310000/projects/SHCI-P-2024-000123"
JS_PROJECT = "regions/320000/projects/JS-XM-2024-0456"
SH_ISSUANCE = "regions/310000/issuances/SHCI-I-2025-000045"
JS_ISSUANCE = "regions/320000/issuances/JS-QF-2025-0012"
SH_SERIALS = (1_000_001_000, 1_392_700_999)
JS_SERIALS = (20_001_000_000, 20_502_999_999)
EXTERNAL = "schemes/CCER/projects/CCER-0042"
R = duplicates_pb2


class CaseWorld(World):
    """The ledger world with administrators' signers and the duplicate case service."""

    def __init__(self, db: Database, pki: PKIDir, policy: mr.ApprovalPolicy) -> None:
        super().__init__(db, pki)
        self.admins: dict[tuple[str, str], EnvelopeSigner] = {
            (r, n): EnvelopeSigner(load_signing_key(pki.admin(r, n).signing_key))
            for r in (SH, JS, AH)
            for n in ("admin-a", "admin-b")
        }
        self.cases = DuplicateCaseService(db, policy, clock=lambda: self.now)

    def open_case(
        self,
        case_id: str,
        first: str,
        second: str,
        deciding: tuple[str, ...],
        holds: tuple[str, ...],
    ) -> str:
        with self.db.transaction() as s:
            conn = s.connection()
            store = DuplicateStore(conn)
            store.add_case(
                case_id=case_id,
                rule="DUPLICATE_RULE_SAME_GRID_ACCOUNT",
                strength="MATCH_STRENGTH_CERTAIN",
                first_subject=first,
                second_subject=second,
                evidence=json.dumps(
                    {
                        "same_grid_account": True,
                        "same_owner_credit_code": True,
                        "distance_metres": "37.4",
                        "same_category": True,
                        "capacity_ratio": "0.9411",
                    }
                ),
                deciding_regions=deciding,
                required_approvals=1,
                open_time=self.now,
            )
            store.add_holds(case_id, list(holds))
            LedgerStore(conn).hold_issuances(list(holds))
        return duplicate_case_name(case_id)

    def decide(
        self,
        region: str,
        admin: str,
        case: str,
        resolution: duplicates_pb2.CaseResolution.ValueType,
        standing: str = "",
        comment: str = "checked the site",
    ) -> duplicates_pb2.DuplicateCase:
        signer = self.admins[(region, admin)]
        body = duplicate_service_pb2.CaseVerdict(
            duplicate_case=case, resolution=resolution, standing=standing, comment=comment
        ).SerializeToString()
        head = signer.head()
        env = signer.sign(CASE_VERDICT_TYPE, body, now=self.now)
        try:
            return self.cases.resolve(Identity(Role.ADMIN, region, admin), env)
        except errors.DomainError:
            signer.rewind(*head)
            raise

    def audit_kinds(self, subject: str) -> list[str]:
        with self.db.transaction() as s:
            return list(
                s.execute(
                    select(AuditEntryRow.kind)
                    .where(AuditEntryRow.subject == subject)
                    .order_by(AuditEntryRow.sequence)
                ).scalars()
            )

    def audit_detail(self, subject: str, kind: str) -> dict[str, object]:
        with self.db.transaction() as s:
            detail = s.execute(
                select(AuditEntryRow.detail).where(
                    AuditEntryRow.subject == subject, AuditEntryRow.kind == kind
                )
            ).scalar_one()
        loaded: dict[str, object] = json.loads(detail)
        return loaded


@pytest.fixture
def world(database: Database, pki: PKIDir) -> CaseWorld:
    return CaseWorld(database, pki, mr.ApprovalPolicy())


@pytest.fixture
def quorum_two(database: Database, pki: PKIDir) -> CaseWorld:
    return CaseWorld(database, pki, mr.ApprovalPolicy(approvals={SH: 2, JS: 2}))


def outcomes(case: duplicates_pb2.DuplicateCase) -> dict[str, int]:
    return {h.issuance: h.outcome for h in case.issuances}


def test_distinct_by_both_regions_releases_the_holds(world: CaseWorld) -> None:
    case = world.open_case("dc-1", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    assert holder_of(world, SH, SH_SERIALS[0]) == (SH, "held")
    world.invariants()
    after = world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    assert after.state == R.DUPLICATE_CASE_STATE_OPEN
    assert [(d.region, d.admin) for d in after.decisions] == [(SH, "admin-a")]
    assert after.decisions[0].envelope.content_type == CASE_VERDICT_TYPE
    assert holder_of(world, JS, JS_SERIALS[0]) == (JS, "held")
    done = world.decide(JS, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    assert done.state == R.DUPLICATE_CASE_STATE_DISTINCT
    assert done.resolution == R.CASE_RESOLUTION_DISTINCT
    assert done.standing == ""
    assert done.HasField("resolve_time")
    assert outcomes(done) == {
        SH_ISSUANCE: R.HOLD_OUTCOME_RELEASED,
        JS_ISSUANCE: R.HOLD_OUTCOME_RELEASED,
    }
    assert holder_of(world, SH, SH_SERIALS[0]) == (SH, "active")
    assert holder_of(world, JS, JS_SERIALS[1]) == (JS, "active")
    world.invariants()
    assert world.audit_kinds(case) == [
        "duplicate_case.decision",
        "duplicate_case.decision",
        "duplicate_case.resolved",
    ]
    resolved = world.audit_detail(case, "duplicate_case.resolved")
    assert resolved["v"] == 2
    assert resolved["released"] == [SH_ISSUANCE, JS_ISSUANCE]
    assert resolved["cancelled"] == [] and resolved["findings"] == []
    # The view: sides as filed, the evidence, the issuances' periods and quantities.
    assert done.first.subject == SH_PROJECT and done.second.region == JS
    assert done.first.title == "浦东某园区屋顶分布式光伏"
    assert done.first.capacity.value == "0.85"
    assert done.evidence.distance_metres == "37.4"
    assert done.rule == R.DUPLICATE_RULE_SAME_GRID_ACCOUNT
    assert done.strength == R.MATCH_STRENGTH_CERTAIN
    assert list(done.deciding_regions) == [SH, JS]
    held = {h.issuance: h for h in done.issuances}
    assert held[JS_ISSUANCE].quantity_grams == 502_000_000
    assert held[JS_ISSUANCE].monitoring_period.start.year == 2024
    # The same envelope resent is answered with the case; nothing changes.
    assert world.cases.get(case) == done


def test_duplicate_cancels_the_other_side_with_pending_transfers_and_findings(
    world: CaseWorld,
) -> None:
    # Before the case: Shanghai moved part of its issuance to Anhui, retired another part, and
    # proposed a third to Jiangsu (pending when the case opens).
    s0 = SH_SERIALS[0]
    moved = world.propose(SH, "to-ah", AH, [(s0, s0 + 999)], origin=SH)
    world.answer("accept", AH, moved.name)  # type: ignore[attr-defined]
    _retire(
        world,
        SH,
        _order(
            "ret-1",
            [(s0 + 1000, s0 + 1499)],
            origin=SH,
            purpose=transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
            beneficiary="某公司",
        ),
    )
    pending = world.propose(SH, "to-js", JS, [(s0 + 2000, s0 + 2999)], origin=SH)
    case = world.open_case("dc-2", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    assert holder_of(world, SH, s0) == (AH, "held")  # moved units are held too
    assert holder_of(world, SH, s0 + 1000) == (SH, "retired")
    assert holder_of(world, SH, s0 + 2000) == (SH, "reserved")
    world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DUPLICATE, standing=JS_PROJECT)
    done = world.decide(JS, "admin-b", case, R.CASE_RESOLUTION_DUPLICATE, standing=JS_PROJECT)
    assert done.state == R.DUPLICATE_CASE_STATE_DUPLICATE
    assert done.standing == JS_PROJECT
    assert outcomes(done) == {
        SH_ISSUANCE: R.HOLD_OUTCOME_CANCELLED,
        JS_ISSUANCE: R.HOLD_OUTCOME_RELEASED,
    }
    # Every unit of the Shanghai issuance is cancelled, wherever it was; retired stays retired.
    assert holder_of(world, SH, s0) == (AH, "cancelled")
    assert holder_of(world, SH, s0 + 1000) == (SH, "retired")
    assert holder_of(world, SH, s0 + 2000) == (SH, "cancelled")
    assert holder_of(world, SH, SH_SERIALS[1]) == (SH, "cancelled")
    assert holder_of(world, JS, JS_SERIALS[0]) == (JS, "active")
    with world.db.transaction() as s:
        t = s.execute(select(TransferRow).where(TransferRow.name == pending.name)).scalar_one()  # type: ignore[attr-defined]
        assert t.state == "CANCELLED"
        assert t.reason is not None and t.reason.startswith("DUPLICATE_CANCELLED: " + case)
    findings = [
        (f.issuance, f.serials.start, f.serials.end, f.holder_region, f.state, f.quantity_grams)
        for f in done.findings
    ]
    assert findings == [
        (SH_ISSUANCE, s0, s0 + 999, AH, records_pb2.UNIT_BLOCK_STATE_CANCELLED, 1000),
        (SH_ISSUANCE, s0 + 1000, s0 + 1499, SH, records_pb2.UNIT_BLOCK_STATE_RETIRED, 500),
    ]
    world.invariants()
    resolved = world.audit_detail(case, "duplicate_case.resolved")
    assert resolved["cancelled"] == [SH_ISSUANCE]
    assert resolved["released"] == [JS_ISSUANCE]
    assert len(resolved["findings"]) == 2  # type: ignore[arg-type]
    assert "transfer.cancelled" in world.audit_kinds(pending.name)  # type: ignore[attr-defined]


def test_empty_standing_means_the_earlier_registration(world: CaseWorld) -> None:
    case = world.open_case("dc-3", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DUPLICATE)  # the first: Shanghai
    done = world.decide(JS, "admin-a", case, R.CASE_RESOLUTION_DUPLICATE, standing=SH_PROJECT)
    assert done.state == R.DUPLICATE_CASE_STATE_DUPLICATE
    assert done.standing == SH_PROJECT
    assert [d.standing for d in done.decisions] == [SH_PROJECT, SH_PROJECT]
    assert holder_of(world, JS, JS_SERIALS[0]) == (JS, "cancelled")
    assert holder_of(world, SH, SH_SERIALS[0]) == (SH, "active")
    assert list(done.findings) == []
    world.invariants()


def test_quorum_two_and_disagreement(quorum_two: CaseWorld) -> None:
    w = quorum_two
    case = w.open_case("dc-4", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    w.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    w.decide(JS, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    still = w.decide(JS, "admin-b", case, R.CASE_RESOLUTION_DUPLICATE)
    assert still.state == R.DUPLICATE_CASE_STATE_OPEN  # Jiangsu disagrees with itself
    w.decide(SH, "admin-b", case, R.CASE_RESOLUTION_DISTINCT)
    assert w.cases.get(case).state == R.DUPLICATE_CASE_STATE_OPEN  # Jiangsu has one DISTINCT
    assert holder_of(w, SH, SH_SERIALS[0]) == (SH, "held")
    assert len(w.cases.get(case).decisions) == 4


def test_refusals_change_nothing(world: CaseWorld) -> None:
    case = world.open_case("dc-5", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    before = world.snapshot()
    with pytest.raises(errors.NotDecidingRegion):
        world.decide(AH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    with pytest.raises(errors.StandingInvalid):
        world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT, standing=SH_PROJECT)
    with pytest.raises(errors.StandingInvalid):
        world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DUPLICATE, standing=EXTERNAL)
    with pytest.raises(errors.DuplicateCaseNotFound):
        world.decide(SH, "admin-a", "duplicateCases/dc-none", R.CASE_RESOLUTION_DISTINCT)
    with pytest.raises(errors.InvalidArgument):
        world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT, comment="  ")
    with pytest.raises(errors.RoleNotAllowed):
        world.cases.resolve(
            Identity(Role.REGISTRY, SH), world.envelope(SH, CASE_VERDICT_TYPE, b"x")
        )
    world.signers[SH].rewind(*world.signers[SH].head())
    assert world.snapshot() == before
    world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    with pytest.raises(errors.CaseAlreadyDecided):
        world.decide(SH, "admin-a", case, R.CASE_RESOLUTION_DUPLICATE)
    world.decide(JS, "admin-a", case, R.CASE_RESOLUTION_DISTINCT)
    with pytest.raises(errors.DuplicateCaseClosed):
        world.decide(SH, "admin-b", case, R.CASE_RESOLUTION_DISTINCT)
    assert len(world.cases.get(case).decisions) == 2


def test_an_issuance_held_by_another_open_case_stays_held(world: CaseWorld) -> None:
    a = world.open_case("dc-6", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    b = world.open_case("dc-7", EXTERNAL, SH_PROJECT, (SH,), (SH_ISSUANCE,))
    world.decide(SH, "admin-a", a, R.CASE_RESOLUTION_DISTINCT)
    done = world.decide(JS, "admin-a", a, R.CASE_RESOLUTION_DISTINCT)
    assert outcomes(done)[SH_ISSUANCE] == R.HOLD_OUTCOME_RELEASED
    assert holder_of(world, SH, SH_SERIALS[0]) == (SH, "held")  # case b still holds it
    assert holder_of(world, JS, JS_SERIALS[0]) == (JS, "active")
    assert world.audit_detail(a, "duplicate_case.resolved")["still_held"] == [SH_ISSUANCE]
    # Case b, against an external list, is Shanghai's alone; the external project stands.
    with pytest.raises(errors.NotDecidingRegion):
        world.decide(JS, "admin-a", b, R.CASE_RESOLUTION_DUPLICATE, standing=EXTERNAL)
    done_b = world.decide(SH, "admin-b", b, R.CASE_RESOLUTION_DUPLICATE, standing=EXTERNAL)
    assert done_b.state == R.DUPLICATE_CASE_STATE_DUPLICATE
    assert outcomes(done_b) == {SH_ISSUANCE: R.HOLD_OUTCOME_CANCELLED}
    assert holder_of(world, SH, SH_SERIALS[0]) == (SH, "cancelled")
    assert done_b.first.subject == EXTERNAL and done_b.first.region == ""
    world.invariants()


def test_list_filters_and_pages_newest_first(world: CaseWorld) -> None:
    names = []
    for i in range(5):
        world.now += dt.timedelta(seconds=1)
        second = f"regions/{JS}/projects/P-{i}" if i % 2 else f"schemes/CCER/projects/C-{i}"
        names.append(
            world.open_case(f"dc-l{i}", SH_PROJECT, second, (SH, JS) if i % 2 else (SH,), ())
        )
    seen: list[str] = []
    token = ""
    while True:
        page, token = world.cases.list_cases(page_size=2, page_token=token)
        assert len(page) <= 2
        seen.extend(c.name for c in page)
        if not token:
            break
    assert seen == names[::-1]
    js, _ = world.cases.list_cases(region=JS)
    assert [c.name for c in js] == [names[3], names[1]]
    ext, _ = world.cases.list_cases(subject="schemes/CCER/projects/C-2")
    assert [c.name for c in ext] == [names[2]]
    world.decide(SH, "admin-a", names[0], R.CASE_RESOLUTION_DISTINCT)
    closed, _ = world.cases.list_cases(state=R.DUPLICATE_CASE_STATE_DISTINCT)
    assert [c.name for c in closed] == [names[0]]
    opened, _ = world.cases.list_cases(
        state=R.DUPLICATE_CASE_STATE_OPEN, strength=R.MATCH_STRENGTH_CERTAIN
    )
    assert len(opened) == 4
    assert world.cases.list_cases(strength=R.MATCH_STRENGTH_POSSIBLE) == ([], "")
    for bad in ("x", "1.", "99999999999999999999.dc-1", "9999999999999999999.dc-1"):
        with pytest.raises(errors.CursorInvalid):
            world.cases.list_cases(page_token=bad)
    with pytest.raises(errors.DuplicateCaseNotFound):
        world.cases.get("duplicateCases/nope")


def test_the_same_envelope_again_is_answered_as_the_first(world: CaseWorld) -> None:
    case = world.open_case("dc-8", SH_PROJECT, JS_PROJECT, (SH, JS), (SH_ISSUANCE, JS_ISSUANCE))
    signer = world.admins[(SH, "admin-a")]
    body = duplicate_service_pb2.CaseVerdict(
        duplicate_case=case, resolution=R.CASE_RESOLUTION_DISTINCT, comment="ok"
    ).SerializeToString()
    env = signer.sign(CASE_VERDICT_TYPE, body, now=world.now)
    admin = Identity(Role.ADMIN, SH, "admin-a")
    first = world.cases.resolve(admin, env)
    before = world.snapshot()
    assert world.cases.resolve(admin, env) == first
    assert world.snapshot() == before
    assert world.audit_kinds(case) == ["duplicate_case.decision"]
