"""The directory of record-signing keys: statements on ``signing_keys``, inside a caller's
transaction (they never commit)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.storage.models import SigningKeyRow


class SigningKeyStore:
    """Reads, adds and revokes signing keys."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key_id: str) -> SigningKeyRow | None:
        return self.session.get(SigningKeyRow, key_id)

    def get_for_update(self, key_id: str) -> SigningKeyRow | None:
        """The key, locked to the end of the transaction (FOR UPDATE on PostgreSQL)."""
        stmt = select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update()
        return self.session.execute(stmt).scalar_one_or_none()

    def add(
        self,
        *,
        key_id: str,
        region: str,
        owner: str,
        public_key: bytes,
        registered_at: dt.datetime,
        registered_by: str,
    ) -> SigningKeyRow:
        """Store a new key (its signer chain at the start) and return its row."""
        row = SigningKeyRow(
            key_id=key_id,
            region=region,
            owner=owner,
            public_key=public_key,
            registered_at=registered_at,
            registered_by=registered_by,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def revoke(self, row: SigningKeyRow, at: dt.datetime, reason: str) -> None:
        """Mark a key (read in this transaction) revoked from ``at`` on."""
        row.revoked_at, row.revoke_reason = at, reason
        self.session.flush()

    def list(self, region: str | None, include_revoked: bool) -> Sequence[SigningKeyRow]:
        """Keys by region and id, of one region or all, the revoked ones too if asked."""
        stmt = select(SigningKeyRow).order_by(SigningKeyRow.region, SigningKeyRow.key_id)
        if region:
            stmt = stmt.where(SigningKeyRow.region == region)
        if not include_revoked:
            stmt = stmt.where(SigningKeyRow.revoked_at.is_(None))
        return self.session.execute(stmt).scalars().all()
