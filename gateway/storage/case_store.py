"""Statements of duplicate case resolution and reading: cases, their decisions, holds and
findings, and what a case is shown with (the subjects, the records filed, the issuances, the
decisions' envelopes). Inside a caller's transaction; never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.orm import Session

from gateway.contract import HOLD_CANCELLED, HOLD_HELD
from gateway.storage.feed_store import ENVELOPE_COLUMNS
from gateway.storage.models import (
    CaseDecisionRow,
    CaseFindingRow,
    CaseHoldRow,
    DuplicateCaseRow,
    EnvelopeRow,
    ExternalProjectRow,
    IdentitySubjectRow,
    IssuanceRow,
    ProjectRow,
    RecordRow,
)


class CaseStore:
    """Duplicate cases and what deciding and showing them reads, inside a caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- cases ----------------------------------------------------------------------------------

    def case(self, case_id: str, *, lock: bool) -> DuplicateCaseRow | None:
        """A case, locked to the end of the transaction when ``lock`` (FOR UPDATE): decisions on
        one case are taken one at a time."""
        stmt = select(DuplicateCaseRow).where(DuplicateCaseRow.case_id == case_id)
        return self.session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()

    def page(
        self,
        *,
        after: tuple[dt.datetime, str] | None,
        limit: int,
        region: str = "",
        state: str = "",
        strength: str = "",
        subject: str = "",
    ) -> list[DuplicateCaseRow]:
        """Up to ``limit`` cases, newest first (open time, then case id, both descending), after
        the (open time, case id) ``after``; filtered by a side's region, state, strength and a
        side's subject (empty: any)."""
        c = DuplicateCaseRow
        stmt = select(c).order_by(c.open_time.desc(), c.case_id.desc()).limit(limit)
        if after is not None:
            at, case_id = after
            stmt = stmt.where(or_(c.open_time < at, and_(c.open_time == at, c.case_id < case_id)))
        if region:
            prefix = f"regions/{region}/projects/%"  # a region code is six digits: no wildcard
            stmt = stmt.where(or_(c.first_subject.like(prefix), c.second_subject.like(prefix)))
        if state:
            stmt = stmt.where(c.state == state)
        if strength:
            stmt = stmt.where(c.strength == strength)
        if subject:
            stmt = stmt.where(or_(c.first_subject == subject, c.second_subject == subject))
        return list(self.session.execute(stmt).scalars())

    @staticmethod
    def resolve(
        row: DuplicateCaseRow, *, state: str, resolution: str, standing: str, now: dt.datetime
    ) -> None:
        """A case read in this transaction is resolved (written at the flush)."""
        row.state, row.resolution = state, resolution
        row.standing, row.resolve_time = standing or None, now

    # -- decisions ------------------------------------------------------------------------------

    def decisions(self, case_ids: Sequence[str]) -> list[CaseDecisionRow]:
        """The decisions on those cases, in the order they were made."""
        if not case_ids:
            return []
        return list(
            self.session.execute(
                select(CaseDecisionRow)
                .where(CaseDecisionRow.case_id.in_(case_ids))
                .order_by(CaseDecisionRow.id)
            ).scalars()
        )

    def add_decision(
        self,
        *,
        case_id: str,
        region: str,
        admin: str,
        resolution: str,
        standing: str,
        comment: str,
        envelope_hash: bytes,
        now: dt.datetime,
    ) -> None:
        self.session.add(
            CaseDecisionRow(
                case_id=case_id,
                region=region,
                admin=admin,
                resolution=resolution,
                standing=standing or None,
                comment=comment,
                decide_time=now,
                envelope_hash=envelope_hash,
            )
        )
        self.session.flush()

    def envelopes(self, hashes: Sequence[bytes]) -> list[Row[Any]]:
        """(envelope hash, then ``ENVELOPE_COLUMNS``) of the stored envelopes with those hashes."""
        if not hashes:
            return []
        return list(
            self.session.execute(
                select(EnvelopeRow.envelope_hash, *ENVELOPE_COLUMNS).where(
                    EnvelopeRow.envelope_hash.in_(hashes)
                )
            )
        )

    # -- holds and findings ---------------------------------------------------------------------

    def holds(self, case_ids: Sequence[str]) -> list[CaseHoldRow]:
        """The issuances those cases hold or held, by case and issuance."""
        if not case_ids:
            return []
        return list(
            self.session.execute(
                select(CaseHoldRow)
                .where(CaseHoldRow.case_id.in_(case_ids))
                .order_by(CaseHoldRow.case_id, CaseHoldRow.issuance)
            ).scalars()
        )

    def set_outcome(self, case_id: str, issuances: Sequence[str], outcome: str) -> None:
        """What became of those of the case's held issuances."""
        if issuances:
            self.session.execute(
                update(CaseHoldRow)
                .where(CaseHoldRow.case_id == case_id, CaseHoldRow.issuance.in_(issuances))
                .values(outcome=outcome)
            )

    def cancel_holds(self, issuances: Sequence[str]) -> None:
        """Every open hold on those issuances (whichever case's) ends as cancelled."""
        if issuances:
            self.session.execute(
                update(CaseHoldRow)
                .where(CaseHoldRow.issuance.in_(issuances), CaseHoldRow.outcome == HOLD_HELD)
                .values(outcome=HOLD_CANCELLED)
            )

    def findings(self, case_ids: Sequence[str]) -> list[CaseFindingRow]:
        """The findings of those cases, in the order they were stored."""
        if not case_ids:
            return []
        return list(
            self.session.execute(
                select(CaseFindingRow)
                .where(CaseFindingRow.case_id.in_(case_ids))
                .order_by(CaseFindingRow.id)
            ).scalars()
        )

    def add_finding(
        self,
        *,
        case_id: str,
        issuance: str,
        serial_start: int,
        serial_end: int,
        holder_region: str,
        state: str,
        grams: int,
    ) -> None:
        self.session.add(
            CaseFindingRow(
                case_id=case_id,
                issuance=issuance,
                serial_start=serial_start,
                serial_end=serial_end,
                holder_region=holder_region,
                state=state,
                grams=grams,
            )
        )

    # -- what a case is shown with --------------------------------------------------------------

    def subjects(self, subjects: Sequence[str]) -> dict[str, IdentitySubjectRow]:
        """The identity subjects with those names, by name."""
        if not subjects:
            return {}
        rows = self.session.execute(
            select(IdentitySubjectRow).where(IdentitySubjectRow.subject.in_(subjects))
        ).scalars()
        return {r.subject: r for r in rows}

    def external_projects(self, subjects: Sequence[str]) -> dict[str, ExternalProjectRow]:
        """The imported external projects with those names, by name."""
        if not subjects:
            return {}
        rows = self.session.execute(
            select(ExternalProjectRow).where(ExternalProjectRow.subject.in_(subjects))
        ).scalars()
        return {r.subject: r for r in rows}

    def project_bodies(self, names: Sequence[str]) -> dict[str, bytes]:
        """The current record bodies (serialised yrd.interop.v1.Record) of those projects."""
        if not names:
            return {}
        rows = self.session.execute(
            select(ProjectRow.name, RecordRow.body)
            .join(RecordRow, RecordRow.id == ProjectRow.record_id)
            .where(ProjectRow.name.in_(names))
        )
        return {name: body for name, body in rows}

    def issuances(self, names: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """(project name, record body) of those issuances, by name."""
        if not names:
            return {}
        rows = self.session.execute(
            select(IssuanceRow.name, IssuanceRow.project_name, RecordRow.body)
            .join(RecordRow, RecordRow.id == IssuanceRow.record_id)
            .where(IssuanceRow.name.in_(names))
        )
        return {name: (project, body) for name, project, body in rows}
