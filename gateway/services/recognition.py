"""Mutual recognition at the gateway: storage, signed requests and decisions, and the question
every transfer asks. The rules themselves live in the ``mutual_recognition`` domain package."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy.orm import Session
from yrd.interop.v1 import (
    envelope_pb2,
    recognition_pb2,
    recognition_service_pb2,
    records_pb2,
)

import mutual_recognition as mr
from gateway import errors, validation
from gateway.contract import APPLICATION_TYPE, REVOCATION_TYPE, VERDICT_TYPE, methodology_name
from gateway.recognition_codec import dumps, loads
from gateway.security.audit_chain import DETAIL_RULE
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.exchange import StoredEnvelope
from gateway.services.intake import DEFAULT_SIGN_TIME_SKEW, open_signed, store_signed
from gateway.storage.audit_log import audit_log
from gateway.storage.db import Database
from gateway.storage.models import RecognitionRow, UnitBlockRow
from gateway.storage.recognition_store import RecognitionStore

T = TypeVar("T", bound=ProtoMessage)


class RevocationEffect(Protocol):
    """What a revocation does, in its own transaction, to the pending transfers it affects
    (``TransferService.release_unrecognised``); returns the transfers it ended."""

    def __call__(
        self,
        session: Session,
        *,
        region: str,
        projects: Sequence[str],
        recognition: str,
        envelope: bytes,
        actor: Identity,
        now: dt.datetime,
    ) -> list[str]: ...


@contextmanager
def _domain() -> Iterator[None]:
    """Domain errors become gateway errors (same reason, message, metadata)."""
    try:
        yield
    except mr.RecognitionError as exc:
        raise errors.from_recognition_error(exc) from exc


def _actor(identity: Identity) -> mr.Actor:
    return mr.Actor(identity.region, mr.Role(identity.role.value), identity.name)


def assessment_proto(a: mr.Assessment | None) -> recognition_pb2.EquivalenceAssessment:
    """The proto form of an assessment (empty when there is none)."""
    if a is None:
        return recognition_pb2.EquivalenceAssessment()
    msg = recognition_pb2.EquivalenceAssessment(
        counterpart=a.counterpart, same_category=a.same_category, summary=a.summary
    )
    for p in a.parameters:
        item = msg.parameters.add(
            code=p.code,
            subject_normalised=p.subject_normalised,
            counterpart_normalised=p.counterpart_normalised,
            normalised_unit=p.normalised_unit,
            differs=p.differs,
        )
        if p.subject is not None:
            item.subject.value, item.subject.unit = p.subject.value, p.subject.unit
        if p.counterpart is not None:
            item.counterpart.value, item.counterpart.unit = p.counterpart.value, p.counterpart.unit
    if a.suggested_ratio is not None:
        msg.suggested_ratio.numerator = a.suggested_ratio.numerator
        msg.suggested_ratio.denominator = a.suggested_ratio.denominator
    return msg


class RecognitionService:
    """Requests, decisions, revocations and checks; every public method is one transaction."""

    def __init__(
        self,
        db: Database,
        policy: mr.ApprovalPolicy | None = None,
        clock: Clock = utc_now,
        regions: Sequence[str] = mr.DELTA_REGIONS,
        *,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
        on_revoked: RevocationEffect | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or mr.ApprovalPolicy()
        self.clock = clock
        self.regions = tuple(regions)
        self.sign_time_skew = sign_time_skew
        """How far a request's ``sign_time`` may be from the clock (None: no window)."""
        self.on_revoked = on_revoked
        """What a revocation does to the pending transfers it affects, in its transaction (set
        at assembly: the transfer service's ``release_unrecognised``)."""

    # -- signed requests ------------------------------------------------------------------------

    def _open(
        self,
        session: Session,
        caller: Identity,
        env: envelope_pb2.SignedEnvelope,
        content_type: str,
        now: dt.datetime,
    ) -> tuple[bytes, bytes, bool]:
        """Verify the caller's own key signed the envelope; chain and store it. Returns the
        payload, the envelope hash, and whether this very envelope was accepted before (a resent
        request, answered as the first was: nothing is stored again)."""
        signed = open_signed(session, caller, env, content_type, now=now, skew=self.sign_time_skew)
        try:
            store_signed(session, signed, now)
        except errors.EnvelopeReplayed:
            return signed.payload, signed.digest, True
        return signed.payload, signed.digest, False

    @staticmethod
    def _not_found_again(digest: bytes) -> errors.DomainError:
        """A resent envelope whose first effect cannot be found (never expected)."""
        return errors.EnvelopeReplayed(
            "this envelope was accepted before", metadata={"envelope_hash": digest.hex()}
        )

    @staticmethod
    def _parse(cls: Callable[[bytes], T], payload: bytes, what: str) -> T:
        """The payload parsed, and checked by the validation layer."""
        try:
            body = cls(payload)
        except (DecodeError, RecursionError) as exc:
            raise errors.PayloadMalformed(f"payload is not a {what}") from exc
        validation.check(body)
        return body

    # -- request --------------------------------------------------------------------------------

    def request(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope
    ) -> list[tuple[mr.Recognition, bytes]]:
        """Ask other regions to recognise a methodology version or project of the caller."""
        now = self.clock()
        with self.db.transaction() as session, _domain():
            payload, digest, resent = self._open(session, caller, env, APPLICATION_TYPE, now)
            store = RecognitionStore(session)
            app = self._parse(
                recognition_service_pb2.RecognitionApplication.FromString,
                payload,
                "RecognitionApplication",
            )
            if resent:
                return self._requested_by(store, digest)
            subject, methodology = self._subject(store, app)
            conditions = self._conditions(app.conditions)
            counterparts: dict[str, list[records_pb2.Methodology]] = {}
            for region in app.recognising_regions or [
                r for r in self.regions if r != subject.region
            ]:
                counterparts[region] = [
                    records_pb2.Record.FromString(b).methodology
                    for b in store.methodology_bodies(region)
                ]
            assessments = (
                {
                    region: mr.assess(methodology, found, recognising_region=region)
                    for region, found in counterparts.items()
                }
                if methodology is not None
                else None
            )
            suggested = {a.suggested_ratio for a in (assessments or {}).values()}
            if conditions.ets_adjustment_ratio is None and len(suggested) == 1:
                # No ratio proposed: adopt the assessment's (capped at 1), so a recogniser never
                # credits an ETS offset beyond what its own grid factor would.
                ratio = suggested.pop()
                if ratio is not None:
                    conditions = dataclasses.replace(conditions, ets_adjustment_ratio=ratio)
            existing = [loads(r.body) for r in store.of_subject(subject.name)]
            created = mr.request(
                request_id=_request_id(digest),
                subject=subject,
                actor=_actor(caller),
                now=now,
                policy=self.policy,
                recognising_regions=tuple(app.recognising_regions),
                conditions=conditions,
                assessments=assessments,
                known_regions=self.regions,
                existing=existing,
            )
            out = []
            for rec in created:
                blob = assessment_proto(rec.assessment).SerializeToString()
                store.add(
                    recognition_id=rec.id,
                    subject_name=rec.subject.name,
                    requesting_region=rec.requesting_region,
                    recognising_region=rec.recognising_region,
                    state=rec.state.value,
                    group_id=rec.group,
                    body=dumps(rec),
                    assessment=blob,
                    requested_at=now,
                )
                self._audit(
                    session, caller, "recognition.requested", rec, digest, now, assessment=blob
                )
                out.append((rec, blob))
            return out

    @staticmethod
    def _subject(
        store: RecognitionStore, app: recognition_service_pb2.RecognitionApplication
    ) -> tuple[mr.Subject, records_pb2.Methodology | None]:
        """The subject, known to the gateway, and the methodology to assess (if any)."""
        if "/methodologies/" in app.subject:
            subject = mr.Subject.methodology(app.subject, app.version)
            parts = app.subject.split("/")
            row = store.methodology(parts[1], parts[3], app.version)
        else:
            subject = mr.Subject.project(app.subject)
            project = store.project(app.subject)
            if project is None:
                raise errors.RecordNotFound(
                    f"no project {app.subject}", metadata={"name": app.subject}
                )
            row = store.methodology_of(project)
        if row is None:
            raise errors.RecordNotFound(
                f"no methodology {app.subject} version {app.version}",
                metadata={"name": app.subject},
            )
        body = store.record_body(row.record_id)
        assert body is not None
        return subject, records_pb2.Record.FromString(body).methodology

    @staticmethod
    def _conditions(c: recognition_pb2.RecognitionConditions) -> mr.Conditions:
        ratio = None
        if c.HasField("ets_adjustment_ratio"):
            if c.ets_adjustment_ratio.denominator <= 0:
                raise errors.InvalidArgument(
                    "the ratio's denominator must be positive",
                    field_errors={"conditions.ets_adjustment_ratio": "denominator <= 0"},
                )
            ratio = Fraction(c.ets_adjustment_ratio.numerator, c.ets_adjustment_ratio.denominator)
        expire = None
        if c.HasField("expire_date"):
            try:
                expire = dt.date(c.expire_date.year, c.expire_date.month, c.expire_date.day)
            except ValueError as exc:
                raise errors.InvalidArgument(
                    str(exc), field_errors={"conditions.expire_date": "not a calendar date"}
                ) from exc
        return mr.Conditions(
            vintage_from=c.vintage_from or None,
            vintage_to=c.vintage_to or None,
            ets_adjustment_ratio=ratio,
            expire_date=expire,
        )

    # -- decisions ------------------------------------------------------------------------------

    def approve(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope
    ) -> tuple[mr.Recognition, bytes]:
        return self._decide(caller, env, mr.DecisionVerdict.APPROVE)

    def reject(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope
    ) -> tuple[mr.Recognition, bytes]:
        return self._decide(caller, env, mr.DecisionVerdict.REJECT)

    def _decide(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope, verdict: mr.DecisionVerdict
    ) -> tuple[mr.Recognition, bytes]:
        now = self.clock()
        with self.db.transaction() as session, _domain():
            if caller.role is not Role.ADMIN:
                raise errors.RoleNotAllowed("only administrators decide recognitions")
            payload, digest, resent = self._open(session, caller, env, VERDICT_TYPE, now)
            body = self._parse(
                recognition_service_pb2.RecognitionVerdict.FromString, payload, "RecognitionVerdict"
            )
            wanted = (
                recognition_pb2.VERDICT_APPROVE
                if verdict is mr.DecisionVerdict.APPROVE
                else recognition_pb2.VERDICT_REJECT
            )
            if body.verdict != wanted:
                signed = _verdict_name(body.verdict)
                raise errors.VerdictMismatch(
                    f"the signed verdict is {signed}; this RPC takes "
                    f"{recognition_pb2.Verdict.Name(wanted)}",
                    field_errors={"verdict": f"must be {recognition_pb2.Verdict.Name(wanted)}"},
                    metadata={"verdict": signed},
                )
            row, rec = self._load(RecognitionStore(session), body.recognition)
            if resent:
                if any(d.envelope == digest for d in rec.decisions):
                    return rec, row.assessment  # the same decision again: the first answer
                raise self._not_found_again(digest)
            change = mr.approve if verdict is mr.DecisionVerdict.APPROVE else mr.reject
            rec = change(rec, _actor(caller), body.comment, now, envelope=digest)
            self._save(row, rec)
            approved = verdict is mr.DecisionVerdict.APPROVE
            kind = "recognition.approved" if approved else "recognition.rejected"
            self._audit(session, caller, kind, rec, digest, now, body.comment)
            return rec, row.assessment

    def revoke(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope
    ) -> tuple[mr.Recognition, bytes]:
        now = self.clock()
        with self.db.transaction() as session, _domain():
            if caller.role is not Role.ADMIN:
                raise errors.RoleNotAllowed("only administrators revoke recognitions")
            payload, digest, resent = self._open(session, caller, env, REVOCATION_TYPE, now)
            body = self._parse(
                recognition_service_pb2.RecognitionRevocation.FromString,
                payload,
                "RecognitionRevocation",
            )
            row, rec = self._load(RecognitionStore(session), body.recognition)
            if resent:
                if rec.revoke_envelope == digest:
                    return rec, row.assessment  # the same revocation again: the first answer
                raise self._not_found_again(digest)
            rec = mr.revoke(rec, _actor(caller), body.reason, now, envelope=digest)
            self._save(row, rec)
            self._audit(session, caller, "recognition.revoked", rec, digest, now, body.reason)
            if self.on_revoked is not None:
                # At once: the pending transfers to the recognising region that no longer pass
                # check 5 end now, their units back with the source (not at the 24 h deadline).
                session.flush()
                self.on_revoked(
                    session,
                    region=rec.recognising_region,
                    projects=self._projects_of(RecognitionStore(session), rec),
                    recognition=rec.name,
                    envelope=digest,
                    actor=caller,
                    now=now,
                )
            return rec, row.assessment

    # -- reading and the transfer question ------------------------------------------------------

    def get(self, name: str) -> tuple[mr.Recognition, bytes]:
        with self.db.transaction() as session:
            row, rec = self._load(RecognitionStore(session), name, lock=False)
            return rec, row.assessment

    def list_recognitions(
        self,
        *,
        recognising: str = "",
        requesting: str = "",
        state: str = "",
        page_size: int = 0,
        after: str = "",
    ) -> tuple[list[tuple[mr.Recognition, bytes]], str]:
        limit = page_limit(page_size)
        now = self.clock()
        with self.db.transaction() as session:
            found = RecognitionStore(session).page(
                after=after, limit=limit + 1, recognising=recognising, requesting=requesting
            )
        rows, last = page_of(found, limit)
        out = [(loads(r.body), r.assessment) for r in rows]
        if state:
            out = [(rec, a) for rec, a in out if mr.effective_state(rec, now).value == state]
        return out, (last.id if last is not None else "")

    def verdict(self, session: Session, region: str, project_name: str, vintage: int) -> mr.Verdict:
        """Does region recognise the project's units of that vintage (inside the caller's
        transaction)?"""
        store = RecognitionStore(session)
        project = store.project(project_name)
        if project is None:
            return mr.Verdict(False, "NOT_RECOGNISED", message=f"unknown project {project_name}")
        meth = store.methodology_of(project)
        meth_name = methodology_name(project.region, meth.methodology_id) if meth else ""
        version = meth.version if meth else ""
        rows = store.bodies_of_subjects([project_name, meth_name])
        with _domain():
            return mr.is_recognised(
                [loads(b) for b in rows],
                region=region,
                origin_region=project.region,
                methodology_name=meth_name,
                methodology_version=version,
                project_name=project_name,
                vintage=vintage,
                now=self.clock(),
            )

    def held_under(self, name: str) -> tuple[mr.Recognition, list[UnitBlockRow]]:
        """The recognition and the units its recognising region holds under it (their origin's
        projects covered by its subject) — after a revocation, the units that stand although
        the recognition no longer does (no retroactive clawback)."""
        with self.db.transaction() as session:
            store = RecognitionStore(session)
            _, rec = self._load(store, name, lock=False)
            return rec, store.blocks_held(rec.recognising_region, self._projects_of(store, rec))

    @staticmethod
    def _projects_of(store: RecognitionStore, rec: mr.Recognition) -> list[str]:
        """The projects a recognition's subject covers (itself, or its methodology's)."""
        if rec.subject.kind is mr.SubjectKind.PROJECT:
            return [rec.subject.name]
        parts = rec.subject.name.split("/")
        meth = store.methodology(parts[1], parts[3], rec.subject.version or "")
        return list(store.project_names_under(meth)) if meth is not None else []

    def check(self, region: str, project_name: str, vintage: int) -> mr.Verdict:
        with self.db.transaction() as session:
            return self.verdict(session, region, project_name, vintage)

    def decision_envelopes(self, rec: mr.Recognition) -> dict[bytes, StoredEnvelope]:
        """The stored envelopes that signed a recognition's decisions, by envelope hash."""
        hashes = [d.envelope for d in rec.decisions if d.envelope]
        if not hashes:
            return {}
        with self.db.transaction() as session:
            rows = RecognitionStore(session).envelopes(hashes)
        return {row[0]: StoredEnvelope._make(row[1:]) for row in rows}

    # -- storage helpers ------------------------------------------------------------------------

    def _requested_by(
        self, store: RecognitionStore, digest: bytes
    ) -> list[tuple[mr.Recognition, bytes]]:
        """What the request in envelope ``digest`` created, in the order it answered first."""
        rows = store.of_group(_request_id(digest))
        found: dict[str, tuple[mr.Recognition, bytes]] = {}
        for row in rows:
            rec = loads(row.body)
            found[rec.recognising_region] = (rec, row.assessment)
        if not found:
            raise self._not_found_again(digest)
        asked = next(iter(found.values()))[0].group_regions
        return [found[region] for region in asked if region in found]

    @staticmethod
    def _load(
        store: RecognitionStore, name: str, lock: bool = True
    ) -> tuple[RecognitionRow, mr.Recognition]:
        row = store.get(name.removeprefix("recognitions/"), lock=lock)
        if row is None:
            raise errors.RECOGNITION_ERRORS["RECOGNITION_NOT_FOUND"](
                f"no recognition {name}", metadata={"recognition": name}
            )
        return row, loads(row.body)

    @staticmethod
    def _save(row: RecognitionRow, rec: mr.Recognition) -> None:
        RecognitionStore.save(row, dumps(rec), rec.state.value)

    @staticmethod
    def _audit(
        session: Session,
        caller: Identity,
        kind: str,
        rec: mr.Recognition,
        envelope: bytes,
        now: dt.datetime,
        comment: str = "",
        *,
        assessment: bytes | None = None,
    ) -> None:
        # Detail rule 2 (docs/protocol.md §8.3): the stored body (and, when requested, the
        # assessment) as they are after this change, by their SHA-256.
        detail: dict[str, object] = {
            "v": DETAIL_RULE,
            "envelope_hash": envelope.hex(),
            "subject": rec.subject.name,
            "version": rec.subject.version,
            "recognising_region": rec.recognising_region,
            "state": rec.state.value,
            "approvals": len(rec.approvals),
            "required_approvals": rec.required_approvals,
            "comment": comment,
            "body_sha256": hashlib.sha256(dumps(rec).encode()).hexdigest(),
        }
        if assessment is not None:
            detail["assessment_sha256"] = hashlib.sha256(assessment).hexdigest()
        audit_log(session.connection()).append(
            kind=kind,
            subject=rec.name,
            actor_region=caller.region or "",
            actor=caller.actor,
            detail=detail,
            now=now,
        )


def _verdict_name(value: int) -> str:
    """The name of a verdict value, or its number when the enum declares none."""
    try:
        return recognition_pb2.Verdict.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return str(value)


def _request_id(envelope_hash: bytes) -> str:
    """The id of the request an envelope carries (and the group of the recognitions it makes):
    derived from the envelope, so the same envelope resent finds what it made."""
    return envelope_hash.hex()[:16]


class EnforcedRecognition:
    """Transfer check 5 through the recognitions in force (the ledger's RecognitionPolicy)."""

    def __init__(self, service: RecognitionService) -> None:
        self.service = service

    def verdict(
        self, session: Session, region: str, block: UnitBlockRow
    ) -> tuple[str | None, Fraction | None]:
        v = self.service.verdict(session, region, block.project_name, block.vintage)
        return (None if v.recognised else f"{v.reason}: {v.message}"), v.ets_ratio
