"""Duplicate detection through the gateway's own service, on SQLite and PostgreSQL: every planted
duplicate of the generated data set is found with its rule (recall 1.0) and not one case opens
among the 10,000 distinct projects (near-border near misses included).

Region projects go through ``Detector.project_accepted`` — the detection step of the publish
transaction, with the audit head locked as there — in transactions of 500, in a shuffled order
(a duplicate may arrive before its original); there is no bulk publish path, and 10,000 signed
publications would measure signing and parsing, not detection. The external rows go through
``import_external`` (the service of ``yrdgw duplicates import``), from a CSV read by the list
parser: a third of them before the region projects (matched when the projects arrive) and the
rest after (matched on import)."""

from __future__ import annotations

import datetime as dt
import random
import time

from sqlalchemy import select
from yrd.interop.v1 import records_pb2

from adapters.external_list import parse_external_list
from gateway.services.duplicates import Detector, import_external
from gateway.storage.audit_log import audit_log
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow, DuplicateCaseRow
from mutual_recognition import ApprovalPolicy
from tests.duplicates.generate import GenProject, category_name, external_csv, generate

BATCH = 500
START = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
_DATUMS = {
    "": records_pb2.COORDINATE_DATUM_UNSPECIFIED,
    "WGS84": records_pb2.COORDINATE_DATUM_WGS84,
    "GCJ02": records_pb2.COORDINATE_DATUM_GCJ02,
    "BD09": records_pb2.COORDINATE_DATUM_BD09,
}


def project_of(p: GenProject) -> records_pb2.Project:
    """The common record of a generated region project, its identity keys as filed."""
    assert p.region is not None
    project = records_pb2.Project(
        name=p.subject,
        region=p.region,
        project_id=p.project_id,
        title=p.title,
        owner=f"owner of {p.project_id}",
    )
    if p.capacity_value:
        project.capacity.value, project.capacity.unit = p.capacity_value, p.capacity_unit
    project.crediting_period.start.year = 2024
    project.crediting_period.start.month = project.crediting_period.start.day = 1
    identity = project.identity
    identity.owner_credit_code = p.credit_code
    identity.grid_account = p.grid_account
    if p.latitude:
        identity.site.latitude, identity.site.longitude = p.latitude, p.longitude
        identity.site.datum = _DATUMS[p.datum]
    return project


def accept(db: Database, projects: list[GenProject], first: dt.datetime) -> int:
    """Accept PROJECTS in transactions of BATCH (one audit log and detector each, as a publish
    batch has), a second apart; the number of cases opened."""
    approvals = ApprovalPolicy()
    opened = 0
    for i in range(0, len(projects), BATCH):
        with db.transaction() as session:
            conn = session.connection()
            detector = Detector(
                conn,
                audit_log(conn),
                approvals,
                now=first + dt.timedelta(seconds=i),
                actor_region="",
                actor="registry",
            )
            for p in projects[i : i + BATCH]:
                category = records_pb2.ScenarioCategory.Value(category_name(p.category))
                opened += len(detector.project_accepted(project_of(p), category))
    return opened


def test_planted_duplicates_all_found_and_no_case_among_distinct(database: Database) -> None:
    data = generate()
    projects = data.region_projects()
    random.Random(7).shuffle(projects)
    rows = parse_external_list(external_csv(data.external), "CCER").rows
    before, after = rows[: len(rows) // 3], rows[len(rows) // 3 :]
    started = time.perf_counter()

    early = import_external(
        database, before, "operator/test", approvals=ApprovalPolicy(), now=START
    )
    opened = accept(database, projects, START + dt.timedelta(days=1))
    late = import_external(database, after, "operator/test", approvals=ApprovalPolicy(), now=START)
    # A project published again (a new revision of the same record) opens nothing new.
    again = accept(database, projects[:50], START + dt.timedelta(days=2))
    elapsed = time.perf_counter() - started

    with database.engine.connect() as conn:
        cases = conn.execute(
            select(
                DuplicateCaseRow.first_subject,
                DuplicateCaseRow.second_subject,
                DuplicateCaseRow.rule,
                DuplicateCaseRow.strength,
                DuplicateCaseRow.state,
            )
        ).all()
        audited = conn.execute(
            select(AuditEntryRow.subject).where(AuditEntryRow.kind == "duplicate_case.opened")
        ).all()
    found = {tuple(sorted((a, b))): rule for a, b, rule, _, _ in cases}
    expected = {p.subjects: p.rule.value for p in data.expected if p.rule is not None}
    missed = {k: v for k, v in expected.items() if found.get(k) != v}
    spurious = {k: v for k, v in found.items() if k not in expected}
    assert missed == {}, f"{len(missed)} planted duplicates not found with their rule"
    assert spurious == {}, f"{len(spurious)} cases among distinct projects: {list(spurious)[:5]}"
    assert len(cases) == len(expected) == len(audited)
    # The early rows match nothing on import (no project yet): their cases open on acceptance.
    assert early.rows and not early.cases and late.cases and opened and again == 0
    assert opened + len(late.cases) == len(expected)
    assert {state for *_, state in cases} == {"OPEN"}
    strengths = {
        "DUPLICATE_RULE_SAME_GRID_ACCOUNT": "MATCH_STRENGTH_CERTAIN",
        "DUPLICATE_RULE_SAME_OWNER_NEARBY": "MATCH_STRENGTH_PROBABLE",
        "DUPLICATE_RULE_NEARBY_SIMILAR": "MATCH_STRENGTH_POSSIBLE",
    }
    assert all(strengths[rule] == strength for _, _, rule, strength, _ in cases)
    # External rows are never matched with each other (two of them share a site and every key).
    assert not any(a.startswith("schemes/") and b.startswith("schemes/") for a, b in found)
    assert elapsed < 90, f"{elapsed:.1f} s"
