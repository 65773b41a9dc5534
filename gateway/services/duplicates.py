"""Duplicate detection: when a region's project is accepted, or an operator imports a list of
projects registered elsewhere, match it against the registrations on file and open a duplicate
case for each new match; while a case is open, the overlapping issuances of both sides are held.

Detection runs inside the transaction that accepts the project (``gateway.services.publish``)
or imports the list (:func:`import_external`), after the audit head is locked (so every lock is
taken in the order all writers use: audit head, then blocks, and two detections never run at once:
two matching projects published together always see each other). Per accepted project it costs an
upsert of its identity subject and two indexed reads (subjects with the same grid account, and
subjects in the grid cells within 100 m — every rule but the grid account's needs sites within
100 m, and that one is found by the account); everything else runs only on a match.

A pair of subjects gets one case ever: a republished project is re-matched (its keys may have
changed) but a pair that already has a case, open or resolved, is never opened again. The
rules, the datum conversion and the cells are ``mutual_recognition.duplicates``'s.

Holds (``_hold``): every issuance of either side whose monitoring period overlaps an issued
monitoring period of the other side — for an external side, its crediting period (unbounded
where the list gives no date: an unknown period is assumed to overlap) — is held whole: a
``case_holds`` row, and its active blocks become ``held``. The same is recomputed for the open
cases of the projects of every accepted issuance, so an issuance accepted while a case is open is
held at acceptance, and so is an older issuance of the other side that it now overlaps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection
from yrd.interop.v1 import records_pb2

from adapters.quantities import capacity_watts
from gateway import errors
from gateway.contract import (
    EXTERNAL_PROJECT_NAME,
    duplicate_case_name,
    external_project_name,
)
from gateway.security.audit_chain import DETAIL_RULE, external_row_digest
from gateway.services.record_checks import civil_date
from gateway.storage.audit_log import AuditLog, audit_log
from gateway.storage.db import Database
from gateway.storage.duplicate_store import DuplicateStore, SubjectColumns
from gateway.storage.ledger_store import LedgerStore
from mutual_recognition import ApprovalPolicy
from mutual_recognition import duplicates as dup
from mutual_recognition.identity import (
    IdentityKeyError,
    check_credit_code,
    check_grid_account,
    check_site,
)

CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
"""An external registration date counts from 00:00 China time."""
PROJECT, EXTERNAL = "project", "external"
"""``identity_subjects.kind``."""
_DATUM_NAME = {
    records_pb2.COORDINATE_DATUM_GCJ02: dup.Datum.GCJ02,
    records_pb2.COORDINATE_DATUM_BD09: dup.Datum.BD09,
}
"""The datum of a filed site; anything else (WGS-84, unspecified) reads WGS-84."""
_CATEGORIES = frozenset(
    records_pb2.ScenarioCategory.Name(v)
    for v in records_pb2.ScenarioCategory.values()
    if v != records_pb2.SCENARIO_CATEGORY_UNSPECIFIED
)


@dataclass(frozen=True, slots=True)
class OpenedCase:
    """A case detection opened, and the issuances it held on opening."""

    case_id: str
    first: str
    second: str
    rule: str
    """DuplicateRule name."""
    strength: str
    """MatchStrength name."""
    held: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What :func:`import_external` did."""

    scheme: str
    rows: int
    digest: str
    """SHA-256 (hex) of the list as imported."""
    cases: tuple[OpenedCase, ...]


# -- identity subjects ---------------------------------------------------------------------------


def _site(latitude: str, longitude: str, datum: str) -> dict[str, int | None]:
    """``lat_e7``, ``lon_e7`` and ``cell`` of a site as filed (None without one)."""
    if not (latitude and longitude):
        return {"lat_e7": None, "lon_e7": None, "cell": None}
    lat, lon = dup.to_wgs84(float(Decimal(latitude)), float(Decimal(longitude)), datum)
    lat_e7, lon_e7 = dup.to_e7(lat), dup.to_e7(lon)
    return {"lat_e7": lat_e7, "lon_e7": lon_e7, "cell": dup.cell_of_e7(lat_e7, lon_e7)}


