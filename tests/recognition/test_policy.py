"""ApprovalPolicy: per-region quorum, defaults, and building it from configuration data."""

from __future__ import annotations

import pytest

from mutual_recognition import ApprovalPolicy, InvalidPolicy, approve, request
from tests.recognition.factories import AH, AH_METHODOLOGY, JS, NOW, SH, admin, registry


def test_defaults_to_one_approval_per_region() -> None:
    policy = ApprovalPolicy()
    assert [policy.required_for(r) for r in (SH, JS, AH)] == [1, 1, 1]
    assert policy.delta_wide_needs_every_region is False
    assert ApprovalPolicy.from_mapping({}) == policy


def test_from_mapping() -> None:
    policy = ApprovalPolicy.from_mapping(
        {"approvals": {"310000": 2}, "default_approvals": 1, "delta_wide_needs_every_region": True}
    )
    assert policy.required_for(SH) == 2
    assert policy.required_for(JS) == 1
    assert policy.delta_wide_needs_every_region is True
    assert policy == ApprovalPolicy(approvals={SH: 2}, delta_wide_needs_every_region=True)


def test_the_policy_cannot_be_changed_after_construction() -> None:
    table = {SH: 2}
    policy = ApprovalPolicy(approvals=table)
    table[SH] = 1  # the caller's dict is copied
    assert policy.required_for(SH) == 2
    with pytest.raises(TypeError):
        policy.approvals[SH] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"approvals": {"310000": 0}}, "approvals[310000]"),
        ({"approvals": {"310000": True}}, "approvals[310000]"),
        ({"approvals": {"310000": "2"}}, "approvals[310000]"),
        ({"approvals": {"shanghai": 2}}, "approvals"),
        ({"approvals": {310000: 2}}, "approvals"),
        ({"approvals": [2]}, "approvals"),
        ({"default_approvals": 0}, "default_approvals"),
        ({"delta_wide_needs_every_region": "yes"}, "delta_wide_needs_every_region"),
        ({"aprovals": {"310000": 2}}, "aprovals"),  # a typo never weakens the policy silently
    ],
)
def test_malformed_configuration_is_refused(data: dict[object, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        ApprovalPolicy.from_mapping(data)  # type: ignore[arg-type]
    assert caught.value.metadata["field"] == field
    assert caught.value.kind == "invalid_argument"


def test_direct_construction_validates_too() -> None:
    with pytest.raises(InvalidPolicy):
        ApprovalPolicy(approvals={SH: -1})
    with pytest.raises(InvalidPolicy):
        ApprovalPolicy(default_approvals=0)


def test_quorum_is_fixed_when_requested() -> None:
    (rec,) = request(
        request_id="r",
        subject=AH_METHODOLOGY,
        actor=registry(AH),
        now=NOW,
        policy=ApprovalPolicy(approvals={SH: 2}),
        recognising_regions=[SH],
    )
    # Configuration changes later do not change what this recognition needs.
    assert rec.required_approvals == 2
    assert approve(rec, admin(SH, "alice"), "ok", NOW).state.value == "requested"
