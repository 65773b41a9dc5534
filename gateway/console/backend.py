"""The console's side of the gateway: one administrator's GatewayClient, built as the CLI builds
it (certificate and signing key from the PKI directory, signer chain head kept on disk), and the
read-only views the pages show. The console is just another client: every decision is an
envelope signed here with the administrator's key and sent over the same gRPC API.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError
from yrd.interop.v1 import (
    key_service_pb2,
    recognition_pb2,
    recognition_service_pb2,
    reconciliation_pb2,
    transfer_pb2,
)

from gateway.client import (
    GatewayClient,
    TransportError,
    admin_signed_payload,
)
from gateway.client.signer_state import load_state, save_state
from gateway.console.cases import CaseView, case_view
from gateway.contract import duplicate_case_name, recognition_id, recognition_name
from gateway.errors import DomainError
from gateway.security.identity import Role
from gateway.security.pki import PKIDir

T = TypeVar("T")

NO_REPORT_CODES = frozenset({"UNIMPLEMENTED", "NOT_FOUND"})
"""Answers that mean "no reconciliation report to show" rather than a failure."""

RECENT_TRANSFERS = 50
"""How many of the most recent transfers the transfers page lists."""

RECENT_CASES = 100
"""How many of the newest duplicate cases the duplicates page lists."""


def _time(ts: timestamp_pb2.Timestamp) -> dt.datetime | None:
    """The instant of a timestamp field; None when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC)


def _enum_key(name: str, prefix: str) -> str:
    """``RECOGNITION_STATE_APPROVED`` → ``approved``: the i18n key suffix of an enum value."""
    return name.removeprefix(prefix).lower()


def relative_difference(subject: str, counterpart: str) -> str:
    """(subject − counterpart) / counterpart as a signed percentage with two decimals, computed
    exactly on the decimal strings; "" when either is missing or the counterpart is zero."""
    try:
        a, b = Decimal(subject), Decimal(counterpart)
    except InvalidOperation:
        return ""
    if b == 0:
        return ""
    change = ((a - b) / b * 100).quantize(Decimal("0.01"))
    return f"{change:+} %"


@dataclass(frozen=True)
class ParameterRow:
    """One parameter of the assessment, subject and counterpart side by side."""

    code: str
    subject_filed: str
    counterpart_filed: str
    subject_normalised: str
    counterpart_normalised: str
    unit: str
    differs: bool
    change: str
    """Relative difference of the subject over the counterpart, e.g. "+42.33 %"."""


@dataclass(frozen=True)
class DecisionRow:
    """One administrator's decision and whether its signed envelope checks out."""

    region: str
    admin: str
    verdict: str
    """"approve" or "reject"."""
    comment: str
    when: dt.datetime | None
    key_id: str
    signature_ok: bool
    """The envelope verifies under the administrator's registered key and carries this very
    verdict and comment."""


@dataclass(frozen=True)
class RecognitionView:
    """What the pages show of one recognition."""

    name: str
    id: str
    subject: str
    requesting_region: str
    recognising_region: str
    state: str
    """Lower-case state: requested, approved, rejected, revoked, expired."""
    approvals: int
    required_approvals: int
    decisions: tuple[DecisionRow, ...]
    counterpart: str
    same_category: bool
    parameters: tuple[ParameterRow, ...]
    suggested_ratio: tuple[int, int] | None
    summary: tuple[str, ...]
    """The assessment's summary, one paragraph per language as the gateway wrote it."""
    vintage_from: int
    vintage_to: int
    ets_ratio: tuple[int, int] | None
    expire_date: dt.date | None
    request_time: dt.datetime | None
    revoke_time: dt.datetime | None
    revoke_reason: str
    decided_by_me: str
    """The verdict this console's administrator gave ("approve"/"reject"), "" when none."""

    @property
    def differing(self) -> int:
        return sum(p.differs for p in self.parameters)


@dataclass(frozen=True)
class TransferView:
    """One cross-region transfer."""

    name: str
    transfer_id: str
    source_region: str
    destination_region: str
    quantity_grams: int
    purpose: str
    state: str
    propose_time: dt.datetime | None
    resolve_time: dt.datetime | None


