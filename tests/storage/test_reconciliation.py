"""The staged comparison on SQLite and PostgreSQL: each kind of planted discrepancy is found, and
exactly the planted ones (recall 1.0, no false alarms) over hypothesis-generated ledgers, checked
against a gram-by-gram model written independently of the SQL."""

from __future__ import annotations

import datetime as dt
import itertools
from array import array
from collections import Counter
from collections.abc import Iterable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from gateway import errors
from gateway.contract import BLOCK_STATE_PROTO
from gateway.security.audit_chain import SortedRowsDigest
from gateway.security.identity import Identity, Role
from gateway.security.reports import verify_report
from gateway.security.signing import raw_public_key
from gateway.services.reconciliation import ReconciliationService
from gateway.services.snapshots import SnapshotBuilder
from gateway.storage.audit_log import audit_log
from gateway.storage.bulk import RowSpool
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    HoldingsSnapshotRow,
    ReconciliationReportRow,
    SnapshotBlockRow,
    SnapshotTotalRow,
    SnapshotTransferRow,
    TransferRow,
    UnitBlockRow,
)
from gateway.storage.reconciliation_store import ReconciliationStore

R, OTHER, THIRD = "310000", "320000", "340000"
ORIGINS = (R, THIRD)
STATES = ("active", "reserved", "retired", "cancelled", "held")
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
Kind = reconciliation_pb2.DiscrepancyKind
Status = reconciliation_pb2.ReconciliationStatus
REGISTRY = Identity(Role.REGISTRY, R)
ADMIN = Identity(Role.ADMIN, R, "alice")

Block = tuple[str, int, int, str, str]
"""(origin, start, end, holder, state)"""


def seed(db: Database, blocks: Iterable[Block], transfers: Iterable[tuple[str, str, str]]) -> None:
    """Ledger rows written directly: blocks, and transfers (name, destination, state) from R; a
    completed transfer gets its audit entry as the ledger writes it."""
    with db.transaction() as session:
        rows = [
            {
                "origin_region": o,
                "issuance_name": f"regions/{o}/issuances/x",
                "project_name": f"regions/{o}/projects/p",
                "vintage": 2025,
                "serial_start": s,
                "serial_end": e,
                "holder_region": h,
                "state": st_,
                "created_at": NOW,
            }
            for o, s, e, h, st_ in blocks
        ]
        if rows:
            session.execute(insert(UnitBlockRow), rows)
        for name, destination, state in transfers:
            session.add(
                TransferRow(
                    name=name,
                    transfer_id=name.rsplit("/", 1)[1],
                    source_region=R,
                    destination_region=destination,
                    purpose=1,
                    state=state,
                    quantity_grams=7,
                    request_sha256=bytes(32),
                    proposal_envelope=bytes(32),
                    proposed_at=NOW,
                    expires_at=NOW + dt.timedelta(hours=1),
                )
            )
            session.flush()
            if state == "COMPLETED":
                audit_log(session.connection()).append(
                    kind="transfer.completed",
                    subject=name,
                    actor_region=destination,
                    actor="registry",
                    detail={},
                    now=NOW,
                )


def wipe(db: Database) -> None:
    """Empty the ledger and reconciliation tables (the audit log stays: it only grows)."""
    with db.transaction() as session:
        for model in (
            ReconciliationReportRow,
            SnapshotBlockRow,
            SnapshotTotalRow,
            SnapshotTransferRow,
            HoldingsSnapshotRow,
            UnitBlockRow,
            TransferRow,
        ):
            session.execute(delete(model))


def snapshot(
    blocks: Iterable[tuple[str, int, int, str]], transfers: Iterable[str]
) -> SnapshotBuilder:
    b = SnapshotBuilder()
    b.header(NOW, transfers)
    b.add((o, s, e, BLOCK_STATE_PROTO[state]) for o, s, e, state in blocks)
    return b


def found_set(report: reconciliation_pb2.ReconciliationReport) -> Counter[tuple[object, ...]]:
    return Counter(
        (
            d.kind,
            d.origin_region,
            tuple((r.start, r.end) for r in d.ranges),
            tuple(d.transfer_ids),
            d.quantity_grams,
        )
        for d in report.discrepancies
    )


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def service(database: Database, key: ed25519.Ed25519PrivateKey) -> ReconciliationService:
    return ReconciliationService(database, key, clock=lambda: NOW)


