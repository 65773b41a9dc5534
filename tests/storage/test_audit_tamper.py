"""The audit log names the first bad entry after a byte flip, a deletion or a swap — on every
backend, reading the database directly as `yrdgw audit verify --database-url` does."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from adapters import default_registry
from gateway.client import EnvelopeSigner
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.audit import AuditReader
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow


@pytest.fixture
def populated(database: Database, pki: PKIDir) -> Database:
    KeyDirectory(database).import_from_pki(pki)  # 12 entries
    exchange = ExchangeService(database, default_registry)
    for region in ("310000", "320000"):
        signer = EnvelopeSigner(load_signing_key(pki.registry(region).signing_key))
        envelopes = [signer.sign(ct, data) for ct, data in sample_documents(region)]
        outcomes = exchange.publish(Identity(Role.REGISTRY, region), envelopes)
        assert all(o.accepted for o in outcomes), [o.error for o in outcomes]
    return database


def _verify(db: Database) -> tuple[bool, int | None, str]:
    check = AuditReader(db).verify()
    return check.ok, check.first_bad_entry, check.problem


def test_fresh_log_verifies(populated: Database) -> None:
    assert _verify(populated) == (True, None, "")
    assert AuditReader(populated).verify().entries == 12 + 6


def test_one_flipped_byte_is_found(populated: Database) -> None:
    with populated.transaction() as s:
        row = s.get(AuditEntryRow, 15)
        assert row is not None
        row.detail = bytes([row.detail[0] ^ 0x01]) + row.detail[1:]
    ok, first_bad, problem = _verify(populated)
    assert (ok, first_bad) == (False, 15)
    assert "entry 15 hash does not match" in problem


def test_deleted_entry_is_found(populated: Database) -> None:
    with populated.transaction() as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.sequence == 7))
    ok, first_bad, problem = _verify(populated)
    assert (ok, first_bad) == (False, 7)
    assert "expected sequence 7, found 8" in problem


def test_deleted_last_entry_is_found_through_the_head(populated: Database) -> None:
    with populated.transaction() as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.sequence == 18))
    ok, first_bad, problem = _verify(populated)
    assert (ok, first_bad) == (False, 18)
    assert "recorded head is entry 18" in problem


def test_swapped_entries_are_found(populated: Database) -> None:
    columns = (
        "kind",
        "subject",
        "actor_region",
        "actor",
        "detail",
        "previous_hash",
        "entry_hash",
        "created_at",
    )
    with populated.transaction() as s:
        a = s.execute(select(AuditEntryRow).where(AuditEntryRow.sequence == 13)).scalar_one()
        b = s.execute(select(AuditEntryRow).where(AuditEntryRow.sequence == 14)).scalar_one()
        values_a = {c: getattr(a, c) for c in columns}
        values_b = {c: getattr(b, c) for c in columns}
        # entry_hash is unique: park one side first.
        a.entry_hash = b"\xff" * 32
        s.flush()
        for c in columns:
            setattr(b, c, values_a[c])
        s.flush()
        for c in columns:
            setattr(a, c, values_b[c])
    ok, first_bad, problem = _verify(populated)
    assert (ok, first_bad) == (False, 13)
    assert "entry 13 does not link to entry 12" in problem