@dataclass(frozen=True)
class DiscrepancyView:
    """One difference a reconciliation found."""

    kind: str
    origin_region: str
    ranges: tuple[tuple[int, int], ...]
    transfer_ids: tuple[str, ...]
    quantity_grams: int
    detail: str


@dataclass(frozen=True)
class ReportView:
    """A reconciliation report of this console's region."""

    name: str
    region: str
    status: str
    snapshot_time: dt.datetime | None
    finish_time: dt.datetime | None
    key_id: str
    signed: bool
    discrepancies: tuple[DiscrepancyView, ...]


def _ratio(f: recognition_pb2.Fraction) -> tuple[int, int] | None:
    return (f.numerator, f.denominator) if f.denominator else None


def _decision_ok(
    rec: recognition_pb2.Recognition,
    d: recognition_pb2.Decision,
    keys: dict[str, key_service_pb2.SigningKey],
) -> bool:
    """Whether the decision's envelope is signed by this administrator's registered key over a
    verdict that says exactly what the decision says."""
    payload = admin_signed_payload(d.envelope, keys, d.region, d.admin)
    if payload is None:
        return False
    try:
        body = recognition_service_pb2.RecognitionVerdict.FromString(payload)
    except DecodeError:
        return False
    return body.recognition == rec.name and body.verdict == d.verdict and body.comment == d.comment


def recognition_view(
    rec: recognition_pb2.Recognition,
    me: tuple[str, str],
    keys: dict[str, key_service_pb2.SigningKey] | None = None,
) -> RecognitionView:
    """The view of a recognition for administrator ``me`` = (region, name); decisions' signatures
    are checked against ``keys`` (key id → key) when given."""
    a = rec.assessment
    params = tuple(
        ParameterRow(
            code=p.code,
            subject_filed=f"{p.subject.value} {p.subject.unit}" if p.HasField("subject") else "",
            counterpart_filed=(
                f"{p.counterpart.value} {p.counterpart.unit}" if p.HasField("counterpart") else ""
            ),
            subject_normalised=p.subject_normalised,
            counterpart_normalised=p.counterpart_normalised,
            unit=p.normalised_unit,
            differs=p.differs,
            change=relative_difference(p.subject_normalised, p.counterpart_normalised)
            if p.differs
            else "",
        )
        for p in a.parameters
    )
    decisions = tuple(
        DecisionRow(
            region=d.region,
            admin=d.admin,
            verdict=_enum_key(recognition_pb2.Verdict.Name(d.verdict), "VERDICT_"),
            comment=d.comment,
            when=_time(d.decide_time),
            key_id=d.envelope.key_id,
            signature_ok=keys is not None and _decision_ok(rec, d, keys),
        )
        for d in rec.decisions
    )
    c = rec.conditions
    expire = None
    if c.HasField("expire_date") and c.expire_date.year:
        expire = dt.date(c.expire_date.year, c.expire_date.month, c.expire_date.day)
    mine = next(
        (d.verdict for d in decisions if (d.region, d.admin) == me),
        "",
    )
    return RecognitionView(
        name=rec.name,
        id=recognition_id(rec.name),
        subject=rec.subject,
        requesting_region=rec.requesting_region,
        recognising_region=rec.recognising_region,
        state=_enum_key(recognition_pb2.RecognitionState.Name(rec.state), "RECOGNITION_STATE_"),
        approvals=sum(d.verdict == "approve" for d in decisions),
        required_approvals=rec.required_approvals,
        decisions=decisions,
        counterpart=a.counterpart,
        same_category=a.same_category,
        parameters=params,
        suggested_ratio=_ratio(a.suggested_ratio) if a.HasField("suggested_ratio") else None,
        summary=tuple(line for line in a.summary.splitlines() if line.strip()),
        vintage_from=c.vintage_from,
        vintage_to=c.vintage_to,
        ets_ratio=_ratio(c.ets_adjustment_ratio) if c.HasField("ets_adjustment_ratio") else None,
        expire_date=expire,
        request_time=_time(rec.request_time),
        revoke_time=_time(rec.revoke_time),
        revoke_reason=rec.revoke_reason,
        decided_by_me=mine,
    )


