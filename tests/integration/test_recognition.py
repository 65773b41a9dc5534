"""Mutual recognition end to end over mTLS, on SQLite and PostgreSQL, with recognition enforced:
a transfer is refused before recognition, accepted after the quorum, refused after revocation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest
from sqlalchemy import select
from yrd.interop.v1 import recognition_pb2, records_pb2, transfer_pb2

from gateway import errors
from gateway.client import GatewayClient, envelope_signature_ok
from gateway.config import GatewaySettings
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, load_signing_public_key
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow
from tests.integration.conftest import counts, publish_samples

AH, SH, JS = "340000", "310000", "320000"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"
AH_PROJECT = "regions/340000/projects/AH-XM-2024-0031"


@pytest.fixture
def enforcing(pki: PKIDir, database: Database) -> Iterator[Callable[..., GatewayClient]]:
    settings = GatewaySettings(
        listen="127.0.0.1:0", cert_dir=pki.root, metrics_listen="", log_level="warning"
    )
    assert settings.recognition_enforced and settings.recognition_approvals == {SH: 2}
    gw = GatewayServer(settings, db=database)
    gw.start()
    opened: list[GatewayClient] = []

    def make(region: str, role: Role = Role.REGISTRY, name: str | None = None) -> GatewayClient:
        c = GatewayClient(f"127.0.0.1:{gw.port}", pki, region=region, role=role, name=name)
        opened.append(c)
        return c

    publish_samples(make)
    yield make
    for c in opened:
        c.close()
    gw.stop(grace=0.5)


def test_transfer_needs_recognition_quorum_and_fails_after_revocation(
    enforcing: Callable[..., GatewayClient], database: Database, pki: PKIDir
) -> None:
    ah, sh = enforcing(AH), enforcing(SH)
    admin_a, admin_b = enforcing(SH, Role.ADMIN, "admin-a"), enforcing(SH, Role.ADMIN, "admin-b")

    with pytest.raises(errors.NotRecognised) as before:
        ah.propose_transfer("t-0", SH, origin=AH, ranges=[(1_000, 1_000_999)])
    assert before.value.metadata["check"] == "5"

    (rec,) = ah.request_recognition(AH_PV, version="1", regions=[SH])
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REQUESTED
    assert rec.required_approvals == 2
    grid = next(p for p in rec.assessment.parameters if p.code == "EF_grid")
    assert (grid.subject_normalised, grid.counterpart_normalised) == ("0.6782", "0.42")
    assert grid.normalised_unit == "kgCO2/kWh" and grid.differs
    ratio = rec.assessment.suggested_ratio
    assert Fraction(ratio.numerator, ratio.denominator) == Fraction("0.42") / Fraction("0.6782")

    rec = admin_a.approve_recognition(rec.name, "电网因子差异已审阅")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REQUESTED  # one of two approvals
    with pytest.raises(errors.NotRecognised):
        ah.propose_transfer("t-1", SH, origin=AH, ranges=[(1_000, 1_000_999)])

    before_counts = counts(database)
    with pytest.raises(errors.DomainError) as twice:
        admin_a.approve_recognition(rec.name, "again")
    assert twice.value.reason == "ALREADY_DECIDED_BY_ADMIN"
    with pytest.raises(errors.DomainError) as wrong_region:
        enforcing(JS, Role.ADMIN, "admin-a").approve_recognition(rec.name, "not mine")
    assert wrong_region.value.reason == "WRONG_REGION"
    assert wrong_region.value.code is errors.Code.PERMISSION_DENIED
    with pytest.raises(errors.RoleNotAllowed):
        sh.approve_recognition(rec.name, "a registry cannot decide")
    assert counts(database) == before_counts

    rec = admin_b.approve_recognition(rec.name, "同意互认")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_APPROVED
    keys = {k.key_id: k.public_key for k in sh.list_signing_keys(SH)}
    for decision in rec.decisions:  # each decision carries its administrator's signed envelope
        assert envelope_signature_ok(decision.envelope, keys[decision.envelope.key_id])
    assert load_signing_public_key(pki.admin(SH, "admin-b").signing_public_key) in keys.values()

    check = sh.check_recognized(SH, "regions/340000/projects/AH-XM-2024-0031", 2024)
    assert check.recognised and rec.name in check.recognitions
    adopted = check.conditions.ets_adjustment_ratio  # the assessment's ratio, none was proposed
    assert Fraction(adopted.numerator, adopted.denominator) == Fraction(2100, 3391)
    t = ah.propose_transfer("t-2", SH, origin=AH, ranges=[(1_000, 1_000_999)])
    assert sh.accept_transfer(t.name).quantity_grams == 1_000_000

    pending = ah.propose_transfer("t-3", SH, origin=AH, ranges=[(2_000_000, 2_999_999)])
    assert pending.state == transfer_pb2.TRANSFER_STATE_PROPOSED
    revoked = admin_a.revoke_recognition(rec.name, "方法学参数复核")
    # At once, in the revocation's transaction: the pending transfer it leaves unrecognised is
    # rejected with its reason, its units back with the source, audited.
    ended = ah.get_transfer(pending.name)
    assert ended.state == transfer_pb2.TRANSFER_STATE_REJECTED
    (why,) = ended.reasons
    assert why.message.startswith(f"RECOGNITION_REVOKED: {rec.name} was revoked"), why.message
    assert not ended.blocks
    assert not ah.holdings(AH, state=records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER)
    released = [
        (b.serials.start, b.serials.end)
        for b in ah.holdings(AH, state=records_pb2.UNIT_BLOCK_STATE_ACTIVE)
        if b.origin_region == AH and 2_000_000 <= b.serials.start <= 2_999_999
    ]
    assert released == [(2_000_000, 2_999_999)]
    with database.transaction() as s:
        entries = s.execute(
            select(AuditEntryRow.kind, AuditEntryRow.actor, AuditEntryRow.detail)
            .where(AuditEntryRow.sequence > 0)
            .order_by(AuditEntryRow.sequence.desc())
            .limit(2)
        ).all()
    (kind, actor, detail), (revoked_kind, _, revoked_detail) = entries
    assert (kind, actor, revoked_kind) == (
        "transfer.rejected",
        "admin/admin-a",
        "recognition.revoked",
    )
    detail_json, revoked_json = json.loads(detail), json.loads(revoked_detail)
    assert detail_json["envelope_hash"] == revoked_json["envelope_hash"]  # the revocation's
    assert detail_json["blocks"] == [[AH, 2_000_000, 2_999_999]]
    assert detail_json["reason"] == why.message
    assert revoked.state == recognition_pb2.RECOGNITION_STATE_REVOKED
    with pytest.raises(errors.DomainError) as at_accept:
        sh.accept_transfer(pending.name)
    assert at_accept.value.reason == "TRANSFER_NOT_PENDING"
    with pytest.raises(errors.NotRecognised):
        ah.propose_transfer("t-4", SH, origin=AH, ranges=[(3_000_000, 3_999_999)])
    assert not sh.check_recognized(SH, "regions/340000/projects/AH-XM-2024-0031", 2024).recognised
    assert check_invariants(database).ok


def test_units_held_under_a_revoked_recognition_are_reported(
    enforcing: Callable[..., GatewayClient], database: Database
) -> None:
    from gateway.services.recognition import RecognitionService

    ah, sh = enforcing(AH), enforcing(SH)
    (rec,) = ah.request_recognition(AH_PV, version="1", regions=[SH])
    for name in ("admin-a", "admin-b"):
        enforcing(SH, Role.ADMIN, name).approve_recognition(rec.name, "ok")
    t = ah.propose_transfer("t-held", SH, origin=AH, ranges=[(1_000, 3_000_999)])
    sh.accept_transfer(t.name)
    enforcing(SH, Role.ADMIN, "admin-a").revoke_recognition(rec.name, "review")
    revoked, blocks = RecognitionService(database).held_under(rec.name)
    assert revoked.state.value == "revoked"
    # The completed transfer stands (no clawback), and the report lists what it brought in.
    assert [(b.origin_region, b.serial_start, b.serial_end, b.holder_region) for b in blocks] == [
        (AH, 1_000, 3_000_999, SH)
    ]


def test_a_revocation_ends_only_the_transfers_it_leaves_unrecognised(
    enforcing: Callable[..., GatewayClient], database: Database
) -> None:
    """Covered by both a methodology-version and a project-level recognition, a pending transfer
    survives the revocation of one (check 5 still passes) and is rejected at once by the
    revocation of the other."""
    ah = enforcing(AH)
    admins = [enforcing(SH, Role.ADMIN, name) for name in ("admin-a", "admin-b")]
    (by_methodology,) = ah.request_recognition(AH_PV, version="1", regions=[SH])
    (by_project,) = ah.request_recognition(AH_PROJECT, regions=[SH])
    for rec in (by_methodology, by_project):
        for admin in admins:
            admin.approve_recognition(rec.name, "ok")
    pending = ah.propose_transfer("t-both", SH, origin=AH, ranges=[(5_000, 9_999)])

    admins[0].revoke_recognition(by_methodology.name, "方法学复核")
    assert ah.get_transfer(pending.name).state == transfer_pb2.TRANSFER_STATE_PROPOSED

    admins[1].revoke_recognition(by_project.name, "项目复核")
    ended = ah.get_transfer(pending.name)
    assert ended.state == transfer_pb2.TRANSFER_STATE_REJECTED
    assert ended.reasons[0].message.startswith(f"RECOGNITION_REVOKED: {by_project.name}")
    assert not ah.holdings(AH, state=records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER)
    assert check_invariants(database).ok
