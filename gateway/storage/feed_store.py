"""Reads of accepted records with the envelopes they came in: the feed, a record's current
revision, the list of current records. Inside a caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from gateway.storage.models import EnvelopeRow, RecordRow

ENVELOPE_COLUMNS = (
    EnvelopeRow.content_type,
    EnvelopeRow.payload,
    EnvelopeRow.key_id,
    EnvelopeRow.sequence,
    EnvelopeRow.previous_hash,
    EnvelopeRow.sign_time_seconds,
    EnvelopeRow.sign_time_nanos,
    EnvelopeRow.signature,
)
"""An envelope's stored columns, in the order of the exchange service's ``StoredEnvelope``."""
_ACCEPTED_AT = RecordRow.__table__.c.accepted_at
_ITEM_COLUMNS = (
    RecordRow.id,
    RecordRow.body,
    RecordRow.envelope_record_index,
    # As the driver returns it: converted below once per distinct value (a batch's records
    # share one), not once per row.
    type_coerce(RecordRow.accepted_at, NullType()).label("accepted_at"),
    *ENVELOPE_COLUMNS,
)

FeedRow = tuple[int, bytes, int, dt.datetime, Sequence[Any]]
"""(feed position, record body, index of the record in its envelope, acceptance time, the
envelope's ``ENVELOPE_COLUMNS``)."""


class FeedStore:
    """Accepted records in feed order (by position), read as plain rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def after(
        self, position: int, *, regions: Sequence[str], kinds: Sequence[str], limit: int
    ) -> list[FeedRow]:
        """Up to ``limit`` records after feed ``position``, of those regions and kinds (empty:
        all)."""
        where: list[ColumnElement[bool]] = [RecordRow.id > position]
        if regions:
            where.append(RecordRow.region.in_(regions))
        if kinds:
            where.append(RecordRow.kind.in_(kinds))
        return self._rows(where, limit)

    def current(self, name: str, limit: int) -> list[FeedRow]:
        """The current revisions of the record ``name`` (one; a methodology's versions)."""
        return self._rows([RecordRow.name == name, RecordRow.is_current.is_(True)], limit)

    def current_page(self, *, region: str, kind: str, after: int, limit: int) -> list[FeedRow]:
        """Up to ``limit`` current records after feed position ``after``, of a region and kind
        (empty: any)."""
        where: list[ColumnElement[bool]] = [RecordRow.is_current.is_(True), RecordRow.id > after]
        if region:
            where.append(RecordRow.region == region)
        if kind:
            where.append(RecordRow.kind == kind)
        return self._rows(where, limit)

    def _rows(self, where: Sequence[ColumnElement[bool]], limit: int) -> list[FeedRow]:
        stmt = (
            select(*_ITEM_COLUMNS)
            .join(EnvelopeRow, EnvelopeRow.id == RecordRow.envelope_id)
            .where(*where)
            .order_by(RecordRow.id)
            .limit(limit)
        )
        # Core, not the ORM session's execute: plain rows, no ORM loading per row (the feed's
        # pages are thousands of rows).
        conn = self.session.connection()
        rows = conn.execute(stmt).all()
        dialect = conn.dialect
        convert = _ACCEPTED_AT.type.dialect_impl(dialect).result_processor(dialect, None)
        times: dict[Any, dt.datetime] = {}
        out: list[FeedRow] = []
        for row in rows:
            accepted_at = times.get(row[3])
            if accepted_at is None:
                value = convert(row[3]) if convert else row[3]
                assert isinstance(value, dt.datetime)
                accepted_at = times[row[3]] = value
            out.append((row[0], row[1], row[2], accepted_at, row[4:]))
        return out
