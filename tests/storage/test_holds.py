"""Holds of duplicate cases on the ledger, at the service layer, on SQLite and PostgreSQL: held
units refused on propose, retire and accept (UNITS_HELD, nothing changed), released reserved
units going back to held, the resolution's release and cancellation (with findings and a pending
transfer ended), the invariants that know the state. Holds are set up as the detection would
leave them: a case, its ``case_holds`` rows, the issuance's active blocks held."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update
from yrd.interop.v1 import transfer_pb2

from gateway import errors
from gateway.contract import ACTIVE, HELD, HOLD_HELD, HOLD_RELEASED
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir
from gateway.services.ledger import check_invariants
from gateway.services.transfers import DUPLICATE_CANCELLED, cancel_issuances
from gateway.storage.db import Database
from gateway.storage.ledger_holds import (
    Finding,
    HoldStore,
    issuances_still_held,
    release_issuances,
)
from gateway.storage.models import (
    AuditEntryRow,
    CaseHoldRow,
    DuplicateCaseRow,
    TransferRow,
    UnitBlockRow,
)
from tests.storage.test_ledger import AH, JS, NOW, SH, World, _order, _retire, holder_of

I101 = "regions/340000/issuances/AH-QF-2025-0101"  # serials 1_000 .. 373_010_999
I102 = "regions/340000/issuances/AH-QF-2025-0102"  # serials 373_011_000 .. 385_355_999
P101 = "regions/340000/projects/AH-XM-2024-0031"
ADMIN = Identity(Role.ADMIN, AH, "admin-a")
VOLUNTARY = transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY


@pytest.fixture
def world(database: Database, pki: PKIDir) -> World:
    return World(database, pki)


def hold(w: World, case_id: str, *issuances: str) -> None:
    """Open case ``case_id`` holding ``issuances``: their active blocks become held."""
    with w.db.transaction() as s:
        if s.get(DuplicateCaseRow, case_id) is None:
            s.add(
                DuplicateCaseRow(
                    case_id=case_id,
                    state="OPEN",
                    rule="DUPLICATE_RULE_SAME_GRID_ACCOUNT",
                    strength="MATCH_STRENGTH_CERTAIN",
                    first_subject=f"regions/{AH}/projects/{case_id}-a",
                    second_subject=f"regions/{JS}/projects/{case_id}-b",
                    evidence="{}",
                    deciding_regions=f"{AH},{JS}",
                    required_approvals=1,
                    open_time=NOW,
                )
            )
            s.flush()  # the case before its holds (their foreign key)
        s.add_all(CaseHoldRow(case_id=case_id, issuance=i, outcome=HOLD_HELD) for i in issuances)
        s.flush()
        HoldStore(s.connection()).set_state(issuances, (ACTIVE,), HELD)


def end_hold(w: World, case_id: str, outcome: str = HOLD_RELEASED) -> None:
    """The case's own holds marked ``outcome`` (what the resolution does before releasing)."""
    with w.db.transaction() as s:
        s.execute(update(CaseHoldRow).where(CaseHoldRow.case_id == case_id).values(outcome=outcome))


def states(w: World, issuance: str) -> list[tuple[int, int, str, str]]:
    with w.db.transaction() as s:
        rows = s.execute(
            select(
                UnitBlockRow.serial_start,
                UnitBlockRow.serial_end,
                UnitBlockRow.holder_region,
                UnitBlockRow.state,
            )
            .where(UnitBlockRow.issuance_name == issuance)
            .order_by(UnitBlockRow.serial_start)
        ).all()
    return [(a, b, h, st) for a, b, h, st in rows]


def transfer_state(w: World, name: str) -> tuple[str, str | None]:
    with w.db.transaction() as s:
        row = s.execute(
            select(TransferRow.state, TransferRow.reason).where(TransferRow.name == name)
        ).one()
    return row[0], row[1]


def assert_units_held(err: errors.DomainError, *, cases: str, issuance: str) -> None:
    assert type(err) is errors.UnitsHeld
    assert (err.reason, err.code) == ("UNITS_HELD", errors.Code.FAILED_PRECONDITION)
    assert err.metadata["check"] == "4"
    assert err.metadata["cases"] == cases
    assert err.metadata["issuance"] == issuance


# -- refusals ------------------------------------------------------------------------------------


