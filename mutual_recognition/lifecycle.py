"""The recognition state machine, as pure functions.

Each function takes a ``Recognition`` (and who acts, and when) and returns a new ``Recognition``,
or raises a ``RecognitionError`` and changes nothing (the input is frozen and never mutated).

REQUESTED → APPROVED (the policy's quorum of distinct recogniser administrators approved)
REQUESTED → REJECTED (any one recogniser administrator rejected)
APPROVED  → REVOKED  (any one recogniser administrator revoked; takes effect at once)
APPROVED  → EXPIRED  (past the expiry date; ``effective_state`` reports it before ``expire``
                      records it)

Checks run in this order, so the reason a caller sees is stable: who acts (role, then region),
then the arguments (comment, reason), then the state and the expiry, then double counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from mutual_recognition.assessment import Assessment
from mutual_recognition.errors import (
    AlreadyDecidedByAdmin,
    CommentRequired,
    InvalidConditions,
    InvalidStateTransition,
    NotAnAdministrator,
    NotYetExpired,
    ReasonRequired,
    RecognitionAlreadyExists,
    RecognitionExpired,
    RequesterCannotApprove,
    RoleNotAllowed,
    SelfRecognition,
    UnknownRegion,
    WrongRegion,
)
from mutual_recognition.model import (
    DELTA_REGIONS,
    Actor,
    Conditions,
    Decision,
    DecisionVerdict,
    Recognition,
    RecognitionState,
    Role,
    Subject,
    check_id,
    check_region,
    utc,
)
from mutual_recognition.policy import ApprovalPolicy

__all__ = [
    "approve",
    "effective_state",
    "expire",
    "in_force",
    "is_open",
    "reject",
    "remaining_approvals",
    "request",
    "revoke",
]


def effective_state(rec: Recognition, now: datetime) -> RecognitionState:
    """The state at ``now``: an APPROVED recognition past its expiry date is EXPIRED."""
    expires_at = rec.expires_at
    if rec.state is RecognitionState.APPROVED and expires_at is not None and utc(now) >= expires_at:
        return RecognitionState.EXPIRED
    return rec.state


def in_force(rec: Recognition, now: datetime) -> bool:
    """True when the recognition is approved, not revoked and not expired at ``now``."""
    return effective_state(rec, now) is RecognitionState.APPROVED


def is_open(rec: Recognition, now: datetime) -> bool:
    """True while decisions can still be taken: REQUESTED and not past the expiry date.

    A request left undecided past its expiry date stays REQUESTED (the state graph has no
    REQUESTED → EXPIRED edge) but is dead: decisions are refused and it blocks no new request.
    """
    return rec.state is RecognitionState.REQUESTED and not _past_expiry(rec, now)


def remaining_approvals(rec: Recognition) -> int:
    """Approvals still missing before the quorum (0 once reached)."""
    distinct = {d.admin for d in rec.approvals}
    return max(0, rec.required_approvals - len(distinct))


def _past_expiry(rec: Recognition, now: datetime) -> bool:
    expires_at = rec.expires_at
    return expires_at is not None and utc(now) >= expires_at


def request(
    *,
    request_id: str,
    subject: Subject,
    actor: Actor,
    now: datetime,
    policy: ApprovalPolicy,
    recognising_regions: Sequence[str] = (),
    conditions: Conditions | None = None,
    assessments: Mapping[str, Assessment] | None = None,
    known_regions: Sequence[str] = DELTA_REGIONS,
    existing: Iterable[Recognition] = (),
) -> tuple[Recognition, ...]:
    """Create one REQUESTED recognition per recognising region.

    The registry or an administrator of the subject's region requests; the gateway role may not.
    ``recognising_regions`` empty means every other region of ``known_regions`` (a delta-wide
    request); listed regions must be known and not the requester's (duplicates are dropped).
    Ids are ``{request_id}-{region}``; ``request_id`` is also the group of the recognitions.
    Each recognition gets ``policy.required_for(region)`` and, for a delta-wide request, the
    policy's ``delta_wide_needs_every_region``, both fixed from now on. ``assessments`` maps a
    recognising region to its assessment (see ``assess``). ``existing`` are recognitions already
    stored for this subject: one still open (``is_open``) or in force for a target region is refused
    (``RecognitionAlreadyExists``). An expiry date already past is refused.
    """
    check_id(request_id, "request id")
    moment = utc(now)
    if actor.role is Role.GATEWAY or actor.region is None:
        raise RoleNotAllowed(
            "only a registry or an administrator of the subject's region requests recognition",
            metadata={"actor": str(actor)},
        )
    requester = actor.region
    if requester != subject.region:
        raise WrongRegion(
            f"{actor} cannot request recognition of {subject}, which belongs to {subject.region}",
            metadata={"actor_region": requester, "subject_region": subject.region},
        )
    known = tuple(check_region(r) for r in known_regions)
    if requester not in known:
        raise UnknownRegion(
            f"region {requester} is not served here", metadata={"region": requester}
        )
    delta_wide = not recognising_regions
    if delta_wide:
        targets = tuple(r for r in known if r != requester)
        if not targets:
            raise SelfRecognition("there is no other region to ask")
    else:
        targets = tuple(dict.fromkeys(recognising_regions))
        for region in targets:
            check_region(region)
            if region == requester:
                raise SelfRecognition(
                    f"region {region} cannot recognise its own {subject.kind.value}",
                    metadata={"region": region},
                )
            if region not in known:
                raise UnknownRegion(
                    f"region {region} is not one of {', '.join(known)}", metadata={"region": region}
                )
    conds = conditions if conditions is not None else Conditions()
    expires_at = conds.expires_at
    if expires_at is not None and moment >= expires_at:
        raise InvalidConditions(
            f"expiry date {conds.expire_date} has already passed",
            metadata={"field": "expire_date"},
        )
    for old in existing:
        if (
            old.subject == subject
            and old.recognising_region in targets
            and (is_open(old, moment) or in_force(old, moment))
        ):
            raise RecognitionAlreadyExists(
                f"{old.name} already asks {old.recognising_region} to recognise {subject}"
                f" ({effective_state(old, moment).value})",
                metadata={"recognition": old.name},
            )
    needs_every = delta_wide and policy.delta_wide_needs_every_region and len(targets) > 1
    return tuple(
        Recognition(
            id=f"{request_id}-{region}",
            subject=subject,
            requesting_region=requester,
            recognising_region=region,
            conditions=conds,
            state=RecognitionState.REQUESTED,
            required_approvals=policy.required_for(region),
            requested_at=moment,
            requested_by=actor,
            group=request_id,
            group_regions=targets,
            delta_wide=delta_wide,
            needs_every_region=needs_every,
            assessment=None if assessments is None else assessments.get(region),
        )
        for region in targets
    )


def _check_decider(rec: Recognition, actor: Actor, action: str) -> str:
    """The administrator's name, if ``actor`` may decide on ``rec``; else raise."""
    if actor.role is not Role.ADMIN or not actor.name or actor.region is None:
        raise NotAnAdministrator(
            f"only an administrator of {rec.recognising_region} may {action} {rec.name};"
            f" {actor} is not an administrator",
            metadata={"actor": str(actor), "recognising_region": rec.recognising_region},
        )
    if actor.region == rec.requesting_region:
        raise RequesterCannotApprove(
            f"{actor} administers the requesting region {rec.requesting_region} and cannot"
            f" {action} for the recogniser {rec.recognising_region}",
            metadata={"actor": str(actor), "requesting_region": rec.requesting_region},
        )
    if actor.region != rec.recognising_region:
        raise WrongRegion(
            f"{actor} cannot {action} {rec.name}: only administrators of"
            f" {rec.recognising_region} decide it",
            metadata={"actor": str(actor), "recognising_region": rec.recognising_region},
        )
    return actor.name


