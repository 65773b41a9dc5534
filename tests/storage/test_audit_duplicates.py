"""`audit verify --database-url` after a run with duplicate cases, built through the services on
SQLite and PostgreSQL: detection opens cases when projects are published (and when an external
list is imported), holds the overlapping issuances (a transfer rejected meanwhile returns its
units to held), and administrators resolve one case DUPLICATE (the other side's issuance
cancelled with a pending transfer, findings for units moved to Anhui and retired) and one
DISTINCT (one issuance released, one still held by an open case against the external list).
The database verifies clean; one changed value in each duplicate table (and in the held and
cancelled blocks) is named by table and row; rows removed or added are named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from yrd.interop.v1 import duplicate_service_pb2, duplicates_pb2, transfer_pb2

from adapters import default_registry
from gateway.client import EnvelopeSigner
from gateway.contract import CASE_VERDICT_TYPE, duplicate_case_name
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.audit import AuditReader
from gateway.services.audit_verify import COVERED
from gateway.services.duplicate_cases import DuplicateCaseService
from gateway.services.duplicates import import_external
from gateway.services.exchange import ExchangeService
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    Base,
    CaseHoldRow,
    DuplicateCaseRow,
    IdentitySubjectRow,
)
from mutual_recognition import ApprovalPolicy
from tests.storage.test_audit_tamper import _flip, _restore
from tests.storage.test_duplicates import (
    code,
    external,
    js_issuance,
    js_project,
    north,
    sh_issuance,
    sh_project,
)
from tests.storage.test_ledger import AH, JS, SH, World, _order, _retire, holder_of

R = duplicates_pb2
SH_D, JS_D = f"regions/{SH}/projects/SH-D", f"regions/{JS}/projects/JS-D"
SH_D_I, JS_D_I = f"regions/{SH}/issuances/SH-D-I1", f"regions/{JS}/issuances/JS-D-I1"
SH_N, JS_N = f"regions/{SH}/projects/SH-N", f"regions/{JS}/projects/JS-N"
SH_N_I, JS_N_I = f"regions/{SH}/issuances/SH-N-I1", f"regions/{JS}/issuances/JS-N-I1"
G0 = 5_000_001_000
"""The first gram serial of SH-D-I1 (kilogram serial 5,000,001)."""
ACCOUNT = "3100077777"


class CaseRun(World):
    """The ledger world (the samples of Shanghai, Jiangsu and Anhui published) with detection
    on the publish path, administrators' signers and the duplicate case service."""

    def __init__(self, db: Database, pki: PKIDir) -> None:
        super().__init__(db, pki)
        policy = ApprovalPolicy()
        self.exchange = ExchangeService(
            db, default_registry, clock=lambda: self.now, approvals=policy, sign_time_skew=None
        )
        self.admins = {
            (r, n): EnvelopeSigner(load_signing_key(pki.admin(r, n).signing_key))
            for r in (SH, JS)
            for n in ("admin-a", "admin-b")
        }
        self.cases = DuplicateCaseService(db, policy, clock=lambda: self.now)
        self.policy = policy

    def tick(self) -> None:
        self.now += dt.timedelta(minutes=1)

    def publish(self, region: str, *documents: bytes) -> None:
        self.tick()
        content_type = default_registry.get(region).content_types[0]
        envelopes = [self.signers[region].sign(content_type, d, now=self.now) for d in documents]
        outcomes = self.exchange.publish(Identity(Role.REGISTRY, region), envelopes)
        assert all(o.accepted for o in outcomes), [o.error for o in outcomes]

    def case_of(self, subject: str) -> str:
        with self.db.transaction() as s:
            case_id = s.execute(
                select(DuplicateCaseRow.case_id).where(DuplicateCaseRow.second_subject == subject)
            ).scalar_one()
        return duplicate_case_name(case_id)

    def decide(
        self,
        region: str,
        admin: str,
        case: str,
        resolution: R.CaseResolution.ValueType,
        standing: str = "",
    ) -> R.DuplicateCase:
        self.tick()
        body = duplicate_service_pb2.CaseVerdict(
            duplicate_case=case, resolution=resolution, standing=standing, comment="site visited"
        ).SerializeToString()
        env = self.admins[(region, admin)].sign(CASE_VERDICT_TYPE, body, now=self.now)
        return self.cases.resolve(Identity(Role.ADMIN, region, admin), env)


