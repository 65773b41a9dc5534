"""Resolving and reading duplicate cases (DuplicateService).

ResolveDuplicateCase takes an administrator's signed ``CaseVerdict`` exactly as recognition
verdicts are taken (the caller's own key, the chain, the ``sign_time`` window, the validation
layer), records the decision, and when every deciding region's quorum agrees on one
(resolution, standing) resolves the case in the same transaction: ``DISTINCT`` releases the
case's holds, ``DUPLICATE`` cancels the non-standing side's held issuances whole (the findings:
their parts that had moved to another region or been retired) and releases the standing side's.
An issuance another open case still holds stays held. The rules of deciding are the domain's
(``mutual_recognition.cases``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from google.protobuf.message import DecodeError
from sqlalchemy.orm import Session
from yrd.interop.v1 import duplicate_service_pb2, duplicates_pb2, envelope_pb2

import mutual_recognition as mr
from gateway import errors, validation
from gateway.contract import (
    CASE_OPEN,
    CASE_RESOLUTION_OF,
    CASE_STATE_OF,
    CASE_VERDICT_TYPE,
    HOLD_HELD,
    HOLD_RELEASED,
    MATCH_STRENGTH_OF,
    duplicate_case_name,
    parse_duplicate_case_name,
)
from gateway.security.audit_chain import DETAIL_RULE
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.case_view import case_messages
from gateway.services.intake import DEFAULT_SIGN_TIME_SKEW, open_signed, store_signed
from gateway.services.transfers import cancel_issuances
from gateway.storage.audit_log import AuditLog
from gateway.storage.case_store import CaseStore
from gateway.storage.db import Database
from gateway.storage.ledger_holds import Finding, release_issuances
from gateway.storage.models import CaseDecisionRow, DuplicateCaseRow
from gateway.validation.rules import CASE_PAGE_TOKEN
from mutual_recognition import cases

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

_REFUSALS: dict[str, type[errors.DomainError]] = {
    "NOT_DECIDING_REGION": errors.NotDecidingRegion,
    "DUPLICATE_CASE_CLOSED": errors.DuplicateCaseClosed,
    "CASE_ALREADY_DECIDED": errors.CaseAlreadyDecided,
    "STANDING_INVALID": errors.StandingInvalid,
}


@contextmanager
def _domain() -> Iterator[None]:
    """The domain's refusals become gateway errors (same reason, message, metadata)."""
    try:
        yield
    except cases.CaseDecisionError as exc:
        raise _REFUSALS[exc.reason](exc.message, metadata=exc.metadata) from exc


def next_token(row: DuplicateCaseRow) -> str:
    """The token of the page after ``row``."""
    return f"{(row.open_time - _EPOCH) // _MICROSECOND}.{row.case_id}"


def _after(token: str) -> tuple[dt.datetime, str] | None:
    if not token:
        return None
    match = CASE_PAGE_TOKEN.fullmatch(token)
    if match is None:
        raise errors.CursorInvalid(
            "page_token was not issued by this gateway", field_errors={"page_token": "invalid"}
        )
    try:
        at = _EPOCH + int(match[1]) * _MICROSECOND
    except OverflowError as exc:
        raise errors.CursorInvalid(
            "page_token was not issued by this gateway", field_errors={"page_token": "invalid"}
        ) from exc
    return at, match[2]


def _decision(row: CaseDecisionRow) -> cases.Decision:
    return cases.Decision(
        row.region, row.admin, cases.Resolution(row.resolution), row.standing or ""
    )


