"""Storage contract: the same tests on SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select

from gateway.errors import (
    InvalidArgument,
    PermissionDenied,
    SigningKeyExists,
    SigningKeyInvalid,
    SigningKeyNotFound,
    SigningKeyRevoked,
    WrongRegion,
)
from gateway.security.identity import Identity, Role
from gateway.security.signing import key_id_of, raw_public_key
from gateway.services.audit import AuditReader
from gateway.services.keys import KeyDirectory
from gateway.storage.audit_store import AuditStore
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow, Base, SigningKeyRow

ADMIN_SH = Identity(Role.ADMIN, "310000", "admin-a")
ADMIN_JS = Identity(Role.ADMIN, "320000", "admin-a")
REGISTRY_SH = Identity(Role.REGISTRY, "310000")
NOW = dt.datetime(2026, 11, 25, 8, 30, 15, 123456, tzinfo=dt.UTC)


def _new_key() -> bytes:
    return raw_public_key(ed25519.Ed25519PrivateKey.generate())


def _audit_size(db: Database) -> int:
    with db.transaction() as s:
        return s.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one()


def test_migrations_reach_head_and_match_the_models(database: Database) -> None:
    assert database.current_revision() == database.head_revision()
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_upgrade_twice_is_harmless(database: Database) -> None:
    database.upgrade()
    assert database.current_revision() == database.head_revision()


def test_keys_registered_before_0002_get_a_genesis_chain_head(sqlite_database: Database) -> None:
    from alembic import command

    from gateway.storage.db import alembic_config

    db = sqlite_database
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO signing_keys (key_id, region, owner, public_key, registered_at, registered_by)"
            " VALUES ('k1', '310000', 'registry', X'01', '2026-01-01 00:00:00', 'test')"
        )
    db.upgrade()
    with db.transaction() as s:
        row = s.get(SigningKeyRow, "k1")
        assert row is not None and row.last_sequence == 0 and row.last_hash == bytes(32)


def test_register_key_stores_it_and_audits_it(database: Database) -> None:
    keys = KeyDirectory(database, clock=lambda: NOW)
    public = _new_key()
    key = keys.register(ADMIN_SH, "registry", public)
    assert key.key_id == key_id_of(public)
    assert (key.region, key.owner, key.public_key) == ("310000", "registry", public)
    assert key.registered_at == NOW  # UTC-aware, microseconds kept on both backends
    assert keys.get(key.key_id) == key
    with database.transaction() as s:
        entry = AuditStore(s).page(1, 10)[0]
    assert (entry.kind, entry.actor_region, entry.actor) == (
        "signing_key.registered",
        "310000",
        "admin/admin-a",
    )
    assert entry.subject == f"regions/310000/keys/{key.key_id}"


def test_register_same_key_again_is_idempotent(database: Database) -> None:
    keys = KeyDirectory(database)
    public = _new_key()
    first = keys.register(ADMIN_SH, "registry", public)
    assert keys.register(ADMIN_SH, "registry", public) == first
    assert _audit_size(database) == 1


def test_refusals_change_nothing(database: Database) -> None:
    keys = KeyDirectory(database)
    public = _new_key()
    keys.register(ADMIN_SH, "registry", public)
    before = _audit_size(database)
    with pytest.raises(SigningKeyExists):
        keys.register(ADMIN_JS, "registry", public)  # someone else's key
    with pytest.raises(SigningKeyInvalid):
        keys.register(ADMIN_SH, "registry", b"short")
    for weak in (bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x80"):
        with pytest.raises(SigningKeyInvalid, match="small order"):
            keys.register(ADMIN_SH, "registry", weak)
    with pytest.raises(InvalidArgument):
        keys.register(ADMIN_SH, "operator", _new_key())
    with pytest.raises(PermissionDenied):
        keys.register(REGISTRY_SH, "registry", _new_key())
    with pytest.raises(WrongRegion):
        keys.register(ADMIN_SH, "registry", _new_key(), region="320000")
    assert _audit_size(database) == before
    with database.transaction() as s:
        assert s.execute(select(func.count()).select_from(SigningKeyRow)).scalar_one() == 1


def test_revoke_only_own_region_once(database: Database) -> None:
    keys = KeyDirectory(database)
    key = keys.register(ADMIN_SH, "registry", _new_key())
    with pytest.raises(WrongRegion):
        keys.revoke(ADMIN_JS, key.key_id, "not yours")
    with pytest.raises(InvalidArgument):
        keys.revoke(ADMIN_SH, key.key_id, "   ")
    revoked = keys.revoke(ADMIN_SH, key.key_id, "rotated")
    assert revoked.revoked_at is not None and revoked.revoke_reason == "rotated"
    with pytest.raises(SigningKeyRevoked):
        keys.revoke(ADMIN_SH, key.key_id, "again")
    with pytest.raises(SigningKeyNotFound):
        keys.revoke(ADMIN_SH, "f" * 32, "missing")
    assert [k.key_id for k in keys.list("310000")] == []
    assert [k.key_id for k in keys.list("310000", include_revoked=True)] == [key.key_id]
    assert _audit_size(database) == 2


def test_audit_chain_verifies_after_many_changes(database: Database) -> None:
    keys = KeyDirectory(database)
    for _ in range(12):
        keys.register(ADMIN_SH, "registry", _new_key())
    reader = AuditReader(database, ed25519.Ed25519PrivateKey.generate())
    check = reader.verify()
    assert check.ok and check.entries == 12
    rows, next_seq = reader.page(1, 5)
    assert [r.sequence for r in rows] == [1, 2, 3, 4, 5] and next_seq == 6
    rows, next_seq = reader.page(11, 5)
    assert [r.sequence for r in rows] == [11, 12] and next_seq == 0
    head = reader.tree_head()
    assert head.size == 12 and head.head_hash == check.head_hash


def test_tampering_in_the_database_is_detected(database: Database) -> None:
    keys = KeyDirectory(database)
    for _ in range(3):
        keys.register(ADMIN_SH, "registry", _new_key())
    with database.transaction() as s:
        row = s.get(AuditEntryRow, 2)
        assert row is not None
        row.detail = b'{"forged":true}'
    check = AuditReader(database, ed25519.Ed25519PrivateKey.generate()).verify()
    assert not check.ok and check.entries == 1


def test_concurrent_appends_keep_one_linear_chain(database: Database) -> None:
    keys = KeyDirectory(database)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                keys.register(ADMIN_SH, "registry", _new_key())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = AuditReader(database, ed25519.Ed25519PrivateKey.generate()).verify()
    assert check.ok and check.entries == 20


def test_import_from_pki_is_idempotent(database: Database, pki: object) -> None:
    from gateway.security.pki import PKIDir

    assert isinstance(pki, PKIDir)
    keys = KeyDirectory(database)
    assert keys.import_from_pki(pki) == 12  # 4 registries + 8 administrators
    assert keys.import_from_pki(pki) == 0
    owners = sorted(k.owner for k in keys.list("330000"))
    assert owners == ["admin/admin-a", "admin/admin-b", "registry"]
