"""The recognition record: immutable values only (frozen dataclasses and enums).

Times are timezone-aware datetimes stored in UTC. Civil dates (an expiry date) are read in China
Standard Time (UTC+8, no daylight saving), the delta's legal time: a recognition with
``expire_date = 2026-12-31`` is in force until 2026-12-31 23:59:59.999999 CST and expired from
2027-01-01 00:00 CST (= 2026-12-31 16:00 UTC).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction

from mutual_recognition.assessment import Assessment
from mutual_recognition.errors import InvalidConditions, InvalidSubject, UnknownRegion

__all__ = [
    "DELTA_REGIONS",
    "DELTA_TZ",
    "Actor",
    "Conditions",
    "Decision",
    "DecisionVerdict",
    "Recognition",
    "RecognitionState",
    "Role",
    "Subject",
    "SubjectKind",
    "check_region",
    "utc",
]

DELTA_REGIONS: tuple[str, ...] = ("310000", "320000", "330000", "340000")
"""GB/T 2260 codes of Shanghai, Jiangsu, Zhejiang and Anhui (the one definition)."""

DELTA_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time, in which civil dates such as expiry dates are read."""

_REGION = re.compile(r"[0-9]{6}", re.ASCII)
_SUBJECT = re.compile(r"regions/([0-9]{6})/(methodologies|projects)/([^/\s]{1,128})", re.ASCII)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
_MIN_YEAR, _MAX_YEAR = 1900, 9999


def check_region(region: str) -> str:
    """Return a GB/T 2260 region code (six ASCII digits) unchanged, else raise ``UnknownRegion``."""
    if not _REGION.fullmatch(region):
        raise UnknownRegion(f"{region!r} is not a six-digit GB/T 2260 region code")
    return region