def run_with_cases(db: Database, pki: PKIDir) -> CaseRun:
    """The run the tests verify (see the module's docstring)."""
    w = CaseRun(db, pki)
    # A plant filed in Shanghai, its first issuance partly moved, retired and offered on.
    w.publish(
        SH,
        sh_project("SH-D", lat=north(0), credit=code(1), account=ACCOUNT),
        sh_issuance("SH-D-I1", "SH-D", "2024-01-01", "2024-06-30", 5_000_001),
    )
    moved = w.propose(SH, "sh-ah-d", AH, [(G0, G0 + 99_999)], origin=SH)
    w.answer("accept", AH, moved.name)  # type: ignore[attr-defined]
    _retire(
        w,
        SH,
        _order(
            "ret-d",
            [(G0 + 100_000, G0 + 199_999)],
            origin=SH,
            purpose=transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
            beneficiary="某公司",
        ),
    )
    pending = w.propose(SH, "sh-js-d3", JS, [(G0 + 200_000, G0 + 299_999)], origin=SH)
    rejected = w.propose(SH, "sh-js-d2", JS, [(G0 + 300_000, G0 + 399_999)], origin=SH)
    # The same plant filed in Jiangsu (same grid account, 900 m off): a certain case; its
    # issuance, overlapping, holds both.
    w.publish(JS, js_project("JS-D", lat=north(900), credit=code(2), account=ACCOUNT))
    w.publish(JS, js_issuance("JS-D-I1", "JS-D", "20240301", "20240331", 30_001))
    assert holder_of(w, SH, G0) == (AH, "held")
    assert holder_of(w, SH, G0 + 250_000) == (SH, "reserved")
    w.tick()
    w.answer("reject", JS, rejected.name, "held")  # type: ignore[attr-defined]
    assert holder_of(w, SH, G0 + 350_000) == (SH, "held")
    # Two neighbouring plants (30 m apart, same capacity): a possible case, both issuances held.
    w.publish(
        SH,
        sh_project("SH-N", lat=north(2000), mw="0.85"),
        sh_issuance("SH-N-I1", "SH-N", "2024-01-01", "2024-12-31", 6_000_001),
    )
    w.publish(JS, js_project("JS-N", lat=north(2030), kw="850"))
    w.publish(JS, js_issuance("JS-N-I1", "JS-N", "20240101", "20241231", 31_001))
    # A CCER list naming a plant 25 m from SH-N: a case with one external side, Shanghai's to
    # decide; imported again with one row changed.
    w.tick()
    rows = [
        external("C-1", latitude=north(1975), grid_account="", owner_credit_code=""),
        external("C-2", latitude=north(9000), grid_account="", owner_credit_code=""),
    ]
    opened = import_external(db, rows, "operator/alice", approvals=w.policy, now=w.now)
    assert [c.second for c in opened.cases] == [SH_N]
    w.tick()
    rows[1] = external("C-2", latitude=north(9000), grid_account="", title="改名", datum="")
    import_external(db, rows, "operator/bob", approvals=w.policy, now=w.now)
    # DUPLICATE: the Jiangsu registration stands; Shanghai's issuance is cancelled.
    dup = w.case_of(JS_D)
    w.decide(SH, "admin-a", dup, R.CASE_RESOLUTION_DUPLICATE, standing=JS_D)
    done = w.decide(JS, "admin-a", dup, R.CASE_RESOLUTION_DUPLICATE, standing=JS_D)
    assert done.state == R.DUPLICATE_CASE_STATE_DUPLICATE and len(done.findings) == 2
    assert holder_of(w, SH, G0 + 250_000) == (SH, "cancelled")
    assert w.transfers.get(pending.name).state == "CANCELLED"  # type: ignore[attr-defined]
    # DISTINCT: Jiangsu's issuance released; SH-N-I1 stays held by the open external case.
    distinct = w.case_of(JS_N)
    w.decide(SH, "admin-a", distinct, R.CASE_RESOLUTION_DISTINCT)
    done = w.decide(JS, "admin-b", distinct, R.CASE_RESOLUTION_DISTINCT)
    assert done.state == R.DUPLICATE_CASE_STATE_DISTINCT
    assert holder_of(w, SH, 6_000_001_000) == (SH, "held")
    assert holder_of(w, JS, 31_001_000_000) == (JS, "active")
    w.invariants()
    return w


@pytest.fixture
def with_cases(database: Database, pki: PKIDir) -> Iterator[Database]:
    run_with_cases(database, pki)
    yield database


def _storage(db: Database) -> Any:
    return AuditReader(db).verify_storage(default_registry).check


