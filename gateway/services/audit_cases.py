"""``audit verify``: duplicate cases and external lists replayed from the log — the cases, the
issuances they hold (and what the ledger's blocks became), the administrators' decisions, the
findings of a DUPLICATE resolution, the imported external projects — for the verifier to compare
with ``duplicate_cases``, ``case_holds``, ``case_decisions``, ``case_findings`` and
``external_projects`` (``CaseTables``). Pure replay: no I/O. See docs/protocol.md §8.3."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError
from yrd.interop.v1 import duplicate_service_pb2

from gateway.contract import (
    ACTIVE,
    CANCELLED,
    CASE_OPEN,
    CASE_RESOLUTION_OF,
    CASE_VERDICT_TYPE,
    HELD,
    HOLD_CANCELLED,
    HOLD_HELD,
    HOLD_RELEASED,
    parse_duplicate_case_name,
)
from gateway.security.audit_chain import StoredEntry, external_row_digest
from gateway.services.audit_findings import UNCHECKED, Tampered, bad_entry, compare, show

if TYPE_CHECKING:
    from gateway.services.audit_replay import Replay
    from gateway.storage.audit_store import StoredRows

Envelope = tuple[str, bytes] | None


@dataclass
class CaseReplay:
    """The duplicate cases and external lists the entries describe, entry after entry."""

    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    """case id → its ``duplicate_cases`` row."""
    holds: dict[tuple[str, str], str] = field(default_factory=dict)
    """(case id, issuance) → outcome (``case_holds``)."""
    open_holds: dict[str, set[str]] = field(default_factory=dict)
    """issuance → the cases holding it now (an issuance is held while this is not empty)."""
    holding: dict[str, set[str]] = field(default_factory=dict)
    """case id → the issuances it holds now (the same holds, by case)."""
    decisions: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(case id, region, administrator) → its ``case_decisions`` row."""
    findings: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    """(case id, issuance, first serial) → its ``case_findings`` row."""
    external: dict[str, dict[str, Any]] = field(default_factory=dict)
    """subject → what the latest import that listed it says of its ``external_projects`` row."""
    first_import: dict[str, str] = field(default_factory=dict)
    """subject → the row digest of the first import that listed it (whose registration date
    the subject keeps)."""

    # -- cases ----------------------------------------------------------------------------------

    def _case(self, e: StoredEntry) -> tuple[str, dict[str, Any]]:
        case_id = parse_duplicate_case_name(e.subject)
        row = self.cases.get(case_id or "")
        if case_id is None or row is None:
            raise bad_entry(e, f"entry {e.sequence} names {e.subject!r}, which no entry opened")
        return case_id, row

    def opened(self, replay: Replay, e: StoredEntry, d: Mapping[str, Any], _: Envelope) -> None:
        case_id = parse_duplicate_case_name(e.subject)
        if case_id is None or case_id in self.cases:
            raise bad_entry(e, f"entry {e.sequence} opens {e.subject!r} again or is no case")
        self.cases[case_id] = {
            "case_id": case_id,
            "state": CASE_OPEN,
            "rule": d["rule"],
            "strength": d["strength"],
            "first_subject": d["first"],
            "second_subject": d["second"],
            "evidence": dict(d["evidence"]),
            "deciding_regions": ",".join(d["deciding_regions"]),
            "required_approvals": d["required_approvals"],
            "resolution": None,
            "standing": None,
            "open_time": e.created_at,
            "resolve_time": None,
        }

    def hold(self, replay: Replay, e: StoredEntry, d: Mapping[str, Any], _: Envelope) -> None:
        """The case holds these issuances (new holds): their listed active blocks are held."""
        case_id, _row = self._case(e)
        for issuance in d["issuances"]:
            if issuance not in replay.issuances:
                raise bad_entry(e, f"entry {e.sequence} holds {issuance!r}, which none issued")
            self.holds[(case_id, issuance)] = HOLD_HELD
            self.open_holds.setdefault(issuance, set()).add(case_id)
            self.holding.setdefault(case_id, set()).add(issuance)
        for origin, start, end in d["blocks"]:
            replay.serials[origin].update(start, end, state=HELD)

    def decision(self, replay: Replay, e: StoredEntry, d: Mapping[str, Any], env: Envelope) -> None:
        """An administrator's decision: what the entry says is what its signed verdict says."""
        case_id, _row = self._case(e)
        if env is None or env[0] != CASE_VERDICT_TYPE:
            raise bad_entry(e, f"entry {e.sequence} names no CaseVerdict envelope")
        try:
            verdict = duplicate_service_pb2.CaseVerdict.FromString(env[1])
        except DecodeError as exc:
            raise bad_entry(e, f"entry {e.sequence}: its envelope is no CaseVerdict") from exc
        said = (
            verdict.duplicate_case,
            CASE_RESOLUTION_OF.get(verdict.resolution),
            verdict.comment,
            verdict.standing in ("", d["standing"]),
        )
        if said != (e.subject, d["resolution"], d["comment"], True):
            raise bad_entry(
                e, f"entry {e.sequence} does not say what the CaseVerdict it names says"
            )
        admin = e.actor.removeprefix("admin/")
        self.decisions[(case_id, e.actor_region, admin)] = {
            "case_id": case_id,
            "region": e.actor_region,
            "admin": admin,
            "resolution": d["resolution"],
            "standing": d["standing"] or None,
            "comment": d["comment"],
            "decide_time": e.created_at,
            "envelope_hash": bytes.fromhex(d["envelope_hash"]),
        }

    def resolved(self, replay: Replay, e: StoredEntry, d: Mapping[str, Any], _: Envelope) -> None:
        """The case is resolved: DISTINCT releases what it holds; DUPLICATE cancels the held
        issuances the entry lists (every case's hold on them ends cancelled) and releases the
        rest. A released issuance another open case holds stays held."""
        case_id, row = self._case(e)
        if row["state"] != CASE_OPEN:
            raise bad_entry(e, f"entry {e.sequence} resolves {e.subject}, resolved before")
        row.update(
            state=d["resolution"],
            resolution=d["resolution"],
            standing=d["standing"] or None,
            resolve_time=e.created_at,
        )
        mine = sorted(self.holding.pop(case_id, set()))
        cancelled = set(d["cancelled"])
        if not cancelled <= set(mine):
            raise bad_entry(e, f"entry {e.sequence} cancels issuances the case does not hold")
        for issuance in sorted(cancelled):
            for other in self.open_holds.pop(issuance, set()):
                self.holds[(other, issuance)] = HOLD_CANCELLED
                self.holding.get(other, set()).discard(issuance)
        released = [i for i in mine if i not in cancelled]
        for issuance in released:
            self.holds[(case_id, issuance)] = HOLD_RELEASED
            self.open_holds[issuance].discard(case_id)
        freed = [i for i in released if not self.open_holds[i]]
        still = [i for i in released if self.open_holds[i]]
        if (freed, still) != (sorted(d["released"]), sorted(d["still_held"])):
            raise bad_entry(
                e,
                f"entry {e.sequence} releases {show(d['released'])}, but of the issuances the "
                f"log has the case hold, {show(freed)} are free now",
            )
        for issuance in freed:
            del self.open_holds[issuance]
        replay.issuance_states(freed, (HELD,), ACTIVE)
        replay.issuance_states(sorted(cancelled), (HELD, ACTIVE), CANCELLED)
        for f in d["findings"]:
            key = (case_id, f["issuance"], f["serial_start"])
            self.findings[key] = {"case_id": case_id, **{k: f[k] for k in _FINDING}}

    # -- external lists -------------------------------------------------------------------------

    def imported(self, replay: Replay, e: StoredEntry, d: Mapping[str, Any], _: Envelope) -> None:
        """An external list: each project it lists is stored as the list gives it (a later
        import of the same project replaces it)."""
        listed = d["projects"]
        if len(listed) != d["rows"]:
            raise bad_entry(e, f"entry {e.sequence} lists {len(listed)} of {d['rows']} rows")
        for subject, digest in listed:
            self.external[subject] = {
                "scheme": d["scheme"],
                "sha256": digest,
                "import_time": e.created_at,
                "imported_by": e.actor,
                "list_digest": d["digest"],
            }
            self.first_import.setdefault(subject, digest)


