"""The question every transfer asks: does region B recognise these units?"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from mutual_recognition.lifecycle import effective_state, in_force, is_open
from mutual_recognition.model import Recognition, RecognitionState, SubjectKind, check_region, utc

__all__ = [
    "ORIGIN_REGION",
    "RECOGNISED",
    "Verdict",
    "group_complete",
    "is_recognised",
]

# Reasons of a positive answer.
ORIGIN_REGION = "ORIGIN_REGION"
RECOGNISED = "RECOGNISED"
# Reasons of a negative answer.
NOT_RECOGNISED = "NOT_RECOGNISED"
RECOGNITION_PENDING = "RECOGNITION_PENDING"
RECOGNITION_REJECTED = "RECOGNITION_REJECTED"
RECOGNITION_REVOKED = "RECOGNITION_REVOKED"
RECOGNITION_EXPIRED = "RECOGNITION_EXPIRED"
VINTAGE_OUTSIDE_RECOGNITION = "VINTAGE_OUTSIDE_RECOGNITION"
DELTA_WIDE_INCOMPLETE = "DELTA_WIDE_INCOMPLETE"
PROJECT_REJECTED = "PROJECT_REJECTED"
PROJECT_REVOKED = "PROJECT_REVOKED"

_STATE_REASON = {
    RecognitionState.REQUESTED: RECOGNITION_PENDING,
    RecognitionState.REJECTED: RECOGNITION_REJECTED,
    RecognitionState.REVOKED: RECOGNITION_REVOKED,
    RecognitionState.EXPIRED: RECOGNITION_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: ``reason`` is ``ORIGIN_REGION`` or ``RECOGNISED`` when recognised, else why not.

    ``relied_on`` names the recognitions the answer rests on (project-level first); for a negative
    answer it names the recognition the reason is about, if any. ``ets_ratio`` is the adjustment
    ratio in force (None: no adjustment). ``message`` explains it in English.
    """

    recognised: bool
    reason: str
    relied_on: tuple[str, ...] = ()
    ets_ratio: Fraction | None = None
    message: str = ""


def group_complete(rec: Recognition, recognitions: Sequence[Recognition], now: datetime) -> bool:
    """For an all-or-nothing delta-wide recognition: every region of its group has one in force.

    A group member missing from ``recognitions`` counts as not in force. Always True for a
    recognition that does not need every region.
    """
    if not rec.needs_every_region:
        return True
    return all(
        any(
            other.group == rec.group
            and other.subject == rec.subject
            and other.recognising_region == region
            and in_force(other, now)
            for other in recognitions
        )
        for region in rec.group_regions
    )


def _problem(
    rec: Recognition, recognitions: Sequence[Recognition], vintage: int, now: datetime
) -> str | None:
    """None when ``rec`` recognises units of ``vintage`` at ``now``, else the reason why not."""
    state = effective_state(rec, now)
    if state is RecognitionState.REQUESTED and not is_open(rec, now):
        return RECOGNITION_EXPIRED  # undecided past its expiry date: it never will be
    if state is not RecognitionState.APPROVED:
        return _STATE_REASON[state]
    if not rec.conditions.covers_vintage(vintage):
        return VINTAGE_OUTSIDE_RECOGNITION
    if not group_complete(rec, recognitions, now):
        return DELTA_WIDE_INCOMPLETE
    return None


def _newest(recs: Iterable[Recognition]) -> Recognition | None:
    return max(recs, key=lambda r: (r.requested_at, r.id), default=None)


def _smallest_ratio(recs: Sequence[Recognition]) -> Fraction | None:
    ratios = [r.conditions.ets_adjustment_ratio for r in recs]
    return min((r for r in ratios if r is not None), default=None)


def is_recognised(
    recognitions: Iterable[Recognition],
    *,
    region: str,
    origin_region: str,
    methodology_name: str,
    methodology_version: str,
    project_name: str,
    vintage: int,
    now: datetime,
) -> Verdict:
    """Does ``region`` recognise units of ``project_name`` (under that methodology version)?

    Units are always recognised in their origin region. Elsewhere, among the recognitions by
    ``region`` of that project or that methodology version: an approved project-level recognition
    in force covering the vintage suffices; else a project-level rejection (``PROJECT_REJECTED``)
    or revocation (``PROJECT_REVOKED``) refuses; else an approved methodology-version recognition
    in force covering the vintage suffices (and, when all-or-nothing delta-wide, with its whole
    group in force). When several apply, all are relied on and the smallest ETS ratio among them
    applies. Otherwise the reason comes from the most recently requested relevant recognition
    (``RECOGNITION_PENDING``/``_REJECTED``/``_REVOKED``/``_EXPIRED``,
    ``VINTAGE_OUTSIDE_RECOGNITION``, ``DELTA_WIDE_INCOMPLETE``), or ``NOT_RECOGNISED`` when none
    exists. Pass every recognition of the subject (all regions) so delta-wide groups can be
    checked; the others are ignored.
    """
    moment = utc(now)
    check_region(region)
    check_region(origin_region)
    if region == origin_region:
        return Verdict(
            True, ORIGIN_REGION, message=f"units of {project_name} are {origin_region}'s own"
        )
    every = list(recognitions)
    mine = [r for r in every if r.recognising_region == region]
    projects = [
        r for r in mine if r.subject.kind is SubjectKind.PROJECT and r.subject.name == project_name
    ]
    methods = [
        r
        for r in mine
        if r.subject.kind is SubjectKind.METHODOLOGY
        and r.subject.name == methodology_name
        and r.subject.version == methodology_version
    ]
    problems = {r.id: _problem(r, every, vintage, moment) for r in (*projects, *methods)}
    project_ok = [r for r in projects if problems[r.id] is None]
    method_ok = [r for r in methods if problems[r.id] is None]
    if not project_ok:
        for state, reason in (
            (RecognitionState.REJECTED, PROJECT_REJECTED),
            (RecognitionState.REVOKED, PROJECT_REVOKED),
        ):
            blocking = _newest(r for r in projects if r.state is state)
            if blocking is not None:
                return Verdict(
                    False,
                    reason,
                    (blocking.name,),
                    message=f"{region} {state.value} project {project_name} ({blocking.name})",
                )
    relied = [*sorted(project_ok, key=lambda r: r.id), *sorted(method_ok, key=lambda r: r.id)]
    if relied:
        ratio = _smallest_ratio(relied)
        return Verdict(
            True,
            RECOGNISED,
            tuple(r.name for r in relied),
            ratio,
            message=f"{region} recognises {project_name} vintage {vintage} through"
            f" {', '.join(r.name for r in relied)}",
        )
    newest = _newest((*projects, *methods))
    if newest is None:
        return Verdict(
            False,
            NOT_RECOGNISED,
            message=f"{region} has no recognition of {methodology_name} version"
            f" {methodology_version} or of project {project_name}",
        )
    why = problems[newest.id]
    assert why is not None
    return Verdict(
        False,
        why,
        (newest.name,),
        message=f"{region} does not recognise {project_name} vintage {vintage}:"
        f" {newest.name} ({newest.subject}) gives {why}",
    )