LEDGER: list[Block] = [
    (R, 0, 99, R, "active"),
    (R, 100, 149, OTHER, "active"),
    (R, 150, 199, R, "retired"),
    (THIRD, 1000, 1999, R, "reserved"),
]
T1, T2, T3 = (f"regions/{R}/transfers/t{i}" for i in (1, 2, 3))


def test_a_registry_in_agreement_gets_completed(
    service: ReconciliationService, database: Database, key: ed25519.Ed25519PrivateKey
) -> None:
    seed(database, LEDGER, [(T1, OTHER, "COMPLETED"), (T2, OTHER, "PROPOSED")])
    _, blocks, names = service.ledger_holdings(R)
    assert names == [T1]
    # Different block boundaries for the same serials and states are no discrepancy.
    held = [(b.origin, b.start, b.end, b.state) for b in blocks]
    assert held[0] == (R, 0, 99, "active")
    split = [(R, 0, 49, "active"), (R, 50, 99, "active"), *held[1:]]
    summary = service.submit(REGISTRY, snapshot(split, names))
    assert (summary.block_count, summary.quantity_grams) == (4, 100 + 50 + 1000)
    report = service.run(ADMIN, R)
    assert report.status == Status.RECONCILIATION_STATUS_COMPLETED
    assert list(report.discrepancies) == []
    assert report.name == "reconciliations/1"
    assert verify_report(raw_public_key(key), report)
    assert service.get(report.name) == report
    tampered = reconciliation_pb2.ReconciliationReport()
    tampered.CopyFrom(report)
    tampered.status = Status.RECONCILIATION_STATUS_TOTALS_INCONSISTENT
    assert not verify_report(raw_public_key(key), tampered)


def test_a_registry_keeping_finer_blocks_stores_none_of_them(
    service: ReconciliationService, database: Database
) -> None:
    """The registry's blocks are stored as its runs: split finer than the ledger's (across
    messages too), they hold the ledger's blocks identically and neither side keeps a block; a
    part in another state is kept, as its run, and found."""
    seed(database, LEDGER, [])
    held = [(R, 0, 99, "active"), (R, 150, 199, "retired"), (THIRD, 1000, 1999, "reserved")]
    fine = [(o, s, e, state) for o, a, b, state in held for s, e in ((a, a + 9), (a + 10, b))]
    b = SnapshotBuilder()
    b.header(NOW, [])
    for i in range(0, len(fine), 3):  # a split falls between two messages too
        b.add((o, s, e, BLOCK_STATE_PROTO[state]) for o, s, e, state in fine[i : i + 3])
    summary = service.submit(REGISTRY, b)
    assert (summary.block_count, summary.quantity_grams) == (6, 100 + 50 + 1000)
    with database.transaction() as session:
        sid = session.execute(select(func.max(HoldingsSnapshotRow.id))).scalar_one()
        assert ReconciliationStore(session).kept_block_digests(sid) == {
            side: (0, SortedRowsDigest().hexdigest()) for side in ("registry", "ledger")
        }
    assert service.run(ADMIN, R).status == Status.RECONCILIATION_STATUS_COMPLETED
    # One gram restated: the registry's runs around it are kept, the ledger's block too.
    restated = [*fine[:1], (R, 10, 10, "retired"), (R, 11, 99, "active"), *fine[2:]]
    service.submit(REGISTRY, snapshot(restated, []))
    with database.transaction() as session:
        sid = session.execute(select(func.max(HoldingsSnapshotRow.id))).scalar_one()
        kept = ReconciliationStore(session).kept_blocks(sid)
    assert sorted(kept["registry"]) == [
        (R, 0, 9, "active"),
        (R, 10, 10, "retired"),
        (R, 11, 99, "active"),
    ]
    assert kept["ledger"] == [(R, 0, 99, "active")]
    found = found_set(service.run(ADMIN, R))
    assert (Kind.DISCREPANCY_KIND_STATE_MISMATCH, R, ((10, 10),), (), 1) in found


def _kept(database: Database) -> dict[str, list[tuple[str, int, int, str]]]:
    with database.transaction() as session:
        sid = session.execute(select(func.max(HoldingsSnapshotRow.id))).scalar_one()
        kept = ReconciliationStore(session).kept_blocks(sid)
    return {side: sorted(blocks) for side, blocks in kept.items()}


