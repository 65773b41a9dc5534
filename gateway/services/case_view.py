"""Duplicate cases as the protocol shows them (``yrd.interop.v1.DuplicateCase``): both sides with
their identity keys exactly as filed and the site in WGS-84 as matched, the evidence, the
issuances held and what became of them, the decisions with their signed envelopes, the
findings. Read inside the caller's transaction, a page of cases at a time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import timestamp_pb2
from yrd.interop.v1 import duplicates_pb2, records_pb2

from gateway.contract import (
    BLOCK_STATE_PROTO,
    CASE_RESOLUTION_PROTO,
    CASE_STATE_PROTO,
    DUPLICATE_RULE_PROTO,
    HOLD_OUTCOME_PROTO,
    MATCH_STRENGTH_PROTO,
    duplicate_case_name,
)
from gateway.services.exchange import StoredEnvelope, fill_envelope
from gateway.storage.case_store import CaseStore
from gateway.storage.models import (
    DuplicateCaseRow,
    ExternalProjectRow,
    IdentitySubjectRow,
)

_DATUM = {
    "WGS84": records_pb2.COORDINATE_DATUM_WGS84,
    "GCJ02": records_pb2.COORDINATE_DATUM_GCJ02,
    "BD09": records_pb2.COORDINATE_DATUM_BD09,
}


def _timestamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when.astimezone(dt.UTC))
    return ts


def _date(msg: records_pb2.CalendarDate, day: dt.date) -> None:
    msg.year, msg.month, msg.day = day.year, day.month, day.day


def _degrees(e7: int) -> str:
    """Degrees × 10⁷ as a decimal string with 6 decimals (exact: integer arithmetic)."""
    micro = (abs(e7) + 5) // 10  # to 10⁻⁶ degree, half up
    sign = "-" if e7 < 0 and micro else ""
    return f"{sign}{micro // 1_000_000}.{micro % 1_000_000:06d}"


def _category(name: str) -> records_pb2.ScenarioCategory.ValueType:
    try:
        return records_pb2.ScenarioCategory.Value(name)
    except ValueError:
        return records_pb2.SCENARIO_CATEGORY_UNSPECIFIED


def _side(
    subject: str,
    found: IdentitySubjectRow | None,
    project: records_pb2.Project | None,
    external: ExternalProjectRow | None,
) -> duplicates_pb2.CaseSide:
    side = duplicates_pb2.CaseSide(subject=subject)
    if found is not None:
        side.region = found.region or ""
        side.title, side.owner = found.title, found.owner
        side.category = _category(found.category)
        side.registered_time.CopyFrom(_timestamp(found.registered_time))
        if found.lat_e7 is not None and found.lon_e7 is not None:
            side.site_wgs84.latitude = _degrees(found.lat_e7)
            side.site_wgs84.longitude = _degrees(found.lon_e7)
            side.site_wgs84.datum = records_pb2.COORDINATE_DATUM_WGS84
        if found.credit_start is not None:
            _date(side.crediting_period.start, found.credit_start)
        if found.credit_end is not None:
            _date(side.crediting_period.end, found.credit_end)
    if project is not None:
        # The record as filed: its identity keys, capacity and period win over the index's copy.
        side.identity.CopyFrom(project.identity)
        if project.HasField("capacity"):
            side.capacity.CopyFrom(project.capacity)
        if project.HasField("crediting_period"):
            side.crediting_period.CopyFrom(project.crediting_period)
        side.title, side.owner = project.title or side.title, project.owner
        side.region = project.region
    elif external is not None:
        side.title = external.title or side.title
        side.identity.owner_credit_code = external.owner_credit_code or ""
        side.identity.grid_account = external.grid_account or ""
        if external.latitude and external.longitude:
            side.identity.site.latitude = external.latitude
            side.identity.site.longitude = external.longitude
            side.identity.site.datum = _DATUM.get(
                (external.datum or "WGS84").upper(), records_pb2.COORDINATE_DATUM_UNSPECIFIED
            )
        if external.capacity_value:
            side.capacity.value = external.capacity_value
            side.capacity.unit = external.capacity_unit or ""
    return side


def _evidence(text: str) -> duplicates_pb2.MatchEvidence:
    """The stored evidence (JSON) as the protocol's message; unknown keys are ignored."""
    data: dict[str, Any] = json.loads(text) if text else {}
    distance = data.get("distance_metres", data.get("distance_m"))
    ratio = data.get("capacity_ratio")
    return duplicates_pb2.MatchEvidence(
        same_grid_account=bool(data.get("same_grid_account")),
        same_owner_credit_code=bool(data.get("same_owner_credit_code")),
        distance_metres="" if distance is None else str(distance),
        same_category=bool(data.get("same_category")),
        capacity_ratio="" if ratio is None else str(ratio),
    )