def transfer_view(t: transfer_pb2.Transfer) -> TransferView:
    return TransferView(
        name=t.name,
        transfer_id=t.transfer_id,
        source_region=t.source_region,
        destination_region=t.destination_region,
        quantity_grams=t.quantity_grams,
        purpose=_enum_key(transfer_pb2.TransferPurpose.Name(t.purpose), "TRANSFER_PURPOSE_"),
        state=_enum_key(transfer_pb2.TransferState.Name(t.state), "TRANSFER_STATE_"),
        propose_time=_time(t.propose_time),
        resolve_time=_time(t.resolve_time),
    )


def report_view(r: reconciliation_pb2.ReconciliationReport) -> ReportView:
    return ReportView(
        name=r.name,
        region=r.region,
        status=_enum_key(
            reconciliation_pb2.ReconciliationStatus.Name(r.status), "RECONCILIATION_STATUS_"
        ),
        snapshot_time=_time(r.snapshot_time),
        finish_time=_time(r.finish_time),
        key_id=r.key_id,
        signed=bool(r.signature),
        discrepancies=tuple(
            DiscrepancyView(
                kind=_enum_key(
                    reconciliation_pb2.DiscrepancyKind.Name(d.kind), "DISCREPANCY_KIND_"
                ),
                origin_region=d.origin_region,
                ranges=tuple((s.start, s.end) for s in d.ranges),
                transfer_ids=tuple(d.transfer_ids),
                quantity_grams=d.quantity_grams,
                detail=d.detail,
            )
            for d in r.discrepancies
        ),
    )


def latest_report(
    reports: Iterable[reconciliation_pb2.ReconciliationReport],
) -> reconciliation_pb2.ReconciliationReport | None:
    """The report that finished last (by snapshot time when none has finished)."""

    def when(r: reconciliation_pb2.ReconciliationReport) -> tuple[int, int, int, int]:
        f, s = r.finish_time, r.snapshot_time
        return (f.seconds, f.nanos, s.seconds, s.nanos)

    return max(reports, key=when, default=None)