def project_subject(
    project: records_pb2.Project, category: int, registered: dt.datetime
) -> dict[str, Any]:
    """The ``identity_subjects`` row of a region's project: its keys as matching reads them
    (the site in WGS-84, the capacity in watts), its methodology's ``category``."""
    identity = project.identity
    site = identity.site
    capacity: str | None = None
    if project.HasField("capacity"):
        try:
            capacity = dup.render_watts(capacity_watts(project.capacity))
        except ValueError:
            capacity = None  # a unit that is no power (the adapters accept none): no capacity
    period = project.crediting_period
    return {
        "subject": project.name,
        "kind": PROJECT,
        "region": project.region,
        "scheme": None,
        "credit_code": identity.owner_credit_code or None,
        "grid_account": identity.grid_account or None,
        **_site(site.latitude, site.longitude, _DATUM_NAME.get(site.datum, dup.Datum.WGS84)),
        "category": records_pb2.ScenarioCategory.Name(
            records_pb2.ScenarioCategory.ValueType(category)
        ),
        "capacity_w": capacity,
        "registered_time": registered,
        "credit_start": civil_date(period.start) if period.HasField("start") else None,
        "credit_end": civil_date(period.end) if period.HasField("end") else None,
        "title": project.title,
        "owner": project.owner,
    }


def external_subject(row: dup.ExternalListRow) -> dict[str, Any]:
    """The ``identity_subjects`` row of an external project (registered at 00:00 China time of
    its registration date)."""
    watts = row.capacity_w()
    return {
        "subject": row.subject,
        "kind": EXTERNAL,
        "region": None,
        "scheme": row.scheme,
        "credit_code": row.owner_credit_code or None,
        "grid_account": row.grid_account or None,
        **_site(row.latitude, row.longitude, row.datum or dup.Datum.WGS84),
        "category": row.category,
        "capacity_w": None if watts is None else dup.render_watts(watts),
        "registered_time": dt.datetime.combine(row.registration_date, dt.time(), CHINA_TIME),
        "credit_start": row.credit_start,
        "credit_end": row.credit_end,
        "title": row.title,
        "owner": "",
    }


def _subject(values: Mapping[str, Any] | SubjectColumns) -> dup.Subject:
    """The domain's view of a subject row (or of the values just saved)."""
    v = values if isinstance(values, Mapping) else values._asdict()
    capacity = v["capacity_w"]
    return dup.Subject(
        subject=v["subject"],
        region=v["region"],
        credit_code=v["credit_code"],
        grid_account=v["grid_account"],
        lat_e7=v["lat_e7"],
        lon_e7=v["lon_e7"],
        category=v["category"],
        capacity_w=None if capacity is None else Fraction(capacity),
        registered_time=v["registered_time"],
    )


# -- detection -----------------------------------------------------------------------------------