def case_messages(
    store: CaseStore, rows: Sequence[DuplicateCaseRow]
) -> list[duplicates_pb2.DuplicateCase]:
    """The protocol's form of those cases, in their order (a few statements for the whole
    page, not a few per case)."""
    ids = [r.case_id for r in rows]
    subjects = sorted({s for r in rows for s in (r.first_subject, r.second_subject)})
    indexed = store.subjects(subjects)
    externals = store.external_projects([s for s in subjects if s.startswith("schemes/")])
    bodies = store.project_bodies([s for s in subjects if s.startswith("regions/")])
    projects = {name: records_pb2.Record.FromString(b).project for name, b in bodies.items()}
    holds = store.holds(ids)
    issuances = {
        name: records_pb2.Record.FromString(body).issuance
        for name, (_, body) in store.issuances(sorted({h.issuance for h in holds})).items()
    }
    decisions = store.decisions(ids)
    envelopes = {row[0]: row[1:] for row in store.envelopes([d.envelope_hash for d in decisions])}
    findings = store.findings(ids)
    out: dict[str, duplicates_pb2.DuplicateCase] = {}
    for r in rows:
        msg = duplicates_pb2.DuplicateCase(
            name=duplicate_case_name(r.case_id),
            state=CASE_STATE_PROTO[r.state],
            rule=DUPLICATE_RULE_PROTO.get(r.rule, duplicates_pb2.DUPLICATE_RULE_UNSPECIFIED),
            strength=MATCH_STRENGTH_PROTO.get(
                r.strength, duplicates_pb2.MATCH_STRENGTH_UNSPECIFIED
            ),
            evidence=_evidence(r.evidence),
            deciding_regions=[x for x in r.deciding_regions.split(",") if x],
            required_approvals=r.required_approvals,
            standing=r.standing or "",
            open_time=_timestamp(r.open_time),
        )
        for which, subject in (("first", r.first_subject), ("second", r.second_subject)):
            getattr(msg, which).CopyFrom(
                _side(subject, indexed.get(subject), projects.get(subject), externals.get(subject))
            )
        if r.resolution:
            msg.resolution = CASE_RESOLUTION_PROTO[r.resolution]
        if r.resolve_time is not None:
            msg.resolve_time.CopyFrom(_timestamp(r.resolve_time))
        out[r.case_id] = msg
    for h in holds:
        item = out[h.case_id].issuances.add(
            issuance=h.issuance,
            outcome=HOLD_OUTCOME_PROTO.get(h.outcome, duplicates_pb2.HOLD_OUTCOME_UNSPECIFIED),
        )
        if h.issuance in issuances:
            issued = issuances[h.issuance]
            item.monitoring_period.CopyFrom(issued.monitoring_period)
            item.quantity_grams = issued.quantity_grams
    for d in decisions:
        decided = out[d.case_id].decisions.add(
            region=d.region,
            admin=d.admin,
            resolution=CASE_RESOLUTION_PROTO[d.resolution],
            standing=d.standing or "",
            comment=d.comment,
            decide_time=_timestamp(d.decide_time),
        )
        if d.envelope_hash in envelopes:
            fill_envelope(decided.envelope, StoredEnvelope._make(envelopes[d.envelope_hash]))
    for f in findings:
        out[f.case_id].findings.add(
            issuance=f.issuance,
            serials=records_pb2.SerialRange(start=f.serial_start, end=f.serial_end),
            holder_region=f.holder_region,
            state=BLOCK_STATE_PROTO.get(f.state, records_pb2.UNIT_BLOCK_STATE_UNSPECIFIED),
            quantity_grams=f.grams,
        )
    return [out[i] for i in ids]
