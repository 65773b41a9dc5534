"""Deciding a duplicate case: who may decide, what a decision may say, and when the decisions so
far resolve the case. Pure Python: no gRPC, no database, no I/O.

A case has two subjects (``first`` is the earlier registration) and one or two deciding regions
(the regions of its region-side subjects). Each deciding region needs ``required[region]``
decisions of its own administrators carrying the same (resolution, standing); the case is
resolved when every deciding region has reached its quorum on the same tuple. Disagreeing
decisions are kept and the case stays open. One decision per administrator.

``standing`` names the registration that stands on ``DUPLICATE``: one of the two subjects, empty
meaning ``first`` (normalised here, so an empty standing and an explicit ``first`` agree); it is
empty on ``DISTINCT``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CaseAlreadyDecided",
    "CaseDecisionError",
    "CaseParties",
    "Decision",
    "NotDecidingRegion",
    "Resolution",
    "StandingInvalid",
    "check_decision",
    "normalise_standing",
    "outcome",
]


class Resolution(enum.StrEnum):
    """An administrator's decision on a case (the stored names)."""

    DISTINCT = "DISTINCT"
    """Two distinct projects: the holds are released."""
    DUPLICATE = "DUPLICATE"
    """One project registered twice: one registration stands, the other's held issuances are
    cancelled."""


class CaseDecisionError(Exception):
    """A decision the case cannot take; ``reason`` names it in the gateway's catalogue."""

    reason: ClassVar[str] = "CASE_DECISION_REFUSED"

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class NotDecidingRegion(CaseDecisionError):
    """The administrator's region does not decide this case."""

    reason = "NOT_DECIDING_REGION"


class CaseAlreadyDecided(CaseDecisionError):
    """This administrator has decided this case already."""

    reason = "CASE_ALREADY_DECIDED"


class StandingInvalid(CaseDecisionError):
    """The standing is not one of the two subjects, or is set on ``DISTINCT``."""

    reason = "STANDING_INVALID"


@dataclass(frozen=True, slots=True)
class Decision:
    """One administrator's decision, with its standing normalised (``""`` on ``DISTINCT``,
    a subject on ``DUPLICATE``)."""

    region: str
    admin: str
    resolution: Resolution
    standing: str

    @property
    def verdict(self) -> tuple[Resolution, str]:
        return self.resolution, self.standing


@dataclass(frozen=True, slots=True)
class CaseParties:
    """Who a case is between and who decides it: the two subjects (``first`` the earlier), the
    deciding regions and, for each, the decisions of its administrators it needs."""

    first: str
    second: str
    deciding: tuple[str, ...]
    required: Mapping[str, int]

    def __post_init__(self) -> None:
        if not self.deciding:
            raise ValueError("a case has at least one deciding region")
        for region in self.deciding:
            if self.required.get(region, 0) < 1:
                raise ValueError(f"deciding region {region} needs a quorum of at least 1")

    def quorum(self, region: str) -> int:
        return self.required[region]


def normalise_standing(parties: CaseParties, resolution: Resolution, standing: str) -> str:
    """The standing a decision means: ``""`` for ``DISTINCT`` (any other value is refused),
    ``first`` for an empty standing on ``DUPLICATE``, else one of the two subjects
    (:class:`StandingInvalid` otherwise)."""
    if resolution is Resolution.DISTINCT:
        if standing:
            raise StandingInvalid(
                "a DISTINCT resolution names no standing registration",
                metadata={"standing": standing},
            )
        return ""
    if not standing:
        return parties.first
    if standing not in (parties.first, parties.second):
        raise StandingInvalid(
            f"{standing} is neither side of the case ({parties.first}, {parties.second})",
            metadata={"standing": standing},
        )
    return standing


def check_decision(
    parties: CaseParties,
    decisions: Sequence[Decision],
    *,
    region: str,
    admin: str,
    resolution: Resolution,
    standing: str,
) -> Decision:
    """The new decision of ``admin`` of ``region``, normalised, or the refusal, in this order:
    :class:`NotDecidingRegion`, :class:`CaseAlreadyDecided`, :class:`StandingInvalid`."""
    if region not in parties.deciding:
        raise NotDecidingRegion(
            f"region {region} does not decide this case (deciding: {', '.join(parties.deciding)})",
            metadata={"region": region, "deciding_regions": ",".join(parties.deciding)},
        )
    if any(d.region == region and d.admin == admin for d in decisions):
        raise CaseAlreadyDecided(
            f"{admin} of {region} has decided this case already",
            metadata={"region": region, "admin": admin},
        )
    return Decision(region, admin, resolution, normalise_standing(parties, resolution, standing))


def _reached(
    parties: CaseParties, decisions: Sequence[Decision], verdict: tuple[Resolution, str]
) -> bool:
    """Whether every deciding region has its quorum of decisions carrying ``verdict``."""
    return all(
        sum(1 for d in decisions if d.region == region and d.verdict == verdict)
        >= parties.quorum(region)
        for region in parties.deciding
    )


def outcome(parties: CaseParties, decisions: Sequence[Decision]) -> tuple[Resolution, str] | None:
    """The (resolution, standing) the decisions resolve the case to, or None while it stays open.

    Decisions are taken in the order they were made: the case resolves at the first decision
    with which every deciding region has reached its quorum on the same tuple (decisions made
    after that do not change it). Decisions of regions that do not decide are ignored."""
    for n, latest in enumerate(decisions, start=1):
        # Before this decision no tuple had every quorum, so only its own tuple can have now.
        if _reached(parties, decisions[:n], latest.verdict):
            return latest.verdict
    return None