def test_a_ledger_keeping_finer_blocks_keeps_none_it_tiles_alike(
    service: ReconciliationService, database: Database
) -> None:
    """Where the ledger has split what the registry holds as one block, the ledger's blocks that
    tile the registry's exactly, each in its state (held counting as active), are held alike:
    neither side keeps them. Blocks that leave a gap or differ in a state are kept and found."""
    seed(
        database,
        [
            (R, 0, 49, R, "active"),
            (R, 50, 99, R, "held"),  # a registry may report held units active
            (R, 200, 209, R, "retired"),
            (R, 210, 219, R, "retired"),
            (R, 220, 229, R, "retired"),
            (R, 300, 349, R, "active"),
            (R, 350, 399, R, "retired"),  # the registry says active: a state mismatch
            (R, 400, 449, R, "active"),  # then 450..499 the ledger does not give it
            (THIRD, 0, 9, R, "active"),
            (THIRD, 10, 19, R, "active"),
        ],
        [],
    )
    alike = [(R, 0, 99, "active"), (R, 200, 229, "retired"), (THIRD, 0, 19, "active")]
    rest = [(R, 300, 349, "active"), (R, 350, 399, "retired"), (R, 400, 449, "active")]
    service.submit(REGISTRY, snapshot(alike, []))
    assert _kept(database) == {"registry": [], "ledger": rest}
    service.submit(REGISTRY, snapshot([*alike, *rest], []))
    assert _kept(database) == {"registry": [], "ledger": []}
    assert service.run(ADMIN, R).status == Status.RECONCILIATION_STATUS_COMPLETED
    # 300..499 active: the ledger's blocks inside differ in a state and leave a gap.
    service.submit(REGISTRY, snapshot([*alike, (R, 300, 499, "active")], []))
    assert _kept(database) == {"registry": [(R, 300, 499, "active")], "ledger": rest}
    found = found_set(service.run(ADMIN, R))
    assert {(kind, ranges) for kind, origin, ranges, _, _ in found if ranges} == {
        (Kind.DISCREPANCY_KIND_STATE_MISMATCH, ((350, 399),)),
        (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, ((450, 499),)),
    }


def test_ledger_blocks_adding_up_across_a_gap_and_an_overhang_do_not_tile(
    service: ReconciliationService, database: Database
) -> None:
    """40 + 60 grams inside a 100-gram block do not tile it when one of them runs past its end."""
    seed(database, [(R, 0, 39, R, "active"), (R, 50, 109, R, "active")], [])
    service.submit(REGISTRY, snapshot([(R, 0, 99, "active")], []))
    assert _kept(database) == {
        "registry": [(R, 0, 99, "active")],
        "ledger": [(R, 0, 39, "active"), (R, 50, 109, "active")],
    }
    found = found_set(service.run(ADMIN, R))
    assert {(kind, ranges) for kind, _, ranges, _, _ in found if ranges} == {
        (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, ((40, 49),)),
        (Kind.DISCREPANCY_KIND_LEDGER_ONLY, ((100, 109),)),
    }


def test_each_planted_kind_is_found_exactly(
    service: ReconciliationService, database: Database
) -> None:
    seed(
        database,
        LEDGER,
        [(T1, OTHER, "COMPLETED"), (T2, OTHER, "COMPLETED"), (T3, OTHER, "REJECTED")],
    )
    claimed = [
        (R, 0, 39, "active"),  # missing range: 40..59 not claimed (ledger-only)
        (R, 60, 99, "active"),
        (R, 120, 159, "retired"),  # partial overlap: 120..149 belong to OTHER; 150..159 agree
        (R, 160, 199, "active"),  # state mismatch: the ledger says retired
        (THIRD, 1000, 1999, "reserved"),
        (THIRD, 5000, 5009, "active"),  # extra range: nobody gives it these
    ]
    # T2 completed but not listed; T3 listed but rejected; "ghost" unknown to the ledger.
    ghost = f"regions/{OTHER}/transfers/ghost"
    service.submit(REGISTRY, snapshot(claimed, [T1, T3, ghost]))
    report = service.run(ADMIN, R)
    assert report.status == Status.RECONCILIATION_STATUS_TOTALS_INCONSISTENT
    assert found_set(report) == Counter(
        [
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, R, (), (), 20),
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, R, (), (), 10),
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, THIRD, (), (), 10),
            (Kind.DISCREPANCY_KIND_LEDGER_ONLY, R, ((40, 59),), (), 20),
            (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, R, ((120, 149),), (), 30),
            (Kind.DISCREPANCY_KIND_STATE_MISMATCH, R, ((160, 199),), (), 40),
            (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, THIRD, ((5000, 5009),), (), 10),
            (Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY, "", (), (T2,), 7),
            (Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_LEDGER, "", (), (T3,), 7),
            (Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_LEDGER, "", (), (ghost,), 0),
        ]
    )
    details = {d.detail for d in report.discrepancies}
    assert "the registry says active, the ledger says retired" in details
    assert "active: registry 120 g, ledger 100 g" in details
    assert "retired: registry 40 g, ledger 50 g" in details