def test_propose_naming_held_units_is_refused_and_changes_nothing(world: World) -> None:
    hold(world, "dc-1", I101)
    hold(world, "dc-2", I101)  # held twice: both cases are named
    world.invariants()
    before = world.snapshot()
    with pytest.raises(errors.DomainError) as refused:
        world.propose(AH, "t-held", SH, [(1_000, 1_999)])
    assert_units_held(refused.value, cases="duplicateCases/dc-1,duplicateCases/dc-2", issuance=I101)
    assert refused.value.metadata["serials"] == "1000-1999"
    assert refused.value.metadata["origin_region"] == AH
    # A range running from a free issuance into the held one is refused too.
    with pytest.raises(errors.UnitsHeld):
        world.propose(AH, "t-across", SH, [(373_010_000, 373_011_999)])
    # By quantity: the project's units are there, but held.
    with pytest.raises(errors.DomainError) as by_quantity:
        world.propose(AH, "t-q", SH, project=P101, vintage=2024, grams=5_000)
    assert_units_held(
        by_quantity.value, cases="duplicateCases/dc-1,duplicateCases/dc-2", issuance=I101
    )
    assert world.snapshot() == before
    # More than was ever issued is still INSUFFICIENT_UNITS, held or not.
    with pytest.raises(errors.InsufficientUnits):
        world.propose(AH, "t-q2", SH, project=P101, vintage=2024, grams=400_000_000)
    # Units of an issuance no case holds move as ever.
    t = world.propose(AH, "t-free", SH, [(373_011_000, 373_011_999)])
    assert world.answer("accept", SH, t.name).state == "COMPLETED"  # type: ignore[attr-defined]
    world.invariants()


def test_retire_naming_held_units_is_refused(world: World) -> None:
    t = world.propose(AH, "t-1", SH, [(1_000, 10_999)])
    world.answer("accept", SH, t.name)  # type: ignore[attr-defined]
    hold(world, "dc-1", I101)
    assert holder_of(world, AH, 5_000) == (SH, HELD)  # held at every holder
    before = world.snapshot()
    with pytest.raises(errors.DomainError) as refused:
        _retire(world, SH, _order("r-1", [(1_000, 1_999)], purpose=VOLUNTARY, beneficiary="x"))
    assert_units_held(refused.value, cases="duplicateCases/dc-1", issuance=I101)
    assert world.snapshot() == before
    world.invariants()


def test_accept_of_held_units_is_refused_and_the_transfer_stays_pending(world: World) -> None:
    t = world.propose(AH, "t-1", SH, [(1_000, 1_999)])
    name = t.name  # type: ignore[attr-defined]
    hold(world, "dc-1", I101)
    assert holder_of(world, AH, 1_500) == (AH, "reserved")  # reserved stays reserved
    assert holder_of(world, AH, 2_000) == (AH, HELD)
    world.invariants()
    before = world.snapshot()
    with pytest.raises(errors.DomainError) as refused:
        world.answer("accept", SH, name)
    assert_units_held(refused.value, cases="duplicateCases/dc-1", issuance=I101)
    assert refused.value.metadata["transfer"] == name
    assert world.snapshot() == before
    assert transfer_state(world, name) == ("PROPOSED", None)
    # Released by the resolution: the very same accept goes through.
    end_hold(world, "dc-1")
    with world.db.transaction() as s:
        assert release_issuances(s, [I101]) == [I101]
    assert world.answer("accept", SH, name).state == "COMPLETED"  # type: ignore[attr-defined]
    assert holder_of(world, AH, 1_500) == (SH, ACTIVE)
    world.invariants()


@pytest.mark.parametrize("ending", ["reject", "cancel", "expire"])
def test_a_pending_transfer_ending_otherwise_releases_held_units_to_held(
    world: World, ending: str
) -> None:
    # The transfer reserves units of a held issuance and of a free one.
    t = world.propose(AH, "t-1", SH, [(373_010_000, 373_011_999)])
    name = t.name  # type: ignore[attr-defined]
    hold(world, "dc-1", I101)
    if ending == "reject":
        world.answer("reject", SH, name, "not now")
    elif ending == "cancel":
        world.answer("cancel", AH, name, "not now")
    else:
        world.now += dt.timedelta(hours=2)
        assert world.transfers.expire_due() == [name]
    assert holder_of(world, AH, 373_010_500) == (AH, HELD)
    assert holder_of(world, AH, 373_011_500) == (AH, ACTIVE)
    assert {st for *_, st in states(world, I101)} == {HELD}
    world.invariants()


# -- the resolution's functions ------------------------------------------------------------------


def test_release_waits_for_the_last_open_case(world: World) -> None:
    hold(world, "dc-1", I101, I102)
    hold(world, "dc-2", I101)
    end_hold(world, "dc-1")
    with world.db.transaction() as s:
        assert issuances_still_held(s, [I101, I102]) == {I101}
        assert release_issuances(s, [I101, I102]) == [I102]
    assert {st for *_, st in states(world, I101)} == {HELD}
    assert {st for *_, st in states(world, I102)} == {ACTIVE}
    world.invariants()
    end_hold(world, "dc-2")
    with world.db.transaction() as s:
        assert issuances_still_held(s, [I101, I102]) == set()
        assert release_issuances(s, [I101]) == [I101]
    assert {st for *_, st in states(world, I101)} == {ACTIVE}
    world.invariants()