class DuplicateCaseService:
    """Reading and resolving duplicate cases; every public method is one transaction."""

    def __init__(
        self,
        db: Database,
        policy: mr.ApprovalPolicy | None = None,
        clock: Clock = utc_now,
        *,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
    ) -> None:
        self.db = db
        self.policy = policy or mr.ApprovalPolicy()
        """The recognition approval policy: each deciding region's quorum is its
        ``required_for``."""
        self.clock = clock
        self.sign_time_skew = sign_time_skew

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> duplicates_pb2.DuplicateCase:
        with self.db.transaction() as session:
            store = CaseStore(session)
            return case_messages(store, [self._load(store, name, lock=False)])[0]

    def list_cases(
        self,
        *,
        region: str = "",
        state: int = 0,
        strength: int = 0,
        subject: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[duplicates_pb2.DuplicateCase], str]:
        """A page of cases, newest first, and the token of the next page ("" at the end)."""
        limit = page_limit(page_size)
        after = _after(page_token)
        with self.db.transaction() as session:
            store = CaseStore(session)
            found = store.page(
                after=after,
                limit=limit + 1,
                region=region,
                state=CASE_STATE_OF.get(state, ""),
                strength=MATCH_STRENGTH_OF.get(strength, ""),
                subject=subject,
            )
            rows, last = page_of(found, limit)
            return case_messages(store, rows), (next_token(last) if last else "")

    # -- resolving ------------------------------------------------------------------------------

    def resolve(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope
    ) -> duplicates_pb2.DuplicateCase:
        """Record a signed decision; resolve the case when every deciding region agrees."""
        if caller.role is not Role.ADMIN:
            raise errors.RoleNotAllowed("only administrators decide duplicate cases")
        assert caller.region is not None and caller.name is not None
        now = self.clock()
        with self.db.transaction() as session, _domain():
            signed = open_signed(
                session, caller, env, CASE_VERDICT_TYPE, now=now, skew=self.sign_time_skew
            )
            try:
                store_signed(session, signed, now)
                resent = False
            except errors.EnvelopeReplayed:
                resent = True
            verdict = self._parse(signed.payload)
            store = CaseStore(session)
            row = self._load(store, verdict.duplicate_case, lock=True)
            made = store.decisions([row.case_id])
            if resent:
                if any(d.envelope_hash == signed.digest for d in made):
                    return case_messages(store, [row])[0]  # the same decision again
                raise errors.EnvelopeReplayed(
                    "this envelope was accepted before",
                    metadata={"envelope_hash": signed.digest.hex()},
                )
            parties = self._parties(row)
            decisions = [_decision(d) for d in made]
            decision = cases.check_decision(
                parties,
                decisions,
                region=caller.region,
                admin=caller.name,
                resolution=cases.Resolution(CASE_RESOLUTION_OF[verdict.resolution]),
                standing=verdict.standing,
                resolved="" if row.state == CASE_OPEN else row.state,
            )
            store.add_decision(
                case_id=row.case_id,
                region=decision.region,
                admin=decision.admin,
                resolution=decision.resolution.value,
                standing=decision.standing,
                comment=verdict.comment,
                envelope_hash=signed.digest,
                now=now,
            )
            decisions.append(decision)
            result = cases.outcome(parties, decisions)
            name = duplicate_case_name(row.case_id)
            signed.audit.append(
                kind="duplicate_case.decision",
                subject=name,
                actor_region=caller.region,
                actor=caller.actor,
                detail={
                    "v": DETAIL_RULE,
                    "envelope_hash": signed.digest.hex(),
                    "resolution": decision.resolution.value,
                    "standing": decision.standing,
                    "comment": verdict.comment,
                    "decisions": len(decisions),
                    "resolved": result is not None,
                },
                now=now,
            )
            if result is not None:
                self._apply(session, store, row, result, signed.audit, caller, signed.digest, now)
            session.flush()
            return case_messages(store, [row])[0]

    @staticmethod
    def _parse(payload: bytes) -> duplicate_service_pb2.CaseVerdict:
        try:
            body = duplicate_service_pb2.CaseVerdict.FromString(payload)
        except (DecodeError, RecursionError) as exc:
            raise errors.PayloadMalformed("payload is not a CaseVerdict") from exc
        validation.check(body)
        return body

    def _parties(self, row: DuplicateCaseRow) -> cases.CaseParties:
        deciding = tuple(r for r in row.deciding_regions.split(",") if r)
        return cases.CaseParties(
            row.first_subject,
            row.second_subject,
            deciding,
            {r: self.policy.required_for(r) for r in deciding},
        )

    def _apply(
        self,
        session: Session,
        store: CaseStore,
        row: DuplicateCaseRow,
        result: tuple[cases.Resolution, str],
        audit: AuditLog,
        caller: Identity,
        envelope: bytes,
        now: dt.datetime,
    ) -> None:
        """Resolve the case: release or cancel what it holds, store the findings, audit."""
        resolution, standing = result
        name = duplicate_case_name(row.case_id)
        held = [h.issuance for h in store.holds([row.case_id]) if h.outcome == HOLD_HELD]
        cancel: list[str] = []
        if resolution is cases.Resolution.DUPLICATE:
            losing = row.second_subject if standing == row.first_subject else row.first_subject
            projects = store.issuances(held)
            cancel = [i for i in held if i in projects and projects[i][0] == losing]
        release = [i for i in held if i not in cancel]
        findings: list[Finding] = []
        if cancel:
            # Pending transfers of their units end first (audited, the case as the cause), then
            # every held or active block is cancelled; retired ones are findings.
            findings = cancel_issuances(
                session, cancel, name, now, caller, envelope=envelope, audit=audit
            )
            # Cancelled is final whichever case holds it: no other case's hold stays open on it.
            store.cancel_holds(cancel)
            for f in findings:
                store.add_finding(
                    case_id=row.case_id,
                    issuance=f.issuance,
                    serial_start=f.serial_start,
                    serial_end=f.serial_end,
                    holder_region=f.holder_region,
                    state=f.state,
                    grams=f.grams,
                )
        store.set_outcome(row.case_id, release, HOLD_RELEASED)
        session.flush()
        # An issuance another open case holds stays held.
        freed = release_issuances(session, release)
        still_held = sorted(set(release) - set(freed))
        store.resolve(
            row, state=resolution.value, resolution=resolution.value, standing=standing, now=now
        )
        audit.append(
            kind="duplicate_case.resolved",
            subject=name,
            actor_region=caller.region or "",
            actor=caller.actor,
            detail={
                "v": DETAIL_RULE,
                "envelope_hash": envelope.hex(),
                "resolution": resolution.value,
                "standing": standing,
                "released": freed,
                "still_held": still_held,
                "cancelled": cancel,
                "findings": [
                    {
                        "issuance": f.issuance,
                        "serial_start": f.serial_start,
                        "serial_end": f.serial_end,
                        "holder_region": f.holder_region,
                        "state": f.state,
                        "grams": f.grams,
                    }
                    for f in findings
                ],
            },
            now=now,
        )

    @staticmethod
    def _load(store: CaseStore, name: str, *, lock: bool) -> DuplicateCaseRow:
        case_id = parse_duplicate_case_name(name)
        row = store.case(case_id, lock=lock) if case_id is not None else None
        if row is None:
            raise errors.DuplicateCaseNotFound(
                f"no duplicate case {name}", metadata={"duplicate_case": name}
            )
        return row