class ConsoleBackend:
    """One administrator's connection to the gateway, shared by every page of the console.

    Signed calls are serialised (one chain of envelopes per key) and the chain head is saved
    beside the signing key after each one, so the CLI and the console can take turns with the
    same key; a head made stale by the other is resynchronised by the client.
    """

    def __init__(self, client: GatewayClient) -> None:
        if client.role is not Role.ADMIN or not client.name:
            raise ValueError("the console acts as an administrator")
        self.client = client
        self.region = client.region
        self.admin = client.name
        self._sign_lock = threading.Lock()

    @classmethod
    def connect(
        cls, gateway: str, cert_dir: Path, region: str, admin: str, *, timeout: float = 10.0
    ) -> ConsoleBackend:
        """Connect as ``admin`` of ``region`` and restore (or fetch) the signer's chain head,
        exactly as ``yrdgw recognition approve`` does."""
        client = GatewayClient(
            gateway, PKIDir(cert_dir), region=region, role=Role.ADMIN, name=admin, timeout=timeout
        )
        try:
            if not load_state(client.files, client.signer):
                client.sync_signer()
        except BaseException:
            client.close()
            raise
        return cls(client)

    def close(self) -> None:
        self.client.close()

    @property
    def me(self) -> tuple[str, str]:
        return (self.region, self.admin)

    # -- reading --------------------------------------------------------------------------------

    def _keys(self, region: str) -> dict[str, key_service_pb2.SigningKey]:
        return {k.key_id: k for k in self.client.list_signing_keys(region, include_revoked=True)}

    def recognitions(self, state: str) -> list[RecognitionView]:
        """Recognitions this region is asked for, in one state, newest request first."""
        found = [
            recognition_view(r, self.me)
            for r in self.client.list_recognitions(recognising=self.region)
        ]
        chosen = [v for v in found if v.state == state]
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(chosen, key=lambda v: v.request_time or epoch, reverse=True)

    def recognition(self, rid: str) -> RecognitionView:
        """One recognition, its decisions' signatures checked against the key directory."""
        rec = self.client.get_recognition(recognition_name(rid))
        keys = self._keys(rec.recognising_region) if rec.decisions else {}
        return recognition_view(rec, self.me, keys)

    def transfers(self, limit: int = RECENT_TRANSFERS) -> list[TransferView]:
        """The most recent transfers from or to this region, newest first."""
        found: dict[str, transfer_pb2.Transfer] = {}
        for t in self.client.list_transfers(source=self.region):
            found[t.name] = t
        for t in self.client.list_transfers(destination=self.region):
            found[t.name] = t
        ordered = sorted(
            found.values(),
            key=lambda t: (t.propose_time.seconds, t.propose_time.nanos, t.name),
            reverse=True,
        )
        return [transfer_view(t) for t in ordered[:limit]]

    def federation_status(self) -> dict[str, Any]:
        """Every region's feed lag, queues, reconciliation, keys and certificates (plain data)."""
        from gateway.client.status import federation_status_dict

        return federation_status_dict(self.client.federation_status())

    def quorums(self) -> dict[str, int]:
        """The approvals each region's policy needs (the gateway's information)."""
        return {r.region: r.required_approvals for r in self.client.gateway_info().regions}

    def duplicate_cases(self, state: str = "open", limit: int = RECENT_CASES) -> list[CaseView]:
        """Duplicate cases with a side registered in this region, newest first: those in
        ``state`` (open, distinct, duplicate; "" for every state), at most ``limit``."""
        quorums = self.quorums()
        found = self.client.duplicate_cases(region=self.region, state=state, page_size=limit)
        return [case_view(c, self.me, quorums) for c, _ in zip(found, range(limit), strict=False)]

    def duplicate_case(self, cid: str) -> CaseView:
        """One duplicate case, its decisions' signatures checked against the key directory."""
        case = self.client.get_duplicate_case(duplicate_case_name(cid))
        keys: dict[str, key_service_pb2.SigningKey] = {}
        for region in sorted({d.region for d in case.decisions}):
            keys.update(self._keys(region))
        return case_view(case, self.me, self.quorums(), keys)

    def last_report(self) -> ReportView | None:
        """The latest reconciliation report of this region; None when there is none yet (or the
        gateway does not serve reconciliation yet)."""
        try:
            reports = self.client.list_reconciliation_reports(region=self.region, page_size=1)
        except (DomainError, TransportError) as exc:
            if exc.code.name in NO_REPORT_CODES:
                return None
            raise
        latest = latest_report(r for r in reports if r.region in ("", self.region))
        return report_view(latest) if latest is not None else None

    # -- deciding (signed) ----------------------------------------------------------------------

    def _signed(self, call: Callable[[], T]) -> T:
        with self._sign_lock:
            try:
                return call()
            finally:
                save_state(self.client.files, self.client.signer)

    def approve(self, rid: str, comment: str) -> RecognitionView:
        rec = self._signed(lambda: self.client.approve_recognition(recognition_name(rid), comment))
        return recognition_view(rec, self.me)

    def reject(self, rid: str, comment: str) -> RecognitionView:
        rec = self._signed(lambda: self.client.reject_recognition(recognition_name(rid), comment))
        return recognition_view(rec, self.me)

    def resolve_case(self, cid: str, resolution: str, comment: str, standing: str = "") -> CaseView:
        """Sign and send this administrator's decision on a duplicate case (``DISTINCT`` or
        ``DUPLICATE`` with the subject that stands, empty for the earlier one)."""
        case = self._signed(
            lambda: self.client.resolve_duplicate_case(
                duplicate_case_name(cid), resolution, comment, standing=standing
            )
        )
        return case_view(case, self.me, self.quorums())

    def revoke(self, rid: str, reason: str) -> RecognitionView:
        rec = self._signed(lambda: self.client.revoke_recognition(recognition_name(rid), reason))
        return recognition_view(rec, self.me)