def check_id(identifier: str, what: str) -> str:
    """Return ``identifier`` if it is a valid resource id segment, else raise ``ValueError``."""
    if not _ID.fullmatch(identifier):
        raise ValueError(f"{what} {identifier!r} is not [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}")
    return identifier


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is a programming error (``ValueError``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


class Role(enum.StrEnum):
    """The role proven by an actor's certificate (the gateway's ``Role`` has the same values)."""

    REGISTRY = "registry"
    ADMIN = "admin"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: region (None only for the gateway), role and administrator name."""

    region: str | None
    role: Role
    name: str | None = None

    @classmethod
    def admin(cls, region: str, name: str) -> Actor:
        """An administrator of ``region``."""
        return cls(region=region, role=Role.ADMIN, name=name)

    @classmethod
    def registry(cls, region: str) -> Actor:
        """The registry of ``region``."""
        return cls(region=region, role=Role.REGISTRY)

    def __str__(self) -> str:
        who = f"admin/{self.name}" if self.role is Role.ADMIN else self.role.value
        return who if self.region is None else f"{self.region}/{who}"


class SubjectKind(enum.StrEnum):
    """What is recognised."""

    METHODOLOGY = "methodology"
    PROJECT = "project"


@dataclass(frozen=True, slots=True)
class Subject:
    """A methodology version (``regions/R/methodologies/ID`` + version) or a project.

    Construction validates the name against the kind; a project has no version.
    """

    kind: SubjectKind
    name: str
    version: str | None = None

    def __post_init__(self) -> None:
        m = _SUBJECT.fullmatch(self.name)
        collection = "methodologies" if self.kind is SubjectKind.METHODOLOGY else "projects"
        if m is None or m.group(2) != collection:
            raise InvalidSubject(
                f"{self.name!r} is not a {self.kind.value} name like"
                f" regions/310000/{collection}/ID",
                metadata={"subject": self.name[:200]},
            )
        if self.kind is SubjectKind.METHODOLOGY:
            if self.version is None or not self.version.strip():
                raise InvalidSubject(
                    f"recognising methodology {self.name} needs its version",
                    metadata={"subject": self.name},
                )
        elif self.version is not None:
            raise InvalidSubject(
                f"project {self.name} takes no version (a project names its methodology version)",
                metadata={"subject": self.name},
            )

    @classmethod
    def methodology(cls, name: str, version: str) -> Subject:
        """One version of a methodology."""
        return cls(SubjectKind.METHODOLOGY, name, version)

    @classmethod
    def project(cls, name: str) -> Subject:
        """A project (or personal scenario)."""
        return cls(SubjectKind.PROJECT, name)

    @property
    def region(self) -> str:
        """Region code the subject belongs to, from its resource name."""
        return self.name.split("/")[1]

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a recognition covers; construction validates (``InvalidConditions``).

    ``vintage_from``/``vintage_to`` are inclusive years (None: unbounded on that side);
    ``ets_adjustment_ratio`` is an exact fraction in (0, 1] or None (no adjustment);
    ``expire_date`` is the last civil day (CST) it is in force, or None (no expiry).
    """

    vintage_from: int | None = None
    vintage_to: int | None = None
    ets_adjustment_ratio: Fraction | None = None
    expire_date: date | None = None

    def __post_init__(self) -> None:
        for label, year in (("vintage_from", self.vintage_from), ("vintage_to", self.vintage_to)):
            if year is not None and (type(year) is not int or not _MIN_YEAR <= year <= _MAX_YEAR):
                raise InvalidConditions(
                    f"{label} {year!r} is not a year between {_MIN_YEAR} and {_MAX_YEAR}",
                    metadata={"field": label},
                )
        if (
            self.vintage_from is not None
            and self.vintage_to is not None
            and self.vintage_from > self.vintage_to
        ):
            raise InvalidConditions(
                f"vintage range {self.vintage_from}–{self.vintage_to} is empty",
                metadata={"field": "vintage_to"},
            )
        ratio = self.ets_adjustment_ratio
        if ratio is not None and (not isinstance(ratio, Fraction) or not 0 < ratio <= 1):
            raise InvalidConditions(
                f"ETS adjustment ratio {ratio!r} must be an exact Fraction in (0, 1]:"
                " a recogniser never credits more than was issued",
                metadata={"field": "ets_adjustment_ratio"},
            )
        if self.expire_date is not None and (
            not isinstance(self.expire_date, date) or isinstance(self.expire_date, datetime)
        ):
            raise InvalidConditions(
                f"expire_date {self.expire_date!r} must be a date",
                metadata={"field": "expire_date"},
            )

    def covers_vintage(self, vintage: int) -> bool:
        """True when ``vintage`` lies in the inclusive vintage range."""
        return (self.vintage_from is None or vintage >= self.vintage_from) and (
            self.vintage_to is None or vintage <= self.vintage_to
        )

    @property
    def expires_at(self) -> datetime | None:
        """First instant (UTC) at which the recognition is no longer in force, or None."""
        if self.expire_date is None:
            return None
        start_of_next_day = datetime.combine(
            self.expire_date + timedelta(days=1), time(0), tzinfo=DELTA_TZ
        )
        return start_of_next_day.astimezone(UTC)


class RecognitionState(enum.StrEnum):
    """REQUESTED → APPROVED | REJECTED; APPROVED → REVOKED | EXPIRED."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


class DecisionVerdict(enum.StrEnum):
    """An administrator's verdict (the proto's ``Verdict`` enum)."""

    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Decision:
    """One administrator's decision.

    ``envelope`` is opaque here: the gateway stores the hash or bytes of the signed envelope that
    carried the decision.
    """

    region: str
    admin: str
    verdict: DecisionVerdict
    comment: str
    decided_at: datetime
    envelope: bytes = b""


@dataclass(frozen=True, slots=True)
class Recognition:
    """One region's recognition of another region's methodology version or project.

    ``group`` is the id of the request that created it (shared by the recognitions one request
    made); ``group_regions`` are all the regions that request asked; ``delta_wide`` is True when
    the request named no region (every other region of the delta). ``needs_every_region`` is True
    when the policy made that delta-wide request all-or-nothing: the recognition is then in force
    only while every recognition of its group is.
    ``required_approvals`` and ``needs_every_region`` are fixed at request time, so a later change
    of configuration does not change recognitions already requested.
    """

    id: str
    subject: Subject
    requesting_region: str
    recognising_region: str
    conditions: Conditions
    state: RecognitionState
    required_approvals: int
    requested_at: datetime
    requested_by: Actor
    group: str
    group_regions: tuple[str, ...]
    delta_wide: bool = False
    needs_every_region: bool = False
    decisions: tuple[Decision, ...] = ()
    assessment: Assessment | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    """Name of the administrator who revoked it."""
    revoke_reason: str | None = None
    revoke_envelope: bytes = b""

    @property
    def name(self) -> str:
        """Global resource name: ``recognitions/{id}``."""
        return f"recognitions/{self.id}"

    @property
    def approvals(self) -> tuple[Decision, ...]:
        """Approving decisions by administrators of the recognising region."""
        return tuple(
            d
            for d in self.decisions
            if d.verdict is DecisionVerdict.APPROVE and d.region == self.recognising_region
        )

    @property
    def expires_at(self) -> datetime | None:
        """First instant (UTC) it is no longer in force, from the conditions' expiry date."""
        return self.conditions.expires_at
