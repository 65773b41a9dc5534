"""``audit verify`` against the database: the chain, then every stored row against the log.

Rows no later entry can change (envelopes, records, issuances, retirements, resolved transfers)
are compared with the hashes and values of the entries that made them, page by page as the log
is read, and forgotten; the rest (keys and their chain heads, ledger blocks, pending transfers,
recognitions, current methodologies and projects, snapshots, reports) is rebuilt by replaying the
log (``audit_replay``) and compared with the tables at the end. The first bad row is named
(table, key, what differs). See docs/protocol.md §8.3.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from yrd.interop.v1 import records_pb2

from adapters.registry import AdapterRegistry
from gateway.security.audit_chain import (
    ChainCheck,
    ChainWalker,
    StoredEntry,
)
from gateway.security.signing import EnvelopeFields, envelope_hash
from gateway.services.audit_cases import CaseTables, ProjectSubject
from gateway.services.audit_findings import UNCHECKED, Tampered, bad_entry, compare, show
from gateway.services.audit_replay import Replay, region_of
from gateway.services.audit_snapshots import SnapshotRows
from gateway.services.duplicates import external_subject, project_subject
from gateway.services.record_checks import civil_date
from gateway.storage.audit_store import StoredRows
from mutual_recognition.duplicates import ExternalListRow

PAGE = 5000
NOT_COVERED = {
    "regions": "a lock row per region code (serialises a region's publish batches); no content",
    "job_runs": "the scheduler's claims and outcomes of job runs: an operations log, not state",
    "apscheduler_jobs": "the scheduler's own job store (next run times), rebuilt at start",
    "subscriber_positions": "where each registry last read the feed (for the federation status):"
    " an observation of reads, not state",
}
"""Tables ``audit verify`` does not compare, and why (docs/protocol.md §8.3)."""
COVERED = (
    "audit_head",
    "audit_entries",
    "envelopes",
    "records",
    "signing_keys",
    "methodologies",
    "projects",
    "issuances",
    "unit_blocks",
    "transfers",
    "retirements",
    "recognitions",
    "holdings_snapshots",
    "snapshot_blocks",
    "snapshot_totals",
    "snapshot_transfers",
    "reconciliation_reports",
    "external_projects",
    "identity_subjects",
    "duplicate_cases",
    "case_holds",
    "case_decisions",
    "case_findings",
)


@dataclass(frozen=True, slots=True)
class StorageCheck:
    """The verdict, and what was compared."""

    check: ChainCheck
    rows: int
    """Stored rows compared with the log (besides its own entries)."""
    unchecked: int
    """Values in entries written under detail rule 1 that commit to nothing checkable."""


class _Seen:
    """A set of small positive integers (row ids) as a bitmap."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, i: int) -> None:
        byte = i >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte - len(self.bits) + 1 + len(self.bits) // 2))
        self.bits[byte] |= 1 << (i & 7)

    def __contains__(self, i: int) -> bool:
        byte = i >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (i & 7)))


_PUBLISHED = {"methodology.accepted", "project.accepted", "issuance.accepted"}
_RESOLUTIONS = {"transfer.completed", "transfer.rejected", "transfer.cancelled", "transfer.expired"}