class Detector:
    """Detection and holds inside a caller's transaction, whose audit head is locked."""

    def __init__(
        self,
        conn: Connection,
        audit: AuditLog,
        approvals: ApprovalPolicy,
        *,
        now: dt.datetime,
        actor_region: str,
        actor: str,
    ) -> None:
        self.store = DuplicateStore(conn)
        self.ledger = LedgerStore(conn)
        self.audit = audit
        self.approvals = approvals
        self.now = now
        self.actor_region, self.actor = actor_region, actor

    def project_accepted(self, project: records_pb2.Project, category: int) -> list[OpenedCase]:
        """A region's project (new or a new revision) was accepted now: save its subject and open
        a case with every registration it newly matches."""
        values = project_subject(project, category, self.now)
        values["registered_time"] = self.store.save_subject(values)
        return self._match(_subject(values), external=False)

    def external_listed(self, row: dup.ExternalListRow) -> list[OpenedCase]:
        """An external project was imported: save its subject and open a case with every
        region's project it newly matches (never with another external project)."""
        values = external_subject(row)
        values["registered_time"] = self.store.save_subject(values)
        return self._match(_subject(values), external=True)

    def issuances_accepted(self, projects: Iterable[str]) -> list[str]:
        """Issuances of ``projects`` were accepted: every open case of those projects holds what
        overlaps now. Returns the issuances newly held."""
        held: list[str] = []
        for case_id, first, second in self.store.open_cases_of(sorted(set(projects))):
            held.extend(self._hold(case_id, first, second))
        return held

    def _match(self, me: dup.Subject, *, external: bool) -> list[OpenedCase]:
        store = self.store
        found: dict[str, SubjectColumns] = {}
        if me.grid_account:
            found.update((r.subject, r) for r in store.with_grid_account(me.grid_account))
        if me.lat_e7 is not None and me.lon_e7 is not None:
            cells = dup.cells_within(me.lat_e7 / 1e7, me.lon_e7 / 1e7, dup.PROBABLE_RADIUS_M)
            found.update((r.subject, r) for r in store.in_cells(cells))
        found.pop(me.subject, None)
        matches: list[tuple[dup.Subject, dup.Match]] = []
        for name in sorted(found):
            if external and found[name].kind != PROJECT:
                continue
            other = _subject(found[name])
            match = dup.classify(me, other)
            if match is not None:
                matches.append((other, match))
        if not matches:
            return []
        taken = store.paired_with(me.subject, [o.subject for o, _ in matches])
        return [self._open(me, o, m) for o, m in matches if o.subject not in taken]

    def _open(self, a: dup.Subject, b: dup.Subject, match: dup.Match) -> OpenedCase:
        first, second = dup.ordered(a, b)
        case_id = dup.case_id_of(first.subject, second.subject)
        regions = sorted({s.region for s in (first, second) if s.region is not None})
        # One number per case: with two deciding regions of different policies, the larger (the
        # resolution applies each region's own quorum).
        required = max(self.approvals.required_for(r) for r in regions)
        self.store.add_case(
            case_id=case_id,
            rule=match.rule.value,
            strength=match.strength.value,
            first_subject=first.subject,
            second_subject=second.subject,
            evidence=match.evidence.to_json(),
            deciding_regions=regions,
            required_approvals=required,
            open_time=self.now,
        )
        self._audit(
            "duplicate_case.opened",
            case_id,
            {
                "first": first.subject,
                "second": second.subject,
                "rule": match.rule.value,
                "strength": match.strength.value,
                "evidence": json.loads(match.evidence.to_json()),
                "deciding_regions": regions,
                "required_approvals": required,
            },
        )
        held = self._hold(case_id, first.subject, second.subject)
        return OpenedCase(
            case_id, first.subject, second.subject, match.rule.value, match.strength.value, held
        )

    def _hold(self, case_id: str, first: str, second: str) -> tuple[str, ...]:
        """Hold what the case must hold and does not yet; returns those issuances."""
        store = self.store
        sides = store.subjects([first, second])
        projects = [s for s in (first, second) if sides[s].kind == PROJECT]
        own: dict[str, list[tuple[str, dup.Period]]] = {s: [] for s in (first, second)}
        for name, project, _, body in store.issuances_of(projects):
            period = records_pb2.Record.FromString(body).issuance.monitoring_period
            end = civil_date(period.end) if period.HasField("end") else None
            own[project].append((name, dup.Period(civil_date(period.start), end)))

        def issued(side: str) -> list[dup.Period]:
            row = sides[side]
            if row.kind == PROJECT:
                return [p for _, p in own[side]]
            return [dup.Period(row.credit_start, row.credit_end)]

        wanted = set(dup.overlapping(own[first], issued(second)))
        wanted.update(dup.overlapping(own[second], issued(first)))
        new = sorted(wanted - store.holds_of(case_id))
        if not new:
            return ()
        store.add_holds(case_id, new)
        blocks = self.ledger.hold_issuances(new)
        self._audit(
            "duplicate_case.hold",
            case_id,
            {
                "issuances": new,
                "blocks": [list(b) for b in blocks],
                "held_grams": sum(e - s + 1 for _, s, e in blocks),
            },
        )
        return tuple(new)

    def _audit(self, kind: str, case_id: str, detail: dict[str, Any]) -> None:
        self.audit.append(
            kind=kind,
            subject=duplicate_case_name(case_id),
            actor_region=self.actor_region,
            actor=self.actor,
            detail={"v": DETAIL_RULE, **detail},
            now=self.now,
        )


# -- external lists ------------------------------------------------------------------------------


