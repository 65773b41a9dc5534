"""Statements of mutual recognition: recognitions, and the methodologies, projects, records,
blocks and envelopes they are read with. Inside a caller's transaction; never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from gateway.storage.feed_store import ENVELOPE_COLUMNS
from gateway.storage.models import (
    EnvelopeRow,
    MethodologyRow,
    ProjectRow,
    RecognitionRow,
    RecordRow,
    UnitBlockRow,
)


class RecognitionStore:
    """Recognitions and what deciding them reads, inside a caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- methodologies, projects, records -------------------------------------------------------

    def methodology(self, region: str, methodology_id: str, version: str) -> MethodologyRow | None:
        return self.session.get(MethodologyRow, (region, methodology_id, version))

    def project(self, name: str) -> ProjectRow | None:
        return self.session.execute(
            select(ProjectRow).where(ProjectRow.name == name)
        ).scalar_one_or_none()

    def methodology_of(self, project: ProjectRow) -> MethodologyRow | None:
        """The methodology version a project applies (by its reference id and version)."""
        return self.session.execute(
            select(MethodologyRow).where(
                MethodologyRow.region == project.region,
                MethodologyRow.ref_id == project.methodology_id,
                MethodologyRow.ref_version == project.methodology_version,
            )
        ).scalar_one_or_none()

    def record_body(self, record_id: int) -> bytes | None:
        """A stored record's serialised yrd.interop.v1.Record."""
        row = self.session.get(RecordRow, record_id)
        return None if row is None else row.body

    def methodology_bodies(self, region: str) -> list[bytes]:
        """The record bodies of every methodology version ``region`` published."""
        return list(
            self.session.execute(
                select(RecordRow.body)
                .join(MethodologyRow, MethodologyRow.record_id == RecordRow.id)
                .where(MethodologyRow.region == region)
            ).scalars()
        )

    def project_names_under(self, methodology: MethodologyRow) -> list[str]:
        """Names of the projects that apply a methodology version."""
        return list(
            self.session.execute(
                select(ProjectRow.name).where(
                    ProjectRow.region == methodology.region,
                    ProjectRow.methodology_id == methodology.ref_id,
                    ProjectRow.methodology_version == methodology.ref_version,
                )
            ).scalars()
        )

    def blocks_held(self, region: str, projects: Sequence[str]) -> list[UnitBlockRow]:
        """The blocks ``region`` holds of those projects, by origin and serial."""
        return list(
            self.session.execute(
                select(UnitBlockRow)
                .where(
                    UnitBlockRow.holder_region == region, UnitBlockRow.project_name.in_(projects)
                )
                .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
            ).scalars()
        )

    def envelopes(self, hashes: Sequence[bytes]) -> list[Row[Any]]:
        """(envelope hash, then ``ENVELOPE_COLUMNS``) of the stored envelopes with those hashes."""
        return list(
            self.session.execute(
                select(EnvelopeRow.envelope_hash, *ENVELOPE_COLUMNS).where(
                    EnvelopeRow.envelope_hash.in_(hashes)
                )
            )
        )

    # -- recognitions ---------------------------------------------------------------------------

    def add(
        self,
        *,
        recognition_id: str,
        subject_name: str,
        requesting_region: str,
        recognising_region: str,
        state: str,
        group_id: str,
        body: str,
        assessment: bytes,
        requested_at: dt.datetime,
    ) -> None:
        self.session.add(
            RecognitionRow(
                id=recognition_id,
                subject_name=subject_name,
                requesting_region=requesting_region,
                recognising_region=recognising_region,
                state=state,
                group_id=group_id,
                body=body,
                assessment=assessment,
                requested_at=requested_at,
            )
        )

    def get(self, recognition_id: str, *, lock: bool) -> RecognitionRow | None:
        """A recognition, locked to the end of the transaction when ``lock`` (FOR UPDATE)."""
        stmt = select(RecognitionRow).where(RecognitionRow.id == recognition_id)
        return self.session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()

    @staticmethod
    def save(row: RecognitionRow, body: str, state: str) -> None:
        """A recognition read in this transaction gets a new body and state (written at the
        flush)."""
        row.body, row.state = body, state

    def of_subject(self, subject_name: str) -> list[RecognitionRow]:
        return list(
            self.session.execute(
                select(RecognitionRow).where(RecognitionRow.subject_name == subject_name)
            ).scalars()
        )

    def of_group(self, group_id: str) -> list[RecognitionRow]:
        """The recognitions one request made."""
        return list(
            self.session.execute(
                select(RecognitionRow).where(RecognitionRow.group_id == group_id)
            ).scalars()
        )

    def bodies_of_subjects(self, subject_names: Sequence[str]) -> list[str]:
        return list(
            self.session.execute(
                select(RecognitionRow.body).where(RecognitionRow.subject_name.in_(subject_names))
            ).scalars()
        )

    def page(
        self, *, after: str, limit: int, recognising: str = "", requesting: str = ""
    ) -> list[RecognitionRow]:
        """Up to ``limit`` recognitions with ids after ``after``, in id order, of a recognising
        and requesting region (empty: any)."""
        stmt = (
            select(RecognitionRow)
            .where(RecognitionRow.id > after)
            .order_by(RecognitionRow.id)
            .limit(limit)
        )
        if recognising:
            stmt = stmt.where(RecognitionRow.recognising_region == recognising)
        if requesting:
            stmt = stmt.where(RecognitionRow.requesting_region == requesting)
        return list(self.session.execute(stmt).scalars())
