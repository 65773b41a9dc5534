"""Recognitions to and from stored JSON (the assessment is stored apart, as its proto bytes)."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

from mutual_recognition.model import (
    Actor,
    Conditions,
    Decision,
    DecisionVerdict,
    Recognition,
    RecognitionState,
    Role,
    Subject,
    SubjectKind,
)


def _t(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _pt(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def dumps(rec: Recognition) -> str:
    """The recognition (without its assessment) as canonical JSON."""
    c = rec.conditions
    ratio = c.ets_adjustment_ratio
    body: dict[str, Any] = {
        "id": rec.id,
        "subject": [rec.subject.kind.value, rec.subject.name, rec.subject.version],
        "requesting_region": rec.requesting_region,
        "recognising_region": rec.recognising_region,
        "conditions": {
            "vintage_from": c.vintage_from,
            "vintage_to": c.vintage_to,
            "ratio": None if ratio is None else [ratio.numerator, ratio.denominator],
            "expire_date": None if c.expire_date is None else c.expire_date.isoformat(),
        },
        "state": rec.state.value,
        "required_approvals": rec.required_approvals,
        "requested_at": _t(rec.requested_at),
        "requested_by": [
            rec.requested_by.region,
            rec.requested_by.role.value,
            rec.requested_by.name,
        ],
        "group": rec.group,
        "group_regions": list(rec.group_regions),
        "delta_wide": rec.delta_wide,
        "needs_every_region": rec.needs_every_region,
        "decisions": [
            [d.region, d.admin, d.verdict.value, d.comment, _t(d.decided_at), d.envelope.hex()]
            for d in rec.decisions
        ],
        "revoked_at": _t(rec.revoked_at),
        "revoked_by": rec.revoked_by,
        "revoke_reason": rec.revoke_reason,
        "revoke_envelope": rec.revoke_envelope.hex(),
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def loads(text: str) -> Recognition:
    """The stored recognition back (its assessment is not part of it)."""
    b = json.loads(text)
    kind, name, version = b["subject"]
    c = b["conditions"]
    region, role, actor_name = b["requested_by"]
    requested_at = _pt(b["requested_at"])
    assert requested_at is not None
    return Recognition(
        id=b["id"],
        subject=Subject(SubjectKind(kind), name, version),
        requesting_region=b["requesting_region"],
        recognising_region=b["recognising_region"],
        conditions=Conditions(
            vintage_from=c["vintage_from"],
            vintage_to=c["vintage_to"],
            ets_adjustment_ratio=None if c["ratio"] is None else Fraction(*c["ratio"]),
            expire_date=None
            if c["expire_date"] is None
            else dt.date.fromisoformat(c["expire_date"]),
        ),
        state=RecognitionState(b["state"]),
        required_approvals=b["required_approvals"],
        requested_at=requested_at,
        requested_by=Actor(region, Role(role), actor_name),
        group=b["group"],
        group_regions=tuple(b["group_regions"]),
        delta_wide=b["delta_wide"],
        needs_every_region=b["needs_every_region"],
        decisions=tuple(
            Decision(r, a, DecisionVerdict(v), comment, _pt(at) or requested_at, bytes.fromhex(env))
            for r, a, v, comment, at, env in b["decisions"]
        ),
        revoked_at=_pt(b["revoked_at"]),
        revoked_by=b["revoked_by"],
        revoke_reason=b["revoke_reason"],
        revoke_envelope=bytes.fromhex(b["revoke_envelope"]),
    )