def test_held_units_reported_held_or_active_are_no_discrepancy(
    service: ReconciliationService, database: Database
) -> None:
    # An open duplicate case holds R's units 0..99 and THIRD's 1000..1999 (the ledger says held).
    seed(database, [(R, 0, 99, R, "held"), (R, 100, 199, R, "active"), *LEDGER[3:]], [])
    seed(database, [(THIRD, 2000, 2999, R, "held")], [])
    _, blocks, _ = service.ledger_holdings(R)
    assert (R, 0, 99, "held") in [(b.origin, b.start, b.end, b.state) for b in blocks]
    for claimed in (
        # as the ledger has them (HELD)
        [(b.origin, b.start, b.end, b.state) for b in blocks],
        # not told of the holds yet: ACTIVE, on other boundaries, R's active run joined in
        [(R, 0, 199, "active"), (THIRD, 1000, 1999, "reserved"), (THIRD, 2000, 2999, "active")],
        # partly told: some held, some active
        [
            (R, 0, 49, "held"),
            (R, 50, 199, "active"),
            (THIRD, 1000, 1999, "reserved"),
            (THIRD, 2000, 2499, "active"),
            (THIRD, 2500, 2999, "held"),
        ],
    ):
        service.submit(REGISTRY, snapshot(claimed, []))
        report = service.run(ADMIN, R)
        assert list(report.discrepancies) == [], claimed
        assert report.status == Status.RECONCILIATION_STATUS_COMPLETED
    # One way only: units the ledger has active that the registry calls held do differ.
    service.submit(
        REGISTRY,
        snapshot(
            [
                (R, 0, 99, "held"),
                (R, 100, 199, "held"),
                (THIRD, 1000, 1999, "reserved"),
                (THIRD, 2000, 2999, "held"),
            ],
            [],
        ),
    )
    report = service.run(ADMIN, R)
    assert found_set(report) == Counter(
        [(Kind.DISCREPANCY_KIND_STATE_MISMATCH, R, ((100, 199),), (), 100)]
    )
    assert [d.detail for d in report.discrepancies] == [
        "the registry says held, the ledger says active"
    ]


def test_only_transfers_differ(service: ReconciliationService, database: Database) -> None:
    seed(database, LEDGER, [(T1, OTHER, "COMPLETED")])
    _, blocks, _ = service.ledger_holdings(R)
    service.submit(REGISTRY, snapshot(((b.origin, b.start, b.end, b.state) for b in blocks), []))
    report = service.run(ADMIN, R)
    assert report.status == Status.RECONCILIATION_STATUS_TRANSFERS_INCONSISTENT
    assert [d.kind for d in report.discrepancies] == [
        Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY
    ]


def test_the_transfer_window_starts_at_the_previous_snapshot(
    service: ReconciliationService, database: Database
) -> None:
    seed(database, LEDGER, [(T1, OTHER, "COMPLETED")])
    _, blocks, _ = service.ledger_holdings(R)
    held = [(b.origin, b.start, b.end, b.state) for b in blocks]
    service.submit(REGISTRY, snapshot(held, [T1]))
    assert service.run(ADMIN, R).status == Status.RECONCILIATION_STATUS_COMPLETED
    seed(database, [], [(T2, OTHER, "COMPLETED")])
    # T1 completed before the previous snapshot: not listing it again is no discrepancy.
    service.submit(REGISTRY, snapshot(held, [T2]))
    assert service.run(ADMIN, R).status == Status.RECONCILIATION_STATUS_COMPLETED