def _row_problems(row: dup.ExternalListRow) -> list[str]:
    """What is wrong with one parsed row (nothing: it can be stored and matched)."""
    problems: list[str] = []
    name = external_project_name(row.scheme, row.scheme_project_id)
    if not EXTERNAL_PROJECT_NAME.fullmatch(name):
        problems.append(f"scheme {row.scheme!r} / project id {row.scheme_project_id!r} invalid")
    if not row.title.strip():
        problems.append("title required")
    if row.category not in _CATEGORIES:
        problems.append(f"category {row.category!r} is not a scenario category")
    checks: list[Callable[[], object]] = [
        lambda: row.owner_credit_code and check_credit_code(row.owner_credit_code),
        lambda: row.grid_account and check_grid_account(row.grid_account),
        lambda: check_site(row.latitude or None, row.longitude or None, row.datum or None),
        row.capacity_w,
    ]
    for check in checks:
        try:
            check()
        except (IdentityKeyError, ValueError) as exc:
            problems.append(str(exc))
    if bool(row.capacity_value) != bool(row.capacity_unit):
        problems.append("capacity needs both a value and a unit")
    if row.credit_start and row.credit_end and row.credit_end < row.credit_start:
        problems.append("crediting period ends before it starts")
    return problems


def list_digest(rows: Sequence[dup.ExternalListRow]) -> str:
    """SHA-256 (hex) of the rows as canonical JSON (when the caller has no file digest)."""
    data = [
        {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
        for r in (dataclasses.asdict(row) for row in rows)
    ]
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _external_values(
    row: dup.ExternalListRow, now: dt.datetime, operator: str, digest: str
) -> dict[str, Any]:
    """The ``external_projects`` row of a listed project."""
    return {
        "subject": row.subject,
        "scheme": row.scheme,
        "scheme_project_id": row.scheme_project_id,
        "title": row.title,
        "owner_credit_code": row.owner_credit_code or None,
        "latitude": row.latitude or None,
        "longitude": row.longitude or None,
        "datum": row.datum or None,
        "grid_account": row.grid_account or None,
        "category": row.category,
        "capacity_value": row.capacity_value or None,
        "capacity_unit": row.capacity_unit or None,
        "registration_date": row.registration_date,
        "credit_start": row.credit_start,
        "credit_end": row.credit_end,
        "import_time": now,
        "imported_by": operator,
        "list_digest": digest,
    }


def import_external(
    db: Database,
    rows: Sequence[dup.ExternalListRow],
    operator: str,
    *,
    approvals: ApprovalPolicy,
    now: dt.datetime,
    digest: str | None = None,
) -> ImportOutcome:
    """Import a parsed external list (all rows of one scheme) in one transaction: each row's
    external project and identity subject are saved (replacing an earlier import of the same
    project), matched against the regions' projects, and each new match opens a case whose
    deciding region is the region side's. Audited as ``external_list.imported`` (actor: the
    operator), then the cases' entries. ``digest`` is the list file's SHA-256 (default: that of
    the rows). Raises ``ExternalListInvalid`` naming every bad row (numbered from 1) and
    nothing is stored."""
    problems: dict[str, str] = {}
    schemes = sorted({r.scheme for r in rows})
    if len(schemes) > 1:
        problems["scheme"] = f"one scheme per list, not {', '.join(schemes)}"
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        found = _row_problems(row)
        if row.subject in seen:
            found.append(f"{row.subject} is listed twice")
        seen.add(row.subject)
        if found:
            problems[f"row {number}"] = "; ".join(found)
    if problems:
        raise errors.ExternalListInvalid(
            f"the external list has {len(problems)} problem(s)", field_errors=problems
        )
    scheme = schemes[0] if schemes else ""
    digest = digest or list_digest(rows)
    opened: list[OpenedCase] = []
    stored = [_external_values(row, now, operator, digest) for row in rows]
    with db.transaction() as session:
        conn = session.connection()
        audit = audit_log(conn)
        audit.append(
            kind="external_list.imported",
            subject=f"schemes/{scheme}",
            actor_region="",
            actor=operator,
            detail={
                "v": DETAIL_RULE,
                "scheme": scheme,
                "rows": len(rows),
                "digest": digest,
                # What audit verify compares each stored row with (docs/protocol.md §8.3).
                "projects": sorted([v["subject"], external_row_digest(v)] for v in stored),
            },
            now=now,
        )
        detector = Detector(conn, audit, approvals, now=now, actor_region="", actor=operator)
        for row, values in zip(rows, stored, strict=True):
            detector.store.save_external(values)
            opened.extend(detector.external_listed(row))
    return ImportOutcome(scheme, len(rows), digest, tuple(opened))