def _check_open(rec: Recognition, now: datetime, action: str) -> None:
    if effective_state(rec, now) is RecognitionState.EXPIRED or (
        rec.state is RecognitionState.REQUESTED and _past_expiry(rec, now)
    ):
        raise RecognitionExpired(
            f"cannot {action} {rec.name}: it expired at the end of {rec.conditions.expire_date}",
            metadata={"recognition": rec.name, "expire_date": str(rec.conditions.expire_date)},
        )
    if rec.state is not RecognitionState.REQUESTED:
        raise InvalidStateTransition(
            f"cannot {action} {rec.name}: it is {rec.state.value}, decisions are taken only while"
            " it is requested",
            metadata={"recognition": rec.name, "state": rec.state.value},
        )


def _decide(
    rec: Recognition,
    actor: Actor,
    verdict: DecisionVerdict,
    comment: str,
    now: datetime,
    envelope: bytes,
) -> Recognition:
    action = verdict.value
    moment = utc(now)
    admin = _check_decider(rec, actor, action)
    if not comment.strip():
        raise CommentRequired(
            f"a decision to {action} needs a comment", metadata={"field": "comment"}
        )
    _check_open(rec, moment, action)
    if any(d.region == actor.region and d.admin == admin for d in rec.decisions):
        raise AlreadyDecidedByAdmin(
            f"{actor} has already decided on {rec.name}; one administrator counts once",
            metadata={"recognition": rec.name, "admin": admin},
        )
    decision = Decision(
        region=rec.recognising_region,
        admin=admin,
        verdict=verdict,
        comment=comment,
        decided_at=moment,
        envelope=envelope,
    )
    decided = replace(rec, decisions=(*rec.decisions, decision))
    if verdict is DecisionVerdict.REJECT:
        return replace(decided, state=RecognitionState.REJECTED)
    if remaining_approvals(decided) == 0:
        return replace(decided, state=RecognitionState.APPROVED)
    return decided


