"""Deciding duplicate cases (mutual_recognition.cases): who decides, what a decision may say,
when the decisions resolve the case."""

from __future__ import annotations

import pytest

from mutual_recognition.cases import (
    CaseAlreadyDecided,
    CaseParties,
    Decision,
    NotDecidingRegion,
    Resolution,
    StandingInvalid,
    check_decision,
    normalise_standing,
    outcome,
)
from tests.recognition.factories import AH, JS, SH, ZJ

FIRST = f"regions/{SH}/projects/PV-1"
SECOND = f"regions/{JS}/projects/PV-9"
EXTERNAL = "schemes/CCER/projects/CCER-0042"
D, X = Resolution.DUPLICATE, Resolution.DISTINCT


def two_regions(sh: int = 1, js: int = 1) -> CaseParties:
    return CaseParties(FIRST, SECOND, (SH, JS), {SH: sh, JS: js})


def decide(
    parties: CaseParties,
    made: list[Decision],
    region: str,
    admin: str,
    resolution: Resolution,
    standing: str = "",
) -> tuple[Resolution, str] | None:
    """Check and record a decision as the service does; the outcome afterwards."""
    made.append(
        check_decision(
            parties, made, region=region, admin=admin, resolution=resolution, standing=standing
        )
    )
    return outcome(parties, made)


def test_one_admin_of_each_region_agreeing_resolves() -> None:
    parties = two_regions()
    made: list[Decision] = []
    assert decide(parties, made, SH, "alice", X) is None
    assert decide(parties, made, JS, "bob", X) == (X, "")


def test_disagreement_is_recorded_and_the_case_stays_open() -> None:
    parties = two_regions()
    made: list[Decision] = []
    assert decide(parties, made, SH, "alice", X) is None
    assert decide(parties, made, JS, "bob", D) is None
    assert len(made) == 2
    # A second administrator of Shanghai siding with Jiangsu settles it.
    assert decide(parties, made, SH, "carol", D) == (D, FIRST)


def test_duplicate_with_different_standing_is_a_disagreement() -> None:
    parties = two_regions()
    made: list[Decision] = []
    assert decide(parties, made, SH, "alice", D, FIRST) is None
    assert decide(parties, made, JS, "bob", D, SECOND) is None
    assert decide(parties, made, JS, "dan", D, FIRST) == (D, FIRST)


def test_empty_standing_means_the_first_registration() -> None:
    parties = two_regions()
    made: list[Decision] = []
    assert decide(parties, made, SH, "alice", D, "") is None
    assert made[0].standing == FIRST
    # An explicit first and an empty standing agree.
    assert decide(parties, made, JS, "bob", D, FIRST) == (D, FIRST)


def test_two_regions_each_needing_quorum_two() -> None:
    parties = two_regions(sh=2, js=2)
    made: list[Decision] = []
    assert decide(parties, made, SH, "a1", D, SECOND) is None
    assert decide(parties, made, JS, "b1", D, SECOND) is None
    assert decide(parties, made, SH, "a2", D, SECOND) is None  # Shanghai done, Jiangsu not
    assert decide(parties, made, JS, "b2", X) is None  # Jiangsu's second disagrees
    assert decide(parties, made, JS, "b3", D, SECOND) == (D, SECOND)


def test_quorums_may_differ_between_regions() -> None:
    parties = two_regions(sh=1, js=3)
    made: list[Decision] = []
    assert decide(parties, made, SH, "a1", X) is None
    assert decide(parties, made, JS, "b1", X) is None
    assert decide(parties, made, JS, "b2", X) is None
    assert decide(parties, made, JS, "b3", X) == (X, "")


def test_case_against_an_external_list_has_one_deciding_region() -> None:
    parties = CaseParties(EXTERNAL, FIRST, (SH,), {SH: 1})
    made: list[Decision] = []
    with pytest.raises(NotDecidingRegion):
        decide(parties, made, JS, "bob", X)
    # The external project may stand: then the region side is the one cancelled.
    assert decide(parties, made, SH, "alice", D, EXTERNAL) == (D, EXTERNAL)


def test_external_case_with_quorum_two() -> None:
    parties = CaseParties(FIRST, EXTERNAL, (SH,), {SH: 2})
    made: list[Decision] = []
    assert decide(parties, made, SH, "alice", D) is None
    assert decide(parties, made, SH, "carol", D) == (D, FIRST)


def test_same_region_filing_twice_is_decided_by_that_region_alone() -> None:
    parties = CaseParties(FIRST, f"regions/{SH}/projects/PV-2", (SH,), {SH: 1})
    assert decide(parties, [], SH, "alice", X) == (X, "")


def test_uninvolved_region_is_refused() -> None:
    parties = two_regions()
    with pytest.raises(NotDecidingRegion) as caught:
        check_decision(parties, [], region=ZJ, admin="zed", resolution=X, standing="")
    assert caught.value.reason == "NOT_DECIDING_REGION"
    assert caught.value.metadata == {"region": ZJ, "deciding_regions": f"{SH},{JS}"}


def test_one_decision_per_admin() -> None:
    parties = two_regions(sh=2)
    made: list[Decision] = []
    decide(parties, made, SH, "alice", X)
    with pytest.raises(CaseAlreadyDecided) as caught:
        decide(parties, made, SH, "alice", D)  # changing her mind is a second decision
    assert caught.value.reason == "CASE_ALREADY_DECIDED"
    assert len(made) == 1
    # The same name in another region is another administrator.
    assert decide(parties, made, JS, "alice", X) is None


@pytest.mark.parametrize(
    ("resolution", "standing"),
    [(X, FIRST), (X, "anything"), (D, "regions/310000/projects/OTHER"), (D, EXTERNAL)],
)
def test_standing_must_be_a_side_and_empty_on_distinct(
    resolution: Resolution, standing: str
) -> None:
    with pytest.raises(StandingInvalid) as caught:
        normalise_standing(two_regions(), resolution, standing)
    assert caught.value.reason == "STANDING_INVALID"
    assert caught.value.metadata["standing"] == standing


def test_refusals_come_in_order() -> None:
    parties = two_regions()
    made: list[Decision] = []
    made.append(Decision(SH, "alice", X, ""))
    # Uninvolved before anything else, then already decided before a bad standing.
    with pytest.raises(NotDecidingRegion):
        check_decision(parties, made, region=AH, admin="alice", resolution=X, standing="bad")
    with pytest.raises(CaseAlreadyDecided):
        check_decision(parties, made, region=SH, admin="alice", resolution=X, standing="bad")


def test_outcome_is_fixed_by_the_first_decision_reaching_every_quorum() -> None:
    parties = two_regions()
    made = [
        Decision(SH, "a1", X, ""),
        Decision(JS, "b1", X, ""),  # resolved DISTINCT here
        Decision(SH, "a2", D, FIRST),
        Decision(JS, "b2", D, FIRST),
    ]
    assert outcome(parties, made) == (X, "")
    assert outcome(parties, made[:1]) is None
    assert outcome(parties, []) is None


def test_decisions_of_other_regions_do_not_count() -> None:
    parties = two_regions()
    made = [Decision(ZJ, "z", X, ""), Decision(SH, "a", X, "")]
    assert outcome(parties, made) is None


def test_parties_need_deciding_regions_with_quorums() -> None:
    with pytest.raises(ValueError, match="at least one deciding region"):
        CaseParties(FIRST, SECOND, (), {})
    with pytest.raises(ValueError, match="quorum"):
        CaseParties(FIRST, SECOND, (SH, JS), {SH: 1})
