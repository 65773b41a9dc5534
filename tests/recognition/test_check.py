"""is_recognised: the question every transfer asks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from mutual_recognition import (
    ApprovalPolicy,
    Conditions,
    Recognition,
    Subject,
    UnknownRegion,
    Verdict,
    approve,
    is_recognised,
    reject,
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
    registry,
    requested,
)

LATER = NOW + timedelta(days=1)
RATIO = Fraction(2100, 3391)


def ask(
    recs: Iterable[Recognition],
    *,
    region: str = SH,
    vintage: int = 2024,
    now: datetime = LATER,
    version: str = "1",
) -> Verdict:
    return is_recognised(
        recs,
        region=region,
        origin_region=AH,
        methodology_name=AH_METHODOLOGY.name,
        methodology_version=version,
        project_name=AH_PROJECT.name,
        vintage=vintage,
        now=now,
    )


def approved(
    recogniser: str = SH,
    *,
    subject: Subject = AH_METHODOLOGY,
    conditions: Conditions | None = None,
    request_id: str = "req-1",
) -> Recognition:
    rec = requested(
        recogniser=recogniser, subject=subject, conditions=conditions, request_id=request_id
    )
    return approve(rec, admin(recogniser, "alice"), "ok", NOW)


def test_units_are_always_recognised_in_their_origin_region() -> None:
    v = ask([], region=AH)
    assert (v.recognised, v.reason, v.relied_on, v.ets_ratio) == (True, "ORIGIN_REGION", (), None)


def test_nothing_requested_means_not_recognised() -> None:
    v = ask([])
    assert (v.recognised, v.reason, v.relied_on) == (False, "NOT_RECOGNISED", ())
    assert SH in v.message


def test_approved_methodology_version_recognises_its_projects() -> None:
    rec = approved(conditions=Conditions(ets_adjustment_ratio=RATIO))
    v = ask([rec])
    assert v.recognised and v.reason == "RECOGNISED"
    assert v.relied_on == ("recognitions/req-1-310000",)
    assert v.ets_ratio == RATIO


def test_pending_rejected_revoked_expired() -> None:
    pending = requested()
    assert ask([pending]).reason == "RECOGNITION_PENDING"
    rejected = reject(requested(), admin(SH, "alice"), "no", NOW)
    assert ask([rejected]).reason == "RECOGNITION_REJECTED"
    rec = approved(conditions=Conditions(expire_date=date(2025, 12, 31)))
    assert ask([rec]).recognised  # proposal time: recognised
    revoked = revoke(rec, admin(SH, "bob"), "grid factor revised", LATER)
    v = ask([revoked], now=LATER + timedelta(hours=1))  # accept time: the pending transfer fails
    assert (v.recognised, v.reason, v.relied_on) == (
        False,
        "RECOGNITION_REVOKED",
        ("recognitions/req-1-310000",),
    )
    v = ask([rec], now=datetime(2025, 12, 31, 16, 0, tzinfo=UTC))  # 2026-01-01 00:00 CST
    assert (v.recognised, v.reason) == (False, "RECOGNITION_EXPIRED")
    undecided = requested(conditions=Conditions(expire_date=date(2025, 12, 31)))
    assert ask([undecided]).reason == "RECOGNITION_PENDING"
    assert ask([undecided], now=datetime(2026, 1, 1, tzinfo=UTC)).reason == "RECOGNITION_EXPIRED"


@pytest.mark.parametrize(
    ("vintage", "ok"), [(2022, False), (2023, True), (2025, True), (2026, False)]
)
def test_vintage_range_is_inclusive(vintage: int, ok: bool) -> None:
    rec = approved(conditions=Conditions(vintage_from=2023, vintage_to=2025))
    v = ask([rec], vintage=vintage)
    assert v.recognised is ok
    if not ok:
        assert v.reason == "VINTAGE_OUTSIDE_RECOGNITION"


def test_recognition_is_per_version_and_per_region() -> None:
    rec = approved()
    assert ask([rec], version="2").reason == "NOT_RECOGNISED"
    assert ask([rec], region=JS).reason == "NOT_RECOGNISED"
    assert ask([approved(recogniser=JS)]).reason == "NOT_RECOGNISED"


def test_project_level_rejection_overrides_the_methodology() -> None:
    method = approved()
    project = reject(
        requested(subject=AH_PROJECT, request_id="p"),
        admin(SH, "bob"),
        "this site is double counted",
        NOW,
    )
    v = ask([method, project])
    assert (v.recognised, v.reason, v.relied_on) == (
        False,
        "PROJECT_REJECTED",
        ("recognitions/p-310000",),
    )
    # Another project's rejection, or another region's, does not matter.
    other = Subject.project("regions/340000/projects/AH-PV-0002")
    assert ask(
        [method, reject(requested(subject=other, request_id="o"), admin(SH, "bob"), "no", NOW)]
    ).recognised
    assert ask(
        [
            method,
            reject(
                requested(recogniser=JS, subject=AH_PROJECT, request_id="j"),
                admin(JS, "jin"),
                "no",
                NOW,
            ),
        ]
    ).recognised


def test_project_level_revocation_overrides_the_methodology() -> None:
    project = revoke(approved(subject=AH_PROJECT, request_id="p"), admin(SH, "bob"), "fraud", NOW)
    v = ask([approved(), project])
    assert (v.recognised, v.reason) == (False, "PROJECT_REVOKED")


def test_project_level_approval_suffices_and_both_are_relied_on() -> None:
    project = approved(
        subject=AH_PROJECT,
        request_id="p",
        conditions=Conditions(ets_adjustment_ratio=Fraction(9, 10)),
    )
    v = ask([project])
    assert (v.recognised, v.relied_on, v.ets_ratio) == (
        True,
        ("recognitions/p-310000",),
        Fraction(9, 10),
    )
    both = ask([project, approved(conditions=Conditions(ets_adjustment_ratio=RATIO))])
    assert both.relied_on == ("recognitions/p-310000", "recognitions/req-1-310000")
    assert both.ets_ratio == RATIO  # the smaller ratio applies


def test_a_new_request_after_revocation_explains_the_current_state() -> None:
    revoked = revoke(approved(), admin(SH, "bob"), "revised", NOW)
    again = requested(request_id="req-2", now=LATER)
    v = ask([revoked, again], now=LATER + timedelta(hours=1))
    assert (v.reason, v.relied_on) == ("RECOGNITION_PENDING", ("recognitions/req-2-310000",))


def _delta_wide(every: bool) -> tuple[Recognition, ...]:
    return request(
        request_id="dw",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=NOW,
        policy=ApprovalPolicy(delta_wide_needs_every_region=every),
    )


def test_delta_wide_all_or_nothing_needs_every_region() -> None:
    sh, js, zj = _delta_wide(every=True)
    sh = approve(sh, admin(SH, "alice"), "ok", NOW)
    js = approve(js, admin(JS, "jin"), "ok", NOW)
    v = ask([sh, js, zj])
    assert (v.recognised, v.reason) == (False, "DELTA_WIDE_INCOMPLETE")
    assert ask([sh, js]).reason == "DELTA_WIDE_INCOMPLETE"  # a missing member is not in force
    zj = approve(zj, admin(ZJ, "zoe"), "ok", NOW)
    assert ask([sh, js, zj]).recognised
    assert ask([sh, js, zj], region=JS).recognised
    zj = revoke(zj, admin(ZJ, "zoe"), "withdrawn", NOW)
    assert ask([sh, js, zj]).reason == "DELTA_WIDE_INCOMPLETE"


def test_delta_wide_without_the_rule_is_per_region() -> None:
    sh, js, zj = _delta_wide(every=False)
    sh = approve(sh, admin(SH, "alice"), "ok", NOW)
    assert ask([sh, js, zj]).recognised
    assert ask([sh, js, zj], region=JS).reason == "RECOGNITION_PENDING"


def test_regions_are_checked() -> None:
    with pytest.raises(UnknownRegion):
        ask([], region="Shanghai")