def approve(
    rec: Recognition, admin: Actor, comment: str, now: datetime, *, envelope: bytes = b""
) -> Recognition:
    """Record an approval; the recognition becomes APPROVED when the quorum is reached.

    Refused: not an administrator (``NOT_AN_ADMINISTRATOR``), an administrator of the requesting
    region (``REQUESTER_CANNOT_APPROVE``) or of any region but the recogniser (``WRONG_REGION``),
    a blank comment (``COMMENT_REQUIRED``), past the expiry date (``RECOGNITION_EXPIRED``), not
    REQUESTED (``INVALID_STATE_TRANSITION``), an administrator who already decided
    (``ALREADY_DECIDED_BY_ADMIN``). ``envelope`` is stored in the decision as is.
    """
    return _decide(rec, admin, DecisionVerdict.APPROVE, comment, now, envelope)


def reject(
    rec: Recognition, admin: Actor, comment: str, now: datetime, *, envelope: bytes = b""
) -> Recognition:
    """Record a rejection: one recogniser administrator's rejection makes it REJECTED at once.

    Refused for the same reasons as ``approve``.
    """
    return _decide(rec, admin, DecisionVerdict.REJECT, comment, now, envelope)


def revoke(
    rec: Recognition, admin: Actor, reason: str, now: datetime, *, envelope: bytes = b""
) -> Recognition:
    """Revoke an APPROVED recognition in force; one recogniser administrator suffices.

    Refused: who acts as for ``approve``, a blank reason (``REASON_REQUIRED``), already expired
    (``RECOGNITION_EXPIRED``), not APPROVED (``INVALID_STATE_TRANSITION``).
    """
    moment = utc(now)
    name = _check_decider(rec, admin, "revoke")
    if not reason.strip():
        raise ReasonRequired("a revocation needs a reason", metadata={"field": "reason"})
    if effective_state(rec, moment) is RecognitionState.EXPIRED:
        raise RecognitionExpired(
            f"cannot revoke {rec.name}: it expired at the end of {rec.conditions.expire_date}",
            metadata={"recognition": rec.name, "expire_date": str(rec.conditions.expire_date)},
        )
    if rec.state is not RecognitionState.APPROVED:
        raise InvalidStateTransition(
            f"cannot revoke {rec.name}: it is {rec.state.value}; only an approved recognition is"
            " revoked",
            metadata={"recognition": rec.name, "state": rec.state.value},
        )
    return replace(
        rec,
        state=RecognitionState.REVOKED,
        revoked_at=moment,
        revoked_by=name,
        revoke_reason=reason,
        revoke_envelope=envelope,
    )


def expire(rec: Recognition, now: datetime) -> Recognition:
    """Record the expiry of an APPROVED recognition past its expiry date (for the scheduler).

    Refused: not APPROVED (``INVALID_STATE_TRANSITION``), not yet past its expiry date or with
    none (``NOT_YET_EXPIRED``).
    """
    if rec.state is not RecognitionState.APPROVED:
        raise InvalidStateTransition(
            f"cannot expire {rec.name}: it is {rec.state.value}; only an approved recognition"
            " expires",
            metadata={"recognition": rec.name, "state": rec.state.value},
        )
    if not _past_expiry(rec, now):
        raise NotYetExpired(
            f"{rec.name} is in force until the end of {rec.conditions.expire_date}"
            if rec.conditions.expire_date is not None
            else f"{rec.name} has no expiry date",
            metadata={"recognition": rec.name},
        )
    return replace(rec, state=RecognitionState.EXPIRED)
