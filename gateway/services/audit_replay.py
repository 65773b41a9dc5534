"""The audit log replayed into the state its entries describe, for ``audit verify`` to compare
with the tables. Pure: no I/O; the verifier hands in each entry with its parsed detail and the
payload of the envelope it names."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

from gateway.contract import (
    ACTIVE,
    ANSWER_TYPE,
    CANCELLED_T,
    COMPLETED,
    EXPIRED,
    HELD,
    PROPOSED,
    REJECTED,
    RESERVED,
    RETIRED,
)
from gateway.security.audit_chain import DETAIL_RULE, StoredEntry, blocks_digest, detail_rule
from gateway.services.audit_cases import CASE_KINDS, CaseReplay
from gateway.services.audit_findings import UNCHECKED, bad_entry


def identity_name(region: str, actor: str) -> str:
    """An identity as ``str(Identity)`` writes it (the gateway has no region)."""
    return f"{region}/{actor}" if region else actor


def last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def region_of(name: str) -> str:
    """``regions/{r}/…`` → r."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "regions" else ""


# -- the ledger's serials ------------------------------------------------------------------------

Attrs = tuple[str, str, str, str | None, str | None]
"""(issuance name, holder region, state, reserved_by, retired_by) of a run of serials."""


class SerialMap:
    """Who holds which serials of one origin, in which state: sorted, non-overlapping runs."""

    __slots__ = ("attrs", "ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.attrs: list[Attrs] = []

    def add(self, start: int, end: int, attrs: Attrs) -> None:
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.attrs.insert(i, attrs)

    def _split(self, at: int) -> None:
        """Make ``at`` the first serial of a run if a run holds it."""
        i = bisect.bisect_right(self.starts, at) - 1
        if i >= 0 and self.starts[i] < at <= self.ends[i]:
            self.starts.insert(i + 1, at)
            self.ends.insert(i + 1, self.ends[i])
            self.attrs.insert(i + 1, self.attrs[i])
            self.ends[i] = at - 1

    def update(self, start: int, end: int, **changes: Any) -> None:
        """Change the attributes of every serial in [start, end]."""
        self.update_each(start, end, lambda _: changes)

    def update_each(
        self, start: int, end: int, changes: Callable[[Attrs], Mapping[str, Any]]
    ) -> None:
        """Change the attributes of each run in [start, end] as ``changes`` of its attributes
        says (an empty mapping leaves the run as it is)."""
        self._split(start)
        self._split(end + 1)
        i = bisect.bisect_left(self.starts, start)
        names = ("issuance", "holder", "state", "reserved_by", "retired_by")
        while i < len(self.starts) and self.starts[i] <= end:
            change = changes(self.attrs[i])
            if change:
                current = dict(zip(names, self.attrs[i], strict=True))
                current.update(change)
                self.attrs[i] = tuple(current[n] for n in names)  # type: ignore[assignment]
            i += 1

    def runs(self) -> Iterator[tuple[int, int, Attrs]]:
        """The runs, adjacent equal ones merged."""
        run: tuple[int, int, Attrs] | None = None
        for s, e, a in zip(self.starts, self.ends, self.attrs, strict=True):
            if run is not None and run[1] + 1 == s and run[2] == a:
                run = (run[0], e, a)
                continue
            if run is not None:
                yield run
            run = (s, e, a)
        if run is not None:
            yield run


def coalesce(rows: Iterable[tuple[str, int, int, str]]) -> list[tuple[str, int, int, str]]:
    """Sorted (origin, start, end, state) rows with adjacent runs of one origin and state
    merged: the same serials whichever way they are split into blocks."""
    out: list[tuple[str, int, int, str]] = []
    for origin, start, end, state in sorted(rows):
        if out and out[-1][0] == origin and out[-1][3] == state and out[-1][2] + 1 == start:
            out[-1] = (origin, out[-1][1], end, state)
        else:
            out.append((origin, start, end, state))
    return out


# -- the replay ---------------------------------------------------------------------------------


@dataclass
class Replay:
    """The state the entries describe, entry after entry."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    retirements: dict[str, dict[str, Any]] = field(default_factory=dict)
    recognitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    snapshot_sides: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    snapshot_transfers: set[tuple[int, str]] = field(default_factory=set)
    snapshot_totals: dict[int, str | None] = field(default_factory=dict)
    """Snapshot id → the digest rule 2 commits its totals to (None: rule 1, sums of its rows)."""
    reports: dict[int, dict[str, Any]] = field(default_factory=dict)
    serials: dict[str, SerialMap] = field(default_factory=dict)
    issuances: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """Issuance name → (origin, first serial, last serial): what a hold or a cancellation of
    the issuance (by name) covers."""
    cases: CaseReplay = field(default_factory=CaseReplay)
    """Duplicate cases, their holds, decisions and findings; imported external projects."""
    superseded: set[int] = field(default_factory=set)
    unchecked: int = 0
    """Values written under rule 1 that commit to nothing checkable (left unchecked)."""

    def _rule1(self, detail: Mapping[str, Any], key: str) -> Any:
        """``detail[key]``, which rule 2 requires and rule 1 did not write."""
        if key in detail:
            return detail[key]
        if detail_rule(detail) >= 2:
            raise KeyError(key)
        self.unchecked += 1
        return UNCHECKED

    def apply(
        self,
        entry: StoredEntry,
        detail: Mapping[str, Any],
        envelope: tuple[str, bytes] | None,
    ) -> None:
        """One entry: ``envelope`` is (content type, payload) of the envelope it names."""
        handler = _HANDLERS.get(entry.kind)
        if handler is None:
            raise bad_entry(
                entry,
                f"entry {entry.sequence} is of kind {entry.kind!r}, which is not one audit "
                "verify knows how to replay (docs/protocol.md §8.1)",
            )
        if not 1 <= detail_rule(detail) <= DETAIL_RULE:
            raise bad_entry(entry, f"detail rule {detail.get('v')!r} is not one audit verify knows")
        handler(self, entry, detail, envelope)

    # -- keys ------------------------------------------------------------------------------------

    def _key_registered(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        self.keys[d["key_id"]] = {
            "key_id": d["key_id"],
            "region": region_of(e.subject),
            "owner": d["owner"],
            "public_key": bytes.fromhex(d["public_key"]),
            "registered_at": e.created_at,
            "registered_by": identity_name(e.actor_region, e.actor),
            "revoked_at": None,
            "revoke_reason": None,
        }

    def _key_revoked(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        key = self.keys.setdefault(d["key_id"], {"key_id": d["key_id"]})
        key["revoked_at"], key["revoke_reason"] = e.created_at, d["revoke_reason"]

    # -- records (their rows are compared page by page; here what they do to the ledger) ---------

    def _accepted(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        if d.get("revision_of") is not None:
            self.superseded.add(int(d["revision_of"]))
        if e.kind == "issuance.accepted":
            origin = region_of(e.subject)
            start, end = d["serials"]
            self.serials.setdefault(origin, SerialMap()).add(
                start, end, (e.subject, origin, ACTIVE, None, None)
            )
            self.issuances[e.subject] = (origin, start, end)

    def issuance_states(self, names: Iterable[str], before: tuple[str, ...], after: str) -> None:
        """Every serial of the ``names`` issuances in a state of ``before`` goes to ``after``
        (whoever holds it): a release or a cancellation by a case's resolution."""
        for name in names:
            origin, start, end = self.issuances[name]
            self.serials[origin].update_each(
                start, end, lambda a: {"state": after} if a[2] in before else {}
            )

    def _ranges(self, d: Mapping[str, Any], **changes: Any) -> None:
        for origin, start, end in d["blocks"]:
            self.serials.setdefault(origin, SerialMap()).update(start, end, **changes)

    # -- transfers and retirements ---------------------------------------------------------------

    def _proposed(
        self, e: StoredEntry, d: Mapping[str, Any], env: tuple[str, bytes] | None
    ) -> None:
        payload = env[1] if env is not None else b""
        proposal = transfer_service_pb2.TransferProposal.FromString(payload)
        expires = self._rule1(d, "expires_at")
        self.transfers[e.subject] = {
            "name": e.subject,
            "transfer_id": proposal.transfer_id,
            "source_region": d["source"],
            "destination_region": d["destination"],
            "purpose": int(proposal.purpose) or transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
            "state": PROPOSED,
            "quantity_grams": d["quantity_grams"],
            "request_sha256": hashlib.sha256(payload).digest(),
            "proposal_envelope": bytes.fromhex(d["envelope_hash"]),
            "answer_envelope": None,
            "proposed_at": e.created_at,
            "expires_at": expires if expires is UNCHECKED else dt.datetime.fromisoformat(expires),
            "resolved_at": None,
            "reason": None,
        }
        self._ranges(d, state=RESERVED, reserved_by=e.subject)

    def _resolved(
        self, e: StoredEntry, d: Mapping[str, Any], env: tuple[str, bytes] | None
    ) -> None:
        state = _RESOLUTION[e.kind]
        transfer = self.transfers.setdefault(e.subject, {"name": e.subject})
        # An answer or a cancellation is the transfer's answer envelope; a revocation that
        # rejects it at once (or an expiry) leaves it without one.
        answered = env is not None and env[0] == ANSWER_TYPE
        transfer.update(
            state=state,
            answer_envelope=bytes.fromhex(d["envelope_hash"]) if answered else None,
            resolved_at=e.created_at,
            reason=d.get("reason"),
        )
        if state == COMPLETED:
            self._ranges(d, holder=d["destination"], state=ACTIVE, reserved_by=None)
            return
        # Released units go back where they were: held while an open case holds their issuance.
        held = self.cases.open_holds
        for origin, start, end in d["blocks"]:
            self.serials.setdefault(origin, SerialMap()).update_each(
                start,
                end,
                lambda a: {"state": HELD if held.get(a[0]) else ACTIVE, "reserved_by": None},
            )

    def _retired(self, e: StoredEntry, d: Mapping[str, Any], env: tuple[str, bytes] | None) -> None:
        payload = env[1] if env is not None else b""
        order = transfer_service_pb2.RetirementOrder.FromString(payload)
        numerator, denominator = (int(x) for x in d["ratio"].split("/"))
        self.retirements[e.subject] = {
            "name": e.subject,
            "retirement_id": order.retirement_id,
            "holder_region": e.actor_region,
            "purpose": transfer_pb2.TransferPurpose.Value(d["purpose"]),
            "beneficiary": d["beneficiary"],
            "compliance_year": d["compliance_year"],
            "declared_obligation_grams": order.declared_obligation_grams,
            "quantity_grams": d["quantity_grams"],
            "outside_grams": self._rule1(d, "outside_grams"),
            "credited_grams": d["credited_grams"],
            "ratio_numerator": numerator,
            "ratio_denominator": denominator,
            "request_sha256": hashlib.sha256(payload).digest(),
            "envelope_hash": bytes.fromhex(d["envelope_hash"]),
            "retired_at": e.created_at,
        }
        self._ranges(d, state=RETIRED, retired_by=e.subject, reserved_by=None)

    def _repeated(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        """Only its envelope is stored (compared page by page)."""

    # -- recognitions ----------------------------------------------------------------------------

    def _recognition(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        rid = e.subject.removeprefix("recognitions/")
        if e.kind == "recognition.requested":
            self.recognitions[rid] = {
                "id": rid,
                "subject_name": d["subject"],
                "requesting_region": e.actor_region,
                "recognising_region": d["recognising_region"],
                "state": d["state"],
                "group_id": d["envelope_hash"][:16],
                "requested_at": e.created_at,
                "assessment": self._rule1(d, "assessment_sha256"),
            }
        row = self.recognitions.setdefault(rid, {"id": rid})
        row["state"] = d["state"]
        row["body"] = self._rule1(d, "body_sha256")

    # -- reconciliation --------------------------------------------------------------------------

    def _snapshot(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        sid = int(last_part(e.subject))
        region = e.actor_region
        self.snapshots[sid] = {
            "id": sid,
            "region": region,
            "snapshot_time": dt.datetime.fromisoformat(d["snapshot_time"]),
            "received_at": e.created_at,
            # Taken under the audit head's lock, just before this entry was appended.
            "audit_sequence": e.sequence - 1,
            "submitted_by": e.actor,
            "block_count": d["blocks"],
            "quantity_grams": d["quantity_grams"],
        }
        if detail_rule(d) >= 2:
            # Rule 2 commits to the rows stored: each side's kept blocks, and the totals.
            for side in ("registry", "ledger"):
                self.snapshot_sides[(sid, side)] = {
                    "rows": d["stored_blocks"][side],
                    "digest": d["stored_blocks_sha256"][side],
                }
            self.snapshot_totals[sid] = d["totals_sha256"]
        else:
            # Rule 1 predates migration 0008: every block of both sides is stored, and the
            # totals are their sums; the ledger's side is the replayed ledger's serials.
            self.snapshot_sides[(sid, "registry")] = {
                "rows": d["blocks"],
                "quantity_grams": d["quantity_grams"],
                "digest": self._rule1(d, "registry_blocks_sha256"),
            }
            held = [
                (origin, s, end, a[2])
                for origin, serials in self.serials.items()
                for s, end, a in serials.runs()
                if a[1] == region
            ]
            self.snapshot_sides[(sid, "ledger")] = {"coalesced": blocks_digest(coalesce(held))}
            self.snapshot_totals[sid] = None
        self.snapshot_transfers.update((sid, name) for name in d["completed_transfers"])

    def _report(self, e: StoredEntry, d: Mapping[str, Any], _: Any) -> None:
        rid = int(last_part(e.subject))
        self.reports[rid] = {
            "id": rid,
            "name": e.subject,
            "region": d["region"],
            "snapshot_id": int(last_part(d["snapshot"])),
            "status": d["status"],
            "finished_at": e.created_at,
            "body": d["report_sha256"],
        }


def _cases_handler(kind: str) -> Any:
    """The handler of a duplicate-case or external-list kind (``audit_cases``)."""

    def handle(
        replay: Replay, e: StoredEntry, d: Mapping[str, Any], env: tuple[str, bytes] | None
    ) -> None:
        if detail_rule(d) < 2:
            # These kinds were first written under rule 2: no gateway wrote one without it.
            raise bad_entry(e, f"entry {e.sequence} of kind {e.kind!r} has no detail rule 2")
        CASE_KINDS[kind](replay.cases, replay, e, d, env)

    return handle


_RESOLUTION = {
    "transfer.completed": COMPLETED,
    "transfer.rejected": REJECTED,
    "transfer.cancelled": CANCELLED_T,
    "transfer.expired": EXPIRED,
}
_HANDLERS: dict[str, Any] = {
    **{kind: _cases_handler(kind) for kind in CASE_KINDS},
    "signing_key.registered": Replay._key_registered,
    "signing_key.revoked": Replay._key_revoked,
    "methodology.accepted": Replay._accepted,
    "project.accepted": Replay._accepted,
    "issuance.accepted": Replay._accepted,
    "transfer.proposed": Replay._proposed,
    **dict.fromkeys(_RESOLUTION, Replay._resolved),
    "units.retired": Replay._retired,
    "request.repeated": Replay._repeated,
    "recognition.requested": Replay._recognition,
    "recognition.approved": Replay._recognition,
    "recognition.rejected": Replay._recognition,
    "recognition.revoked": Replay._recognition,
    "reconciliation.snapshot": Replay._snapshot,
    "reconciliation.report": Replay._report,
}