def test_bad_snapshots_change_nothing(service: ReconciliationService, database: Database) -> None:
    seed(database, LEDGER, [])

    def rows() -> tuple[int, ...]:
        with database.transaction() as s:
            return tuple(
                s.execute(select(func.count()).select_from(m)).scalar_one()
                for m in (
                    HoldingsSnapshotRow,
                    SnapshotBlockRow,
                    SnapshotTotalRow,
                    SnapshotTransferRow,
                    AuditEntryRow,
                )
            )

    before = rows()
    overlapping = snapshot([(R, 0, 10, "active"), (R, 5, 20, "active")], [])
    with pytest.raises(errors.SnapshotInvalid, match="overlap at serial 5"):
        service.submit(REGISTRY, overlapping)
    nested = snapshot([(R, 0, 100, "active"), (R, 5, 6, "retired"), (R, 50, 60, "active")], [])
    with pytest.raises(errors.SnapshotInvalid, match="overlap at serial 5"):
        service.submit(REGISTRY, nested)
    # Out of serial order, so the check is the database's: it finds the first overlap all the same.
    shuffled = snapshot(
        [
            (OTHER, 0, 9, "active"),
            (R, 50, 60, "active"),
            (R, 61, 70, "active"),
            (R, 0, 55, "active"),
        ],
        [],
    )
    assert not shuffled.in_order
    with pytest.raises(errors.SnapshotInvalid, match=f"blocks of {R} overlap at serial 50"):
        service.submit(REGISTRY, shuffled)
    with pytest.raises(errors.SnapshotInvalid, match="start <= end"):
        snapshot([(R, 9, 3, "active")], [])
    with pytest.raises(errors.SnapshotInvalid, match="transfer name"):
        snapshot([], ["t1"])
    b = SnapshotBuilder()
    with pytest.raises(errors.SnapshotInvalid, match="header must come first"):
        b.add([(R, 0, 1, records_pb2.UNIT_BLOCK_STATE_ACTIVE)])
    b.header(NOW, [])
    with pytest.raises(errors.SnapshotInvalid, match="state must be set"):
        b.add([(R, 0, 1, records_pb2.UNIT_BLOCK_STATE_UNSPECIFIED)])
    future = SnapshotBuilder()
    future.header(NOW + dt.timedelta(hours=1), [])
    with pytest.raises(errors.SnapshotInvalid, match="future"):
        service.submit(REGISTRY, future)
    with pytest.raises(errors.RoleNotAllowed):
        service.submit(ADMIN, snapshot([], []))
    assert rows() == before


def test_who_may_run(service: ReconciliationService, database: Database) -> None:
    with pytest.raises(errors.SnapshotMissing):
        service.run(ADMIN, R)
    with pytest.raises(errors.WrongRegion):
        service.run(Identity(Role.ADMIN, OTHER, "bob"), R)
    with pytest.raises(errors.RoleNotAllowed):
        service.run(REGISTRY, R)
    with pytest.raises(errors.InvalidArgument):
        service.run(Identity(Role.GATEWAY, None), "31")


def test_scheduled_runs_flag_a_registry_that_sent_nothing_new(
    service: ReconciliationService, database: Database
) -> None:
    seed(database, LEDGER, [])
    _, blocks, _ = service.ledger_holdings(R)
    service.submit(REGISTRY, snapshot(((b.origin, b.start, b.end, b.state) for b in blocks), []))
    first = service.run_scheduled([R, OTHER])  # OTHER never sent one: skipped
    assert [r.status for r in first] == [Status.RECONCILIATION_STATUS_COMPLETED]
    again = service.run_scheduled([R])
    assert [r.status for r in again] == [Status.RECONCILIATION_STATUS_MANUAL_INTERVENTION_REQUIRED]
    reports, after = service.list(region=R, page_size=1)
    assert [r.name for r in reports] == [again[0].name] and after
    older, end = service.list(region=R, page_size=1, before=after)
    assert [r.name for r in older] == [first[0].name] and end == 0


# -- recall over generated ledgers --------------------------------------------------------------