_FINDING = ("issuance", "serial_start", "serial_end", "holder_region", "state", "grams")

CASE_KINDS: dict[
    str, Callable[[CaseReplay, Replay, StoredEntry, Mapping[str, Any], Envelope], None]
]
CASE_KINDS = {
    "duplicate_case.opened": CaseReplay.opened,
    "duplicate_case.hold": CaseReplay.hold,
    "duplicate_case.decision": CaseReplay.decision,
    "duplicate_case.resolved": CaseReplay.resolved,
    "external_list.imported": CaseReplay.imported,
}
"""The kinds replayed here, with their handlers."""


# -- at the end: the tables against the replay ---------------------------------------------------

SubjectOf = Callable[[Mapping[str, Any]], dict[str, Any]]
"""An ``external_projects`` row → the ``identity_subjects`` row the gateway derives from it."""


@dataclass(frozen=True, slots=True)
class ProjectSubject:
    """The ``identity_subjects`` row a region's current project gives (``registered_time``
    aside), and the times the log accepted its revisions."""

    row: dict[str, Any]
    accepted: tuple[dt.datetime, ...]
    keyed: bool
    """Whether it gives an identity key (a row is required only then)."""


class CaseTables:
    """The duplicate cases' and external lists' tables against a replay."""

    def __init__(
        self,
        rows: StoredRows,
        replay: CaseReplay,
        projects: Mapping[str, ProjectSubject],
        external_subject: SubjectOf,
    ) -> None:
        self.rows = rows
        self.replay = replay
        self.projects = projects
        self.external_subject = external_subject
        self.compared = 0
        self._externals: dict[str, dict[str, Any]] = {}

    def check(self) -> int:
        """Raise ``Tampered`` at the first bad row; returns the number of rows compared."""
        r = self.replay
        self._external_projects()
        self._subjects()
        evidence = {k: {**v, "evidence": _json(v["evidence"])} for k, v in r.cases.items()}
        self._keyed("duplicate_cases", ("case_id",), evidence, parse=_parse_evidence)
        holds = {k: {"case_id": k[0], "issuance": k[1], "outcome": o} for k, o in r.holds.items()}
        self._keyed("case_holds", ("case_id", "issuance"), holds)
        self._keyed("case_decisions", ("case_id", "region", "admin"), r.decisions)
        self._keyed("case_findings", ("case_id", "issuance", "serial_start"), r.findings)
        return self.compared

    def _keyed(
        self,
        table: str,
        by: tuple[str, ...],
        expected: Mapping[Any, Mapping[str, Any]],
        *,
        parse: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        remaining = {tuple(v[c] for c in by): v for v in expected.values()}
        for row in self.rows.stream(table):
            key = tuple(row[c] for c in by)
            name = " ".join(f"{c}={v}" for c, v in zip(by, key, strict=True))
            want = remaining.pop(key, None)
            if want is None:
                raise Tampered(table, name, "stored but made by no audit entry")
            compare(table, name, want, parse(name, row) if parse else row)
            self.compared += 1
        if remaining:
            key = min(remaining, key=str)
            name = " ".join(f"{c}={v}" for c, v in zip(by, key, strict=True))
            raise Tampered(table, name, "missing: the audit log made it")

    def _external_projects(self) -> None:
        """Each stored external project hashes to the row digest of the latest import that
        listed it, and carries that import's time, operator, list digest and scheme."""
        remaining = dict(self.replay.external)
        for row in self.rows.stream("external_projects"):
            key = f"subject={row['subject']}"
            want = remaining.pop(row["subject"], None)
            if want is None:
                raise Tampered("external_projects", key, "stored but imported by no audit entry")
            got = {**row, "sha256": external_row_digest(row)}
            compare("external_projects", key, want, got)
            self._externals[row["subject"]] = row
            self.compared += 1
        if remaining:
            raise Tampered(
                "external_projects", f"subject={min(remaining)}", "missing: the audit log made it"
            )

    def _subjects(self) -> None:
        """``identity_subjects``: a region's current project as its record gives it (its
        methodology's category; registered when the log accepted one of its revisions — the
        first, unless it was accepted before the gateway kept subjects); an external project
        as its verified stored row gives it (registered at 00:00 China time of the registration
        date its first import listed: compared when the row is still that import's)."""
        projects = dict(self.projects)
        externals = dict(self._externals)
        for row in self.rows.stream("identity_subjects"):
            subject = row["subject"]
            key = f"subject={subject}"
            project = projects.pop(subject, None)
            if project is not None:
                compare("identity_subjects", key, project.row, row)
                if row["registered_time"] not in project.accepted:
                    raise Tampered(
                        "identity_subjects",
                        key,
                        f"registered_time is {show(row['registered_time'])}, when the log "
                        "accepted none of its revisions",
                    )
            elif subject in externals:
                stored = externals.pop(subject)
                want = self.external_subject(stored)
                if self.replay.first_import[subject] != external_row_digest(stored):
                    want["registered_time"] = UNCHECKED  # the first import's date is not kept
                compare("identity_subjects", key, want, row)
            else:
                raise Tampered("identity_subjects", key, "stored but made by no audit entry")
            self.compared += 1
        missing = sorted([n for n, p in projects.items() if p.keyed] + list(externals))
        if missing:
            raise Tampered(
                "identity_subjects", f"subject={missing[0]}", "missing: the audit log made it"
            )


def _json(value: Any) -> str:
    """A JSON value as one comparable text (keys sorted)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _parse_evidence(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A case row with its evidence text as comparable JSON (the entry carries it parsed)."""
    try:
        return {**row, "evidence": _json(json.loads(row["evidence"]))}
    except ValueError as exc:
        raise Tampered("duplicate_cases", name, "evidence is not JSON") from exc
