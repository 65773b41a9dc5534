"""The recognition state machine and approval policy; every refusal leaves the input unchanged."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mutual_recognition import (
    Actor,
    AlreadyDecidedByAdmin,
    ApprovalPolicy,
    CommentRequired,
    Conditions,
    DecisionVerdict,
    InvalidConditions,
    InvalidStateTransition,
    NotAnAdministrator,
    NotYetExpired,
    ReasonRequired,
    Recognition,
    RecognitionAlreadyExists,
    RecognitionError,
    RecognitionExpired,
    RecognitionState,
    RequesterCannotApprove,
    Role,
    RoleNotAllowed,
    SelfRecognition,
    UnknownRegion,
    WrongRegion,
    approve,
    assess,
    effective_state,
    expire,
    in_force,
    is_open,
    reject,
    remaining_approvals,
    request,
    revoke,
)
from tests.recognition.factories import (
    AH,
    AH_METHODOLOGY,
    AH_PROJECT,
    JS,
    NOW,
    SH,
    ZJ,
    admin,
    anhui_pv,
    registry,
    requested,
    shanghai_pv,
)

LATER = NOW + timedelta(hours=1)
SH_A, SH_B, SH_C = admin(SH, "alice"), admin(SH, "bob"), admin(SH, "carol")

Action = Callable[[Recognition], Recognition]


def refused(rec: Recognition, action: Action, error: type[RecognitionError]) -> RecognitionError:
    """Assert ``action(rec)`` raises ``error`` and that ``rec`` is exactly as it was."""
    snapshot = copy.deepcopy(rec)
    with pytest.raises(error) as caught:
        action(rec)
    assert rec == snapshot
    assert caught.value.reason == error.reason
    return caught.value


# --- request ---------------------------------------------------------------------------------


def test_delta_wide_request_makes_one_recognition_per_other_region() -> None:
    policy = ApprovalPolicy(approvals={SH: 2})
    recs = request(
        request_id="r42", subject=AH_METHODOLOGY, actor=registry(AH), now=NOW, policy=policy
    )
    assert [r.recognising_region for r in recs] == [SH, JS, ZJ]
    assert [r.id for r in recs] == ["r42-310000", "r42-320000", "r42-330000"]
    assert recs[0].name == "recognitions/r42-310000"
    assert [r.required_approvals for r in recs] == [2, 1, 1]
    for r in recs:
        assert r.state is RecognitionState.REQUESTED
        assert r.requesting_region == AH
        assert r.group == "r42" and r.group_regions == (SH, JS, ZJ)
        assert r.delta_wide and not r.needs_every_region
        assert r.requested_at == NOW and r.requested_by == registry(AH)
        assert r.decisions == ()


def test_delta_wide_policy_is_recorded_at_request_time() -> None:
    policy = ApprovalPolicy(delta_wide_needs_every_region=True)
    recs = request(
        request_id="r", subject=AH_METHODOLOGY, actor=admin(AH, "dan"), now=NOW, policy=policy
    )
    assert all(r.needs_every_region for r in recs)
    (one,) = request(
        request_id="r",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=NOW,
        policy=policy,
        recognising_regions=[SH],
    )
    assert not one.delta_wide and not one.needs_every_region


def test_request_attaches_each_regions_assessment_and_conditions() -> None:
    a = assess(anhui_pv(), [shanghai_pv()], recognising_region=SH)
    conditions = Conditions(
        vintage_from=2024, ets_adjustment_ratio=a.suggested_ratio, expire_date=date(2027, 12, 31)
    )
    sh, js = request(
        request_id="r",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=NOW,
        policy=ApprovalPolicy(),
        recognising_regions=[SH, JS, SH],
        conditions=conditions,
        assessments={SH: a},
    )
    assert (sh.assessment, js.assessment) == (a, None)
    assert sh.conditions == js.conditions == conditions
    assert sh.group_regions == (SH, JS)  # the duplicate was dropped


@pytest.mark.parametrize(
    ("actor", "regions", "error"),
    [
        (Actor(region=None, role=Role.GATEWAY), [SH], RoleNotAllowed),
        (registry(SH), [JS], WrongRegion),  # Shanghai cannot ask for Anhui's methodology
        (admin(JS, "eve"), [SH], WrongRegion),
        (registry(AH), [AH], SelfRecognition),
        (registry(AH), ["440000"], UnknownRegion),  # not served (yet)
        (registry(AH), ["31000"], UnknownRegion),
    ],
)
def test_request_refusals(actor: Actor, regions: list[str], error: type[RecognitionError]) -> None:
    with pytest.raises(error):
        request(
            request_id="r",
            subject=AH_METHODOLOGY,
            actor=actor,
            now=NOW,
            policy=ApprovalPolicy(),
            recognising_regions=regions,
        )


def test_request_refuses_an_expiry_date_already_past() -> None:
    with pytest.raises(InvalidConditions, match="already passed"):
        requested(conditions=Conditions(expire_date=date(2025, 5, 31)))


def test_request_refuses_a_duplicate_of_an_open_or_in_force_recognition() -> None:
    pending = requested()
    with pytest.raises(RecognitionAlreadyExists) as caught:
        request(
            request_id="again",
            subject=AH_METHODOLOGY,
            actor=registry(AH),
            now=LATER,
            policy=ApprovalPolicy(),
            existing=[pending],
        )
    assert caught.value.metadata == {"recognition": "recognitions/req-1-310000"}
    approved = approve(pending, SH_A, "ok", LATER)
    with pytest.raises(RecognitionAlreadyExists):
        request(
            request_id="again",
            subject=AH_METHODOLOGY,
            actor=registry(AH),
            now=LATER,
            policy=ApprovalPolicy(),
            recognising_regions=[SH],
            existing=[approved],
        )
    # Once rejected, revoked or for another subject, a new request is fine.
    rejected = reject(requested(), SH_A, "no", LATER)
    other = requested(subject=AH_PROJECT)
    (again,) = request(
        request_id="again",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=LATER,
        policy=ApprovalPolicy(),
        recognising_regions=[SH],
        existing=[rejected, other, revoke(approved, SH_B, "gone", LATER)],
    )
    assert again.state is RecognitionState.REQUESTED


# --- approve and the quorum --------------------------------------------------------------------


def test_quorum_of_one() -> None:
    rec = requested(quorum=1)
    approved = approve(rec, SH_A, "equivalent enough", LATER, envelope=b"hash-1")
    assert approved.state is RecognitionState.APPROVED
    (d,) = approved.decisions
    assert (d.region, d.admin, d.verdict, d.comment) == (
        SH,
        "alice",
        DecisionVerdict.APPROVE,
        "equivalent enough",
    )
    assert d.decided_at == LATER and d.decided_at.tzinfo is UTC
    assert d.envelope == b"hash-1"
    assert rec.state is RecognitionState.REQUESTED and rec.decisions == ()  # a new object


def test_quorum_of_two_needs_two_distinct_administrators() -> None:
    rec = requested(quorum=2)
    once = approve(rec, SH_A, "first look fine", LATER)
    assert once.state is RecognitionState.REQUESTED
    assert remaining_approvals(once) == 1
    twice = approve(once, SH_B, "agree", LATER + timedelta(minutes=5))
    assert twice.state is RecognitionState.APPROVED
    assert remaining_approvals(twice) == 0
    assert [d.admin for d in twice.decisions] == ["alice", "bob"]


def test_the_same_administrator_cannot_count_twice() -> None:
    once = approve(requested(quorum=2), SH_A, "first", LATER)
    err = refused(once, lambda r: approve(r, SH_A, "again", LATER), AlreadyDecidedByAdmin)
    assert err.kind == "already_exists"
    refused(once, lambda r: reject(r, SH_A, "changed my mind", LATER), AlreadyDecidedByAdmin)
    # A decision by the same name from a time zone other than UTC still counts once.
    tz_later = LATER.astimezone(timezone(timedelta(hours=8)))
    refused(once, lambda r: approve(r, SH_A, "again", tz_later), AlreadyDecidedByAdmin)


def test_wrong_region_administrator_is_refused() -> None:
    rec = requested()
    err = refused(rec, lambda r: approve(r, admin(ZJ, "zoe"), "looks fine", LATER), WrongRegion)
    assert err.kind == "permission_denied"
    refused(rec, lambda r: reject(r, admin(JS, "jin"), "no", LATER), WrongRegion)


@pytest.mark.parametrize(
    "actor",
    [
        registry(SH),
        Actor(region=None, role=Role.GATEWAY),
        Actor(region=SH, role=Role.ADMIN),
        registry(AH),
    ],
)
def test_registry_and_gateway_identities_cannot_decide(actor: Actor) -> None:
    rec = requested()
    err = refused(rec, lambda r: approve(r, actor, "ok", LATER), NotAnAdministrator)
    assert err.kind == "permission_denied"
    refused(rec, lambda r: reject(r, actor, "no", LATER), NotAnAdministrator)
    refused(
        approve(rec, SH_A, "ok", LATER), lambda r: revoke(r, actor, "x", LATER), NotAnAdministrator
    )


def test_administrators_of_the_requesting_region_cannot_decide() -> None:
    rec = requested()
    err = refused(
        rec,
        lambda r: approve(r, admin(AH, "dan"), "we agree with ourselves", LATER),
        RequesterCannotApprove,
    )
    assert err.kind == "permission_denied"
    refused(rec, lambda r: reject(r, admin(AH, "dan"), "no", LATER), RequesterCannotApprove)
    refused(
        approve(rec, SH_A, "ok", LATER),
        lambda r: revoke(r, admin(AH, "dan"), "x", LATER),
        RequesterCannotApprove,
    )


@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_a_decision_needs_a_comment(comment: str) -> None:
    rec = requested()
    err = refused(rec, lambda r: approve(r, SH_A, comment, LATER), CommentRequired)
    assert err.kind == "invalid_argument"
    refused(rec, lambda r: reject(r, SH_A, comment, LATER), CommentRequired)


def test_decision_after_expiry_is_refused() -> None:
    # In force through 2025-06-30 in China Standard Time, i.e. until 2025-06-30 16:00 UTC.
    rec = requested(quorum=2, conditions=Conditions(expire_date=date(2025, 6, 30)))
    last_moment = datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC)
    expired_moment = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
    once = approve(rec, SH_A, "in time", last_moment)
    err = refused(once, lambda r: approve(r, SH_B, "too late", expired_moment), RecognitionExpired)
    assert err.kind == "failed_precondition"
    refused(once, lambda r: reject(r, SH_B, "too late", expired_moment), RecognitionExpired)
    approved = approve(once, SH_B, "in time", last_moment)
    assert in_force(approved, last_moment) and not in_force(approved, expired_moment)
    refused(approved, lambda r: approve(r, SH_C, "late", expired_moment), RecognitionExpired)
    refused(approved, lambda r: revoke(r, SH_C, "late", expired_moment), RecognitionExpired)


def test_rejection_by_any_recogniser_administrator_rejects() -> None:
    once = approve(requested(quorum=2), SH_A, "fine", LATER)
    rejected = reject(once, SH_B, "grid factor too different", LATER)
    assert rejected.state is RecognitionState.REJECTED
    assert [d.verdict for d in rejected.decisions] == [
        DecisionVerdict.APPROVE,
        DecisionVerdict.REJECT,
    ]


def _approved() -> Recognition:
    return approve(
        requested(conditions=Conditions(expire_date=date(2026, 12, 31))), SH_A, "ok", LATER
    )


@pytest.mark.parametrize(
    ("final", "error"),
    [
        (lambda: reject(requested(), SH_A, "no", LATER), InvalidStateTransition),
        (lambda: revoke(_approved(), SH_A, "withdrawn", LATER), InvalidStateTransition),
        (lambda: expire(_approved(), datetime(2027, 1, 1, tzinfo=UTC)), RecognitionExpired),
        (_approved, InvalidStateTransition),  # approved already: nothing more to decide
    ],
    ids=["rejected", "revoked", "expired", "approved"],
)
def test_no_decision_on_a_decided_recognition(
    final: Callable[[], Recognition], error: type[RecognitionError]
) -> None:
    rec = final()
    refused(rec, lambda r: approve(r, SH_C, "late approval", LATER), error)
    refused(rec, lambda r: reject(r, SH_C, "late rejection", LATER), error)


# --- revoke and expire -------------------------------------------------------------------------


def test_revoke_takes_effect_at_once() -> None:
    approved = _approved()
    revoked = revoke(approved, SH_B, "grid factor revised", LATER, envelope=b"rev")
    assert revoked.state is RecognitionState.REVOKED
    assert (revoked.revoked_at, revoked.revoked_by, revoked.revoke_reason) == (
        LATER,
        "bob",
        "grid factor revised",
    )
    assert revoked.revoke_envelope == b"rev"
    assert not in_force(revoked, LATER)
    assert in_force(approved, LATER)  # the input is untouched


def test_revoke_refusals() -> None:
    approved = _approved()
    refused(approved, lambda r: revoke(r, SH_A, " ", LATER), ReasonRequired)
    refused(approved, lambda r: revoke(r, admin(JS, "jin"), "x", LATER), WrongRegion)
    refused(
        requested(), lambda r: revoke(r, SH_A, "not yet approved", LATER), InvalidStateTransition
    )
    revoked = revoke(approved, SH_A, "x", LATER)
    refused(revoked, lambda r: revoke(r, SH_B, "again", LATER), InvalidStateTransition)


def test_effective_state_and_expire() -> None:
    approved = _approved()
    before = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
    after = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert effective_state(approved, before) is RecognitionState.APPROVED
    assert effective_state(approved, after) is RecognitionState.EXPIRED
    assert approved.state is RecognitionState.APPROVED  # effective_state records nothing
    refused(approved, lambda r: expire(r, before), NotYetExpired)
    expired = expire(approved, after)
    assert expired.state is RecognitionState.EXPIRED
    refused(expired, lambda r: expire(r, after), InvalidStateTransition)
    refused(requested(), lambda r: expire(r, after), InvalidStateTransition)
    refused(approve(requested(), SH_A, "ok", LATER), lambda r: expire(r, after), NotYetExpired)


def test_requested_past_expiry_stays_requested_but_is_dead() -> None:
    rec = requested(conditions=Conditions(expire_date=date(2025, 6, 30)))
    after = datetime(2025, 7, 1, tzinfo=UTC)
    assert effective_state(rec, after) is RecognitionState.REQUESTED
    assert is_open(rec, NOW) and not is_open(rec, after)
    refused(rec, lambda r: approve(r, SH_A, "ok", after), RecognitionExpired)
    refused(rec, lambda r: expire(r, after), InvalidStateTransition)
    # It blocks no new request.
    (again,) = request(
        request_id="again",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=after,
        policy=ApprovalPolicy(),
        recognising_regions=[SH],
        existing=[rec],
    )
    assert again.state is RecognitionState.REQUESTED


def test_naive_datetimes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="time zone"):
        approve(requested(), SH_A, "ok", datetime(2025, 6, 1, 9, 0))


# --- the whole machine, at random -------------------------------------------------------------

ACTORS = [
    SH_A,
    SH_B,
    SH_C,
    admin(JS, "jin"),
    admin(AH, "dan"),
    registry(SH),
    Actor(region=None, role=Role.GATEWAY),
]
STEP = st.tuples(
    st.sampled_from(["approve", "reject", "revoke", "expire"]),
    st.one_of(st.sampled_from([SH_A, SH_B, SH_C]), st.sampled_from(ACTORS)),
    st.sampled_from(["ok", "reason", ""]),
    st.one_of(st.just(0), st.integers(min_value=0, max_value=400)),  # days forward
)
ALLOWED = {
    RecognitionState.REQUESTED: {RecognitionState.APPROVED, RecognitionState.REJECTED},
    RecognitionState.APPROVED: {RecognitionState.REVOKED, RecognitionState.EXPIRED},
}


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=3), st.lists(STEP, max_size=12))
def test_random_sequences_keep_the_invariants(
    quorum: int, steps: list[tuple[str, Actor, str, int]]
) -> None:
    rec = requested(quorum=quorum, conditions=Conditions(expire_date=date(2026, 1, 31)))
    now = NOW
    for action, actor, text, days in steps:
        now = now + timedelta(days=days)
        snapshot = copy.deepcopy(rec)
        try:
            if action == "approve":
                new = approve(rec, actor, text, now)
            elif action == "reject":
                new = reject(rec, actor, text, now)
            elif action == "revoke":
                new = revoke(rec, actor, text, now)
            else:
                new = expire(rec, now)
        except RecognitionError:
            assert rec == snapshot
            continue
        assert rec == snapshot  # never mutated, even on success
        if new.state is not rec.state:
            assert new.state in ALLOWED[rec.state]
        admins = [d.admin for d in new.decisions]
        assert len(admins) == len(set(admins))  # one administrator counts once
        assert all(d.region == SH for d in new.decisions)  # only the recogniser decides
        assert all(d.comment.strip() for d in new.decisions)
        if new.state is RecognitionState.APPROVED:
            assert len(new.approvals) >= quorum
        if new.state is RecognitionState.REQUESTED:
            assert len(new.approvals) < quorum
        event(f"{rec.state.value} -> {new.state.value}")
        rec = new