LINE = 60
EXAMPLES = itertools.count()


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Block], dict[str, dict[int, str]], list[str], list[str]]:
    """A ledger (blocks on a short serial line per origin, some unissued gaps), and the registry's
    view of it with random plants applied, gram by gram."""
    blocks: list[Block] = []
    for origin in ORIGINS:
        cuts = sorted(draw(st.sets(st.integers(1, LINE - 1), max_size=8)))
        for s, e in itertools.pairwise([0, *cuts, LINE]):
            if draw(st.integers(0, 5)) == 0:
                continue  # never issued
            holder = draw(st.sampled_from((R, R, OTHER)))
            blocks.append((origin, s, e - 1, holder, draw(st.sampled_from(STATES))))
    # A registry may not know yet that a duplicate case holds units: it reports them active.
    late = {(o, s) for o, s, _, h, state in blocks if state == "held" and draw(st.booleans())}
    claims = {
        o: {
            g: "active" if (oo, s) in late else state
            for oo, s, e, h, state in blocks
            if oo == o and h == R
            for g in range(s, e + 1)
        }
        for o in ORIGINS
    }
    for _ in range(draw(st.integers(0, 4))):
        origin = draw(st.sampled_from(ORIGINS))
        a = draw(st.integers(0, LINE + 10))
        b = draw(st.integers(a, LINE + 10))
        plant = draw(st.sampled_from(("drop", "claim", "restate")))
        state = draw(st.sampled_from(STATES))
        for g in range(a, b + 1):
            if plant == "drop":
                claims[origin].pop(g, None)
            elif plant == "claim" or g in claims[origin]:
                claims[origin][g] = state
    # Names unique per example: the audit log outlives wipe().
    tag = next(EXAMPLES)
    ledger_done = [f"regions/{R}/transfers/c{tag}-{i}" for i in range(draw(st.integers(0, 4)))]
    listed = [n for n in ledger_done if draw(st.integers(0, 3)) > 0]
    listed += [f"regions/{OTHER}/transfers/ghost{i}" for i in range(draw(st.integers(0, 2)))]
    return blocks, claims, ledger_done, listed


def registry_blocks(claims: dict[str, dict[int, str]]) -> list[tuple[str, int, int, str]]:
    """Runs of consecutive grams with one state, cut again at every tenth gram (so the
    registry's block boundaries differ from the ledger's)."""
    out = []
    for origin, grams in claims.items():
        run: list[int] = []
        for g in sorted(grams):
            if run and (g != run[-1] + 1 or grams[g] != grams[run[-1]] or g % 10 == 0):
                out.append((origin, run[0], run[-1], grams[run[0]]))
                run = []
            run.append(g)
        if run:
            out.append((origin, run[0], run[-1], grams[run[0]]))
    return out


def expected(
    blocks: list[Block],
    claims: dict[str, dict[int, str]],
    done: list[str],
    listed: list[str],
) -> Counter[tuple[object, ...]]:
    """The model: compare gram by gram, then merge runs of grams with the same finding."""
    want: Counter[tuple[object, ...]] = Counter()
    for origin in ORIGINS:
        ledger = {
            g: state
            for o, s, e, h, state in blocks
            if o == origin and h == R
            for g in range(s, e + 1)
        }
        mine = claims[origin]
        for state in STATES[:-1]:  # held grams count with the active ones
            reg = sum(1 for v in mine.values() if _folded(v) == state)
            led = sum(1 for v in ledger.values() if _folded(v) == state)
            if reg != led:
                want[(Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, origin, (), (), abs(reg - led))] += 1
        findings: dict[tuple[int, str | None, str | None], list[int]] = {}
        for g in sorted(set(ledger) | set(mine)):
            rs, ls = mine.get(g), ledger.get(g)
            if rs == ls or (ls == "held" and rs == "active"):
                continue  # units the ledger holds as held may be reported active
            kind = (
                Kind.DISCREPANCY_KIND_LEDGER_ONLY
                if rs is None
                else Kind.DISCREPANCY_KIND_REGISTRY_ONLY
                if ls is None
                else Kind.DISCREPANCY_KIND_STATE_MISMATCH
            )
            findings.setdefault((kind, rs, ls), []).append(g)
        for (kind, _, _), grams in findings.items():
            ranges: list[tuple[int, int]] = []
            for g in grams:
                if ranges and ranges[-1][1] == g - 1:
                    ranges[-1] = (ranges[-1][0], g)
                else:
                    ranges.append((g, g))
            want[(kind, origin, tuple(ranges), (), len(grams))] += 1
    for name in sorted(set(done) - set(listed)):
        want[(Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY, "", (), (name,), 7)] += 1
    for name in sorted(set(listed) - set(done)):
        want[(Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_LEDGER, "", (), (name,), 0)] += 1
    return want