CASE_FLIPS: list[tuple[str, str, str]] = [
    # (table, column, row: SQL condition); each changes one byte or one value
    ("external_projects", "title", "scheme_project_id = 'C-2'"),
    ("external_projects", "import_time", "scheme_project_id = 'C-1'"),
    ("identity_subjects", "lat_e7", f"subject = '{SH_D}'"),
    ("identity_subjects", "category", f"subject = '{JS_N}'"),
    ("identity_subjects", "capacity_w", "subject = 'schemes/CCER/projects/C-1'"),
    ("identity_subjects", "registered_time", f"subject = '{SH_N}'"),
    ("duplicate_cases", "standing", "state = 'DUPLICATE'"),
    ("duplicate_cases", "evidence", "state = 'DISTINCT'"),
    ("duplicate_cases", "state", "state = 'OPEN'"),
    ("case_holds", "outcome", f"issuance = '{SH_D_I}'"),
    ("case_holds", "outcome", f"issuance = '{JS_N_I}'"),
    ("case_decisions", "comment", "region = '320000'"),
    ("case_decisions", "envelope_hash", "region = '310000'"),
    ("case_findings", "grams", "holder_region = '340000'"),
    ("case_findings", "state", "state = 'retired'"),
    ("unit_blocks", "state", "state = 'held'"),
    ("unit_blocks", "state", "state = 'cancelled'"),
]
"""One change per row kind the duplicate cases make (the other tables: test_audit_tamper)."""


def test_a_database_with_cases_verifies_clean(with_cases: Database) -> None:
    result = AuditReader(with_cases).verify_storage(default_registry)
    assert result.check.ok, result.check
    with with_cases.transaction() as s:
        kinds = set(s.execute(select(AuditEntryRow.kind)).scalars())
        rows = sum(
            s.execute(select(func.count()).select_from(Base.metadata.tables[t])).scalar_one()
            for t in COVERED
            if t not in ("audit_head", "audit_entries")
        )
        subjects = s.execute(select(func.count()).select_from(IdentitySubjectRow)).scalar_one()
        holds = set(s.execute(select(CaseHoldRow.outcome)).scalars())
    assert result.rows == rows  # every row of every covered table was compared
    assert subjects == 4 + 4 + 2  # the samples' projects, the four filed here, the CCER two
    assert holds == {"held", "released", "cancelled"}
    assert {
        "duplicate_case.opened",
        "duplicate_case.hold",
        "duplicate_case.decision",
        "duplicate_case.resolved",
        "external_list.imported",
        "transfer.rejected",
        "transfer.cancelled",
    } <= kinds


def test_one_changed_value_in_each_duplicate_table_is_named(with_cases: Database) -> None:
    for table, column, where in CASE_FLIPS:
        key, old = _flip(with_cases, table, column, where)
        found = _storage(with_cases)
        assert not found.ok, (table, column)
        assert found.table == table, (table, column, found)
        if table in ("external_projects", "identity_subjects"):
            assert found.key == f"subject={key[0]}", (table, column, found)
        if table == "duplicate_cases":
            assert found.key == f"case_id={key[0]}", (table, column, found)
        if table == "case_holds":
            assert found.key == f"case_id={key[0]} issuance={key[1]}", found
        _restore(with_cases, table, column, key, old)
    assert _storage(with_cases).ok


def test_duplicate_rows_removed_or_added_are_named(with_cases: Database) -> None:
    with with_cases.transaction() as s:
        s.execute(delete(IdentitySubjectRow).where(IdentitySubjectRow.subject == SH_D))
    found = _storage(with_cases)
    assert (found.table, found.key) == ("identity_subjects", f"subject={SH_D}")
    assert "missing" in found.problem


def test_a_hold_removed_or_a_case_added_is_named(with_cases: Database) -> None:
    held = Base.metadata.tables["case_holds"]
    with with_cases.transaction() as s:
        case_id = s.execute(select(held.c.case_id).where(held.c.issuance == JS_N_I)).scalar_one()
        s.execute(delete(held).where(held.c.issuance == JS_N_I))
    found = _storage(with_cases)
    assert (found.table, found.key) == ("case_holds", f"case_id={case_id} issuance={JS_N_I}")
    assert "missing" in found.problem


def test_every_duplicate_table_has_a_change() -> None:
    duplicates = {
        "external_projects",
        "identity_subjects",
        "duplicate_cases",
        "case_holds",
        "case_decisions",
        "case_findings",
    }
    assert duplicates <= set(COVERED)
    assert {t for t, _, _ in CASE_FLIPS} == duplicates | {"unit_blocks"}