def test_cancel_ends_pending_transfers_and_lists_moved_and_retired_units(world: World) -> None:
    # Before the case: 1_000..10_999 moved to SH, of which SH retired 1_000..2_999; 11_000..11_999
    # moved to JS; a transfer to JS of 20_000..20_999 and the last gram of 0101 with 0102's first
    # is pending.
    t = world.propose(AH, "t-sh", SH, [(1_000, 10_999)])
    world.answer("accept", SH, t.name)  # type: ignore[attr-defined]
    _retire(world, SH, _order("r-1", [(1_000, 2_999)], purpose=VOLUNTARY, beneficiary="x"))
    t = world.propose(AH, "t-js", JS, [(11_000, 11_999)])
    world.answer("accept", JS, t.name)  # type: ignore[attr-defined]
    pending = world.propose(AH, "t-p", JS, [(20_000, 20_999), (373_010_999, 373_011_000)])
    pending_name = pending.name  # type: ignore[attr-defined]
    hold(world, "dc-1", I101)
    world.invariants()

    end_hold(world, "dc-1", "cancelled")
    with world.db.transaction() as s:
        findings = cancel_issuances(
            s, [I101], "duplicateCases/dc-1", world.now, ADMIN, envelope=b"\x07" * 32
        )
    assert findings == [
        Finding(I101, 1_000, 2_999, SH, "retired", 2_000),
        Finding(I101, 3_000, 10_999, SH, "cancelled", 8_000),
        Finding(I101, 11_000, 11_999, JS, "cancelled", 1_000),
    ]
    # Everything of 0101 is cancelled but what was retired; the pending transfer is cancelled
    # with the case as cause, and its unit of 0102 is back with AH, active.
    assert {st for *_, st in states(world, I101)} == {"cancelled", "retired"}
    assert holder_of(world, AH, 373_011_000) == (AH, ACTIVE)
    state, reason = transfer_state(world, pending_name)
    assert state == "CANCELLED"
    assert reason is not None and reason.startswith(f"{DUPLICATE_CANCELLED}: duplicateCases/dc-1")
    with world.db.transaction() as s:
        entry = s.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.subject == pending_name)
            .order_by(AuditEntryRow.sequence.desc())
            .limit(1)
        ).scalar_one()
    assert (entry.kind, entry.actor_region, entry.actor) == (
        "transfer.cancelled",
        AH,
        ADMIN.actor,
    )
    detail = json.loads(entry.detail)
    assert detail["envelope_hash"] == "07" * 32
    assert detail["blocks"] == [
        [AH, 20_000, 20_999],
        [AH, 373_010_999, 373_010_999],
        [AH, 373_011_000, 373_011_000],
    ]
    world.invariants()
    # Nothing of 0101 can move any more; 0102 can.
    with pytest.raises(errors.SerialsNotActive):
        world.propose(AH, "t-after", SH, [(20_000, 20_999)])
    world.propose(AH, "t-ok", SH, [(373_011_000, 373_011_999)])


def test_cancel_of_an_issuance_without_movement_has_no_findings(world: World) -> None:
    hold(world, "dc-1", I102)
    end_hold(world, "dc-1", "cancelled")
    with world.db.transaction() as s:
        assert cancel_issuances(s, [I102], "duplicateCases/dc-1", world.now, ADMIN) == []
    assert {st for *_, st in states(world, I102)} == {"cancelled"}
    world.invariants()


# -- invariants ----------------------------------------------------------------------------------


def test_the_invariants_catch_a_held_block_without_a_hold(world: World) -> None:
    with world.db.transaction() as s:
        HoldStore(s.connection()).set_state([I102], (ACTIVE,), HELD)
    report = check_invariants(world.db)
    assert not report.ok
    assert any("is held but no open case holds issuance " + I102 in p for p in report.problems)


def test_the_invariants_catch_an_active_block_of_a_held_issuance(world: World) -> None:
    hold(world, "dc-1", I102)
    world.invariants()
    with world.db.transaction() as s:
        HoldStore(s.connection()).set_state([I102], (HELD,), ACTIVE)
    report = check_invariants(world.db)
    assert report.problems == (
        f"issuance {I102} is held by an open case but 1 of its blocks are active",
    )


def test_list_unit_blocks_filters_held(world: World) -> None:
    hold(world, "dc-1", I102)
    blocks, _ = world.transfers.blocks(state=HELD)
    assert [(b.issuance, b.state) for b in blocks] == [(I102, HELD)]