def _folded(state: str) -> str:
    return "active" if state == "held" else state


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_recall_is_one_and_there_are_no_false_alarms(
    service: ReconciliationService, database: Database, world: tuple[object, ...]
) -> None:
    blocks, claims, done, listed = world  # type: ignore[misc]
    wipe(database)
    seed(database, blocks, [(n, OTHER, "COMPLETED") for n in done])
    service.submit(REGISTRY, snapshot(registry_blocks(claims), listed))
    report = service.run(ADMIN, R)
    want = expected(blocks, claims, done, listed)
    assert found_set(report) == want
    assert (report.status == Status.RECONCILIATION_STATUS_COMPLETED) == (not want)


def test_blocks_out_of_order_but_apart_are_accepted(
    service: ReconciliationService, database: Database
) -> None:
    seed(database, [(R, 0, 99, R, "active")], [])
    b = snapshot([(R, 50, 99, "active"), (OTHER, 5, 9, "active"), (R, 0, 49, "active")], [])
    assert not b.in_order
    summary = service.submit(REGISTRY, b)
    assert (summary.block_count, summary.quantity_grams) == (3, 105)
    report = service.run(ADMIN, R)
    assert found_set(report) == Counter(
        {
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, OTHER, (), (), 5): 1,
            (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, OTHER, ((5, 9),), (), 5): 1,
        }
    )


def test_the_spool_keeps_rows_in_order_through_its_file() -> None:
    rows = [(R, i, i + 1, "active") for i in range(0, 40, 2)]
    with RowSpool(chunk=3, in_memory=64) as spool:
        for i in range(0, len(rows), 2):
            spool.extend(rows[i : i + 2])
        assert spool.count == len(rows)
        assert [r for chunk in spool.chunks() for r in chunk] == rows


def test_the_spool_keeps_columns_and_rows_in_order_through_its_file() -> None:
    """Columns (a shared value, a list, an int64 array) interleaved with tuples come back as the
    same tuples in the order appended, in memory and through the spilled file alike."""
    expected: list[tuple[object, ...]] = []
    with RowSpool(chunk=5, in_memory=64) as spool:
        for k in range(6):
            starts = [k * 100 + i for i in range(k + 1)]
            states = ["active" if i % 2 else "retired" for i in range(k + 1)]
            spool.extend_columns(k + 1, R, array("q", starts), [s + 1 for s in starts], states)
            expected += zip([R] * (k + 1), starts, [s + 1 for s in starts], states, strict=True)
            row = (OTHER, 10_000 + k, 10_001 + k, "active")
            spool.extend([row])
            expected.append(row)
        spool.extend_columns(0, R, array("q"), [], "active")  # nothing
        spool.extend_columns(2, OTHER, array("q", [2**62, 2**63 - 1]), [1, 2], "held")
        expected += [(OTHER, 2**62, 1, "held"), (OTHER, 2**63 - 1, 2, "held")]
        assert spool.count == len(expected)
        assert [r for piece in spool.chunks() for r in piece] == expected


def test_a_snapshot_stored_before_0008_reconciles_as_before(
    sqlite_database: Database, key: ed25519.Ed25519PrivateKey
) -> None:
    """Older snapshots hold every block of both sides; the migration gives them their totals."""
    from alembic import command

    from gateway.storage.db import alembic_config

    db = sqlite_database
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO holdings_snapshots (id, region, snapshot_time, received_at, audit_sequence,"
            " submitted_by, block_count, quantity_grams) VALUES"
            f" (1, '{R}', '2026-11-25 09:00:00', '2026-11-25 09:00:00', 0, 'registry', 2, 200)"
        )
        conn.exec_driver_sql(
            "INSERT INTO snapshot_blocks"
            " (snapshot_id, side, origin_region, serial_start, serial_end, state) VALUES"
            f" (1, 'registry', '{R}', 0, 99, 'active'), (1, 'registry', '{R}', 100, 199, 'retired'),"
            f" (1, 'ledger', '{R}', 0, 99, 'active'), (1, 'ledger', '{R}', 100, 199, 'active')"
        )
    db.upgrade()
    report = ReconciliationService(db, key).run(ADMIN, R)
    assert found_set(report) == Counter(
        {
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, R, (), (), 100): 2,
            (Kind.DISCREPANCY_KIND_STATE_MISMATCH, R, ((100, 199),), (), 100): 1,
        }
    )