class StorageVerifier:
    """One verification over one consistent read of the database."""

    def __init__(self, rows: StoredRows, adapters: AdapterRegistry | None = None) -> None:
        self.rows = rows
        self.adapters = adapters
        self.replay = Replay()
        self.envelopes = _Seen()
        self.records = _Seen()
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.methodologies: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.projects: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.categories: dict[tuple[str, str, str], int] = {}
        """(region, reference id, reference version) → the current methodology's category."""
        self.subjects: dict[str, ProjectSubject] = {}
        """Project name → the identity subject its current revision gives."""
        self.issued: list[dict[str, Any]] = []
        """The page's issuances as their records say (compared at the end of the page)."""
        self.final = {t: _Seen() for t in ("issuances", "transfers", "retirements")}
        """Rows compared already, as soon as the log made them final (issuances by record id)."""
        self.compared = 0

    def run(self) -> StorageCheck:
        size, head = self.rows.head()
        walker = ChainWalker()
        finding: Tampered | None = None
        start = 1
        while start <= size:
            page = self.rows.entries(start, min(PAGE, size - start + 1))
            if not page:
                break
            for entry in page:
                problem = walker.step(entry, entry.entry_hash)
                if problem is not None:
                    return self._done(walker.failed(problem))
            start = page[-1].sequence + 1
            if finding is None:
                try:
                    self._page(page)
                except Tampered as t:
                    finding = t  # the chain is still walked to its end: its faults come first
        if (size, head) != (walker.count, walker.previous):
            # Entries removed from the end leave a shorter chain that is valid by itself.
            problem = (
                f"the log ends at entry {walker.count} but its recorded head is entry {size}"
                if size != walker.count
                else f"head_hash is {show(head)} but entry {size} hashes to {show(walker.previous)}"
            )
            return self._done(
                ChainCheck(False, walker.count, walker.previous, problem, "audit_head", "id=1")
            )
        if finding is None:
            try:
                self._tables()
            except Tampered as t:
                finding = t
        if finding is not None:
            verified, last = walker.count, walker.previous
            if finding.entry is not None:
                # An entry the replay cannot read: the log verifies up to the one before it.
                verified, last = finding.entry.sequence - 1, finding.entry.previous_hash
            return self._done(
                ChainCheck(False, verified, last, finding.problem, finding.table, finding.key)
            )
        return self._done(ChainCheck(True, walker.count, walker.previous))

    def _done(self, check: ChainCheck) -> StorageCheck:
        return StorageCheck(check, self.compared, self.replay.unchecked)

    # -- page by page: what the entries stored ---------------------------------------------------

    def _page(self, page: Sequence[StoredEntry]) -> None:
        details: list[Mapping[str, Any]] = []
        named: set[bytes] = set()
        record_ids: list[int] = []
        for entry in page:
            try:
                detail = json.loads(entry.detail)
                digest = detail.get("envelope_hash") or ""
                if digest:
                    named.add(bytes.fromhex(digest))
                if entry.kind in _PUBLISHED:
                    record_ids.append(int(detail["record_id"]))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise bad_entry(entry, f"detail unreadable: {exc}") from exc
            details.append(detail)
        envelopes = {row.envelope_hash: row for row in self.rows.envelopes_by_hash(named)}
        records = {row.id: row for row in self.rows.records_by_id(record_ids)}
        for entry, detail in zip(page, details, strict=True):
            envelope = None
            if detail.get("envelope_hash"):
                row = self._envelope(entry, bytes.fromhex(detail["envelope_hash"]), envelopes)
                envelope = (row.content_type, row.payload)
            if entry.kind in _PUBLISHED:
                self._record(entry, detail, records.get(int(detail["record_id"])))
            try:
                self.replay.apply(entry, detail, envelope)
            except (ValueError, TypeError, KeyError, DecodeError) as exc:
                raise bad_entry(entry, f"detail cannot be replayed: {exc!r}") from exc
        # Rows that no later entry can change are compared now, and forgotten.
        self._final_rows("issuances", {i["name"]: i for i in self.issued}, page)
        self.issued.clear()
        r = self.replay
        done = [e.subject for e in page if e.kind == "units.retired"]
        self._final_rows("retirements", {n: r.retirements.pop(n) for n in done}, page)
        done = [e.subject for e in page if e.kind in _RESOLUTIONS and e.subject in r.transfers]
        self._final_rows("transfers", {n: r.transfers.pop(n) for n in done}, page)

    def _final_rows(
        self, table: str, expected: Mapping[str, Mapping[str, Any]], page: Sequence[StoredEntry]
    ) -> None:
        if not expected:
            return
        found = {row["name"]: row for row in self.rows.by_name(table, expected)}
        for name, want in expected.items():
            row = found.get(name)
            if row is None:
                raise Tampered(
                    table,
                    f"name={name}",
                    f"missing: the audit log (entries {page[0].sequence}..{page[-1].sequence}) "
                    "made it",
                )
            key = f"id={row['id']}" if "id" in row else f"name={name}"
            compare(table, key, want, row)
            self.final[table].add(row["record_id"] if table == "issuances" else row["id"])
            self.compared += 1

    def _envelope(self, entry: StoredEntry, digest: bytes, found: Mapping[bytes, Any]) -> Any:
        row = found.get(digest)
        if row is None:
            raise Tampered(
                "envelopes",
                f"envelope_hash={show(digest)}",
                f"no stored envelope has the hash entry {entry.sequence} names",
            )
        if row.id in self.envelopes:
            return row
        fields = EnvelopeFields(
            row.content_type,
            row.payload,
            row.key_id,
            row.sequence,
            row.previous_hash,
            row.sign_time_seconds,
            row.sign_time_nanos,
        )
        key = f"id={row.id}"
        if envelope_hash(fields, row.signature) != digest:
            raise Tampered(
                "envelopes",
                key,
                f"its stored bytes do not hash to {show(digest)}, the hash entry "
                f"{entry.sequence} commits to",
            )
        signer = self.replay.keys.get(row.key_id, {})
        compare(
            "envelopes",
            key,
            {"region": signer.get("region", UNCHECKED), "received_at": entry.created_at},
            row._mapping,
        )
        self.envelopes.add(row.id)
        self.compared += 1
        last = self.heads.get(row.key_id)
        if last is None or row.sequence > last[0]:
            self.heads[row.key_id] = (row.sequence, digest)
        return row

    def _record(self, entry: StoredEntry, detail: Mapping[str, Any], row: Any) -> None:
        rid = int(detail["record_id"])
        key = f"id={rid}"
        if row is None:
            raise Tampered("records", key, f"missing, but entry {entry.sequence} accepted it")
        if hashlib.sha256(row.body).hexdigest() != detail["record_sha256"]:
            raise Tampered(
                "records",
                key,
                f"its body does not hash to the record_sha256 entry {entry.sequence} commits to",
            )
        try:
            body = records_pb2.Record.FromString(row.body)
        except DecodeError as exc:  # pragma: no cover - the body hashed as the gateway wrote it
            raise Tampered("records", key, "its body does not parse") from exc
        kind = entry.kind.split(".", 1)[0]
        inner = getattr(body, kind)
        compare(
            "records",
            key,
            {
                "name": entry.subject,
                "version": inner.version if kind == "methodology" else "",
                "kind": kind,
                "region": region_of(entry.subject),
                "envelope_hash": bytes.fromhex(detail["envelope_hash"]),
                "envelope_record_index": detail["record_index"],
                "accepted_at": entry.created_at,
            },
            row._mapping,
        )
        self.records.add(rid)
        self.compared += 1
        if kind == "methodology":
            self._methodology(inner, rid)
        elif kind == "project":
            self._project(inner, rid)
            self._subject(inner, entry.created_at)
        else:
            self._issuance(inner, rid)

    def _methodology(self, m: records_pb2.Methodology, rid: int) -> None:
        ref_id: Any = UNCHECKED
        ref_version: Any = UNCHECKED
        if self.adapters is not None:
            ref = self.adapters.get(m.region).methodology_ref(m)
            ref_id, ref_version = ref.methodology_id, ref.version
            self.categories[(m.region, ref_id, ref_version)] = m.category
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        self.methodologies[(m.region, m.methodology_id, m.version)] = {
            "region": m.region,
            "methodology_id": m.methodology_id,
            "version": m.version,
            "ref_id": ref_id,
            "ref_version": ref_version,
            "record_id": rid,
            "category": m.category,
            "status": m.status,
            "max_capacity_value": cap.value if cap else None,
            "max_capacity_unit": cap.unit if cap else None,
        }

    def _project(self, p: records_pb2.Project, rid: int) -> None:
        period = p.crediting_period
        self.projects[(p.region, p.project_id)] = {
            "region": p.region,
            "project_id": p.project_id,
            "name": p.name,
            "record_id": rid,
            "methodology_region": p.methodology.region,
            "methodology_id": p.methodology.methodology_id,
            "methodology_version": p.methodology.version,
            "crediting_start": civil_date(period.start),
            "crediting_end": civil_date(period.end) if period.HasField("end") else None,
            "status": p.status,
        }

    def _subject(self, p: records_pb2.Project, accepted: dt.datetime) -> None:
        """The identity subject of a project's current revision, as detection saves it: its
        methodology's category as the log had it then (unchecked without the adapters, which
        make methodology references)."""
        ref = p.methodology
        category = self.categories.get((p.region, ref.methodology_id, ref.version))
        row = project_subject(p, category or 0, accepted)
        row["registered_time"] = UNCHECKED  # one of its revisions' times (CaseTables)
        if category is None:
            row["category"] = UNCHECKED
        identity = p.identity
        earlier = self.subjects[p.name].accepted if p.name in self.subjects else ()
        self.subjects[p.name] = ProjectSubject(
            row,
            (*earlier, accepted),
            bool(identity.owner_credit_code or identity.grid_account or identity.HasField("site")),
        )

    def _issuance(self, i: records_pb2.Issuance, rid: int) -> None:
        self.issued.append(
            {
                "region": i.region,
                "issuance_id": i.issuance_id,
                "name": i.name,
                "record_id": rid,
                "project_name": i.project,
                "vintage": i.vintage,
                "serial_start": i.serials.start,
                "serial_end": i.serials.end,
                "quantity_grams": i.quantity_grams,
            }
        )

    # -- at the end: the tables against the replayed state ---------------------------------------

    def _tables(self) -> None:
        r = self.replay
        self._unnamed("envelopes", self.envelopes, "named by no audit entry")
        self._records_current()
        keys = {
            k: {
                **v,
                "last_sequence": self.heads.get(k, (0, b""))[0],
                "last_hash": self.heads.get(k, (0, bytes(32)))[1],
            }
            for k, v in r.keys.items()
        }
        self._keyed("signing_keys", ("key_id",), keys)
        self._keyed("methodologies", ("region", "methodology_id", "version"), self.methodologies)
        self._keyed("projects", ("region", "project_id"), self.projects)
        self._keyed("issuances", ("record_id",), {}, done=self.final["issuances"])
        self._blocks()
        self._keyed("transfers", ("name",), r.transfers, label="id", done=self.final["transfers"])
        self._keyed("retirements", ("name",), {}, label="id", done=self.final["retirements"])
        self._keyed("recognitions", ("id",), r.recognitions, digests=("body", "assessment"))
        self._keyed("holdings_snapshots", ("id",), r.snapshots)
        self.compared += SnapshotRows(self.rows, r).check()
        self._keyed("reconciliation_reports", ("id",), r.reports, digests=("body",))
        self.compared += CaseTables(self.rows, r.cases, self.subjects, _external_subject).check()

    def _unnamed(self, table: str, seen: _Seen, what: str) -> None:
        for row in self.rows.stream(table, columns=("id",)):
            if row["id"] not in seen:
                raise Tampered(table, f"id={row['id']}", f"stored but {what}")

    def _records_current(self) -> None:
        for row in self.rows.stream("records", columns=("id", "is_current")):
            rid = row["id"]
            if rid not in self.records:
                raise Tampered("records", f"id={rid}", "stored but accepted by no audit entry")
            current = rid not in self.replay.superseded
            if row["is_current"] != current:
                raise Tampered(
                    "records",
                    f"id={rid}",
                    f"is_current is {row['is_current']} but the audit log says {current}",
                )

    def _keyed(
        self,
        table: str,
        by: tuple[str, ...],
        expected: Mapping[Any, Mapping[str, Any]],
        *,
        label: str = "",
        digests: tuple[str, ...] = (),
        done: _Seen | None = None,
    ) -> None:
        """Every row of ``table`` equals the expected row of its key (``by``); none is missing.
        Rows in ``done`` (by id, or record id for issuances) were compared already."""
        remaining = {_key(v, by): v for v in expected.values()}
        for row in self.rows.stream(table):
            ident = row.get("id", row.get("record_id"))
            if done is not None and isinstance(ident, int) and ident in done:
                continue
            key = _key(row, by)
            name = _label(row, (label,) if label else by)
            want = remaining.pop(key, None)
            if want is None:
                raise Tampered(table, name, "stored but made by no audit entry")
            actual = dict(row)
            if digests:
                # A body is compared by the SHA-256 the log commits to.
                want = {(f"sha256({c})" if c in digests else c): v for c, v in want.items()}
                for c in digests:
                    actual[f"sha256({c})"] = _sha_hex(actual.pop(c))
            compare(table, name, want, actual)
            self.compared += 1
        if remaining:
            key, _ = min(remaining.items(), key=lambda kv: str(kv[0]))
            raise Tampered(
                table, _label(dict(zip(by, key, strict=True)), by), "missing: the audit log made it"
            )

    def _blocks(self) -> None:
        """The ledger's blocks hold exactly the serials the log gave each holder, in the states
        it put them in (however they are split into rows)."""
        runs = {origin: list(m.runs()) for origin, m in self.replay.serials.items()}
        at: dict[str, tuple[int, int | None]] = {
            o: (0, r[0][0] if r else None) for o, r in runs.items()
        }
        """origin → (index of the run being covered, the first serial no block holds yet)."""
        for row in self.rows.stream("unit_blocks"):
            key = f"id={row['id']}"
            origin, start, end = row["origin_region"], row["serial_start"], row["serial_end"]
            mine = runs.get(origin, [])
            i, need = at.get(origin, (0, None))
            if need is None or start < need:
                raise Tampered(
                    "unit_blocks",
                    key,
                    f"holds {origin}:{start}..{end}, serials the log "
                    "gave no holder or gave another block",
                )
            if start > need:
                raise Tampered(
                    "unit_blocks",
                    key,
                    f"serials {origin}:{need}..{start - 1} before it are held by no block",
                )
            issuance, holder, state, reserved_by, retired_by = mine[i][2]
            # The issuance's own row was compared with its record already.
            project, vintage = row["issuance_project"], row["issuance_vintage"]
            compare(
                "unit_blocks",
                key,
                {
                    "issuance_name": issuance,
                    "project_name": project,
                    "vintage": vintage,
                    "holder_region": holder,
                    "state": state,
                    "reserved_by": reserved_by,
                    "retired_by": retired_by,
                },
                row,
            )
            if end > mine[i][1]:
                raise Tampered(
                    "unit_blocks",
                    key,
                    f"holds {origin}:{start}..{end} as one block, but the "
                    f"log gives {mine[i][1] + 1}.. another holder or state",
                )
            need = end + 1
            if need > mine[i][1]:
                i += 1
                need = mine[i][0] if i < len(mine) else None
            at[origin] = (i, need)
            self.compared += 1
        for origin, (i, need) in sorted(at.items()):
            if need is not None:
                raise Tampered(
                    "unit_blocks",
                    f"origin_region={origin}",
                    f"serials {origin}:{need}..{runs[origin][i][1]} are held by no block",
                )


def _external_subject(row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity subject detection saves for a stored external project."""
    listed = ExternalListRow(
        **{f: row[f] or "" for f in _LISTED_TEXT},
        registration_date=row["registration_date"],
        credit_start=row["credit_start"],
        credit_end=row["credit_end"],
    )
    return external_subject(listed)


_LISTED_TEXT = tuple(
    f.name
    for f in dataclasses.fields(ExternalListRow)
    if f.name not in ("registration_date", "credit_start", "credit_end")
)
"""The text fields of an external list's row (stored NULL for "not given", listed as "")."""


def _key(row: Mapping[str, Any], by: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in by)


def _label(row: Mapping[str, Any], by: tuple[str, ...]) -> str:
    return " ".join(f"{c}={row.get(c)}" for c in by)


def _sha_hex(value: bytes | str) -> str:
    """A stored body as the hex SHA-256 the log commits to."""
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()
