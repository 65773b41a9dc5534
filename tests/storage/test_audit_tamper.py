"""The audit log names the first bad entry after a byte flip, a deletion or a swap; and, after a
realistic run, one changed byte or value in any stored table is named by its table and row — on
every backend, reading the database directly as `yrdgw audit verify --database-url` does."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.orm import Session

from adapters import default_registry
from gateway import demo
from gateway.cli.audit import served_records
from gateway.client import EnvelopeSigner, GatewayClient, verify_remote_log
from gateway.config import GatewaySettings
from gateway.samples import sample_documents
from gateway.security.audit_chain import (
    GENESIS,
    ChainCheck,
    EntryFields,
    canonical_json,
    entry_hash,
)
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.server import GatewayServer
from gateway.services.audit import AuditReader
from gateway.services.audit_verify import COVERED, NOT_COVERED
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    AuditHeadRow,
    Base,
    EnvelopeRow,
    RecordRow,
    SnapshotBlockRow,
    TransferRow,
    UnitBlockRow,
)
from gateway.storage.reconciliation_store import ReconciliationStore
from mutual_recognition import DELTA_REGIONS


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
    assert AuditReader(populated).verify_storage(default_registry).check.ok


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


# -- every stored table against the log, after a realistic run ------------------------------------


@pytest.fixture
def realistic(database: Database, pki: PKIDir, tmp_path: Path) -> Iterator[Database]:
    """A real gateway over ``database`` walked through what the demo does — four regions
    publish, a recognition is requested, approved and revoked, transfers complete, are
    rejected (explicitly and by the revocation) and cancelled, units retire, two registries
    reconcile — then stopped."""
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url="sqlite://",
        cert_dir=pki.root,
        metrics_listen="127.0.0.1:0",
        shutdown_grace_s=1.0,
        log_format="json",
        log_level="warning",
    )
    server = GatewayServer(settings, db=database)
    target = f"127.0.0.1:{server.start()}"
    quiet = Console(file=io.StringIO())
    clients: list[GatewayClient] = []

    def client(region: str, role: Role = Role.REGISTRY, name: str | None = None) -> GatewayClient:
        clients.append(GatewayClient(target, pki, region=region, role=role, name=name))
        return clients[-1]

    try:
        registries = [client(r) for r in DELTA_REGIONS]
        sh, ah = registries[0], registries[3]
        admin_a = client("310000", Role.ADMIN, "admin-a")
        admin_b = client("310000", Role.ADMIN, "admin-b")
        failures = demo._exchange(quiet, registries)
        failures += demo._recognition_and_transfers(quiet, sh, ah, admin_a, admin_b)
        # Shanghai's own units, once Jiangsu recognises them: one transfer rejected by
        # Jiangsu, one cancelled by Shanghai.
        js = registries[1]
        (rec,) = sh.request_recognition(
            "regions/310000/methodologies/SHCI-M-PV-2024-01", version="1", regions=["320000"]
        )
        for admin in ("admin-a", "admin-b")[: rec.required_approvals]:
            client("320000", Role.ADMIN, admin).approve_recognition(rec.name, "ok")
        held = sh.holdings("310000")[0].serials.start
        sent = sh.propose_transfer("sh-js-1", "320000", origin="310000", ranges=[(held, held + 9)])
        js.reject_transfer(sent.name, "not expected")
        sent = sh.propose_transfer(
            "sh-js-2", "320000", origin="310000", ranges=[(held + 10, held + 19)]
        )
        sh.cancel_transfer(sent.name, "sent by mistake")
        failures += demo._reconciliation(
            quiet, pki, sh, ah, admin_a, client("340000", Role.ADMIN, "admin-a")
        )
        assert failures == 0, quiet.file.getvalue()  # type: ignore[attr-defined]
    finally:
        for c in clients:
            c.close()
        server.stop(grace=1.0)
    yield database


def _storage(db: Database) -> ChainCheck:
    return AuditReader(db).verify_storage(default_registry).check


Flip = tuple[str, str, Callable[[Any], Any], str]
"""(table, column, how its value changes, which row: an SQL condition on the table)."""


def _byte(v: Any) -> Any:
    if isinstance(v, bytes):
        return bytes([v[0] ^ 0x01]) + v[1:]
    if isinstance(v, str):
        return v[:-1] + chr(ord(v[-1]) ^ 0x01)
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    assert isinstance(v, dt.datetime), v
    return v + dt.timedelta(microseconds=1)


FLIPS: list[tuple[str, str, str]] = [
    # (table, column, row: SQL condition); each changes one byte or one value
    ("audit_head", "head_hash", "id = 1"),
    ("audit_entries", "detail", "sequence = 20"),
    ("envelopes", "payload", "id = (SELECT min(id) FROM envelopes)"),
    ("envelopes", "signature", "id = (SELECT max(id) FROM envelopes)"),
    ("records", "body", "id = 3"),
    ("records", "is_current", "id = 3"),
    ("signing_keys", "last_hash", "owner = 'registry' AND region = '340000'"),
    ("signing_keys", "public_key", "owner = 'admin/admin-b' AND region = '310000'"),
    ("methodologies", "ref_id", "region = '340000' AND methodology_id = 'AH-FFX-PV-2024-02'"),
    ("projects", "methodology_id", "region = '320000'"),
    ("issuances", "quantity_grams", "region = '330000'"),
    ("unit_blocks", "holder_region", "id = (SELECT max(id) FROM unit_blocks)"),
    ("unit_blocks", "serial_start", "id = (SELECT min(id) FROM unit_blocks)"),
    ("transfers", "state", "transfer_id = 'sh-js-2'"),
    ("transfers", "expires_at", "transfer_id = 'ah-sh-2025-001'"),
    ("transfers", "answer_envelope", "transfer_id = 'sh-js-1'"),
    ("retirements", "outside_grams", "id = 1"),
    ("retirements", "beneficiary", "id = 1"),
    ("recognitions", "body", "1 = 1"),
    ("recognitions", "assessment", "1 = 1"),
    ("holdings_snapshots", "snapshot_time", "id = 1"),
    (
        "snapshot_blocks",
        "serial_end",
        "side = 'registry' AND id = (SELECT min(id) FROM snapshot_blocks)",
    ),
    ("snapshot_blocks", "state", "side = 'ledger' AND state = 'retired'"),
    ("snapshot_totals", "ledger_grams", "1 = 1"),
    ("snapshot_transfers", "transfer_name", "snapshot_id = 1"),
    ("reconciliation_reports", "body", "id = 2"),
]


def _flip(db: Database, table: str, column: str, where: str) -> tuple[Any, Any]:
    """Change ``column`` of the (first) row ``where`` selects; returns (its key now, the old
    value)."""
    t = Base.metadata.tables[table]
    pk = list(t.primary_key.columns)
    with db.transaction() as s:
        row = s.execute(select(*pk, t.c[column]).where(text(where)).limit(1)).one()
        key, old = tuple(row[:-1]), row[-1]
        cond = and_(*(c == k for c, k in zip(pk, key, strict=True)))
        new = _byte(old)
        s.execute(update(t).where(cond).values({column: new}))
    # The key that finds the row again (the column may be part of it).
    return tuple(new if c.key == column else k for c, k in zip(pk, key, strict=True)), old


def _restore(db: Database, table: str, column: str, key: tuple[Any, ...], old: Any) -> None:
    t = Base.metadata.tables[table]
    cond = and_(*(c == k for c, k in zip(t.primary_key.columns, key, strict=True)))
    with db.transaction() as s:
        s.execute(update(t).where(cond).values({column: old}))


def test_every_stored_table_is_covered_or_excused() -> None:
    # The duplicate cases' tables are changed after a run that makes them (its own module).
    from tests.storage.test_audit_duplicates import CASE_FLIPS

    tables = set(Base.metadata.tables)
    assert tables == set(COVERED) | set(NOT_COVERED)
    assert not set(COVERED) & set(NOT_COVERED)
    assert {t for t, _, _ in FLIPS + CASE_FLIPS} == set(COVERED)
    assert len(COVERED) == 23 and len(NOT_COVERED) == 4


def test_a_realistic_database_verifies_clean(realistic: Database) -> None:
    result = AuditReader(realistic).verify_storage(default_registry)
    assert result.check.ok, result.check
    assert result.unchecked == 0  # every entry was written under the current rule
    with realistic.transaction() as s:
        kinds = set(s.execute(select(AuditEntryRow.kind)).scalars())
        rows = sum(
            s.execute(select(func.count()).select_from(Base.metadata.tables[t])).scalar_one()
            for t in COVERED
            if t not in ("audit_head", "audit_entries")
        )
    assert result.rows == rows  # every row of every covered table was compared
    assert {
        "transfer.completed",
        "transfer.rejected",
        "transfer.cancelled",
        "units.retired",
        "recognition.revoked",
        "reconciliation.report",
    } <= kinds


def test_one_changed_value_in_each_table_is_named(realistic: Database) -> None:
    """Flip one byte (or change one value) of one row of each stored table in turn: verify
    names that table and row; put it back: the database verifies clean again."""
    for table, column, where in FLIPS:
        key, old = _flip(realistic, table, column, where)
        found = _storage(realistic)
        assert not found.ok, (table, column)
        assert found.table == table, (table, column, found)
        if table in ("records", "envelopes", "retirements", "holdings_snapshots"):
            assert found.key == f"id={key[0]}", (table, column, found)
        if table == "snapshot_blocks":
            side = "registry" if "'registry'" in where else "ledger"
            assert re.fullmatch(rf"snapshot_id=\d+ side={side}", found.key), found
        if table == "snapshot_totals":
            assert found.key == f"snapshot_id={key[0]}", found
        _restore(realistic, table, column, key, old)
    assert _storage(realistic).ok


def test_rows_added_or_removed_are_named(realistic: Database) -> None:
    # A block removed: its serials are held by no block.
    with realistic.transaction() as s:
        gone = s.execute(select(UnitBlockRow).order_by(UnitBlockRow.id.desc())).scalars().first()
        assert gone is not None
        s.execute(delete(UnitBlockRow).where(UnitBlockRow.id == gone.id))
    found = _storage(realistic)
    assert (found.table, found.key) == ("unit_blocks", f"origin_region={gone.origin_region}")
    assert "held by no block" in found.problem
    # An envelope no entry stored (a copy of one, under another hash and sequence).
    with realistic.transaction() as s:
        model = s.execute(select(EnvelopeRow).order_by(EnvelopeRow.id)).scalars().first()
        assert model is not None
        columns = ("key_id", "region", "previous_hash", "content_type", "payload")
        columns += ("sign_time_seconds", "sign_time_nanos", "signature", "received_at")
        extra_id = s.execute(select(func.max(EnvelopeRow.id))).scalar_one() + 1
        s.add(
            EnvelopeRow(
                **{c: getattr(model, c) for c in columns},
                id=extra_id,  # the gateway allocates envelope ids itself
                envelope_hash=bytes(32),
                sequence=10**9,
            )
        )
    found = _storage(realistic)  # compared as the log is read, before the blocks
    assert (found.table, found.key) == ("envelopes", f"id={extra_id}"), found
    assert "named by no audit entry" in found.problem
    # A resolved transfer removed: named as the log resolves it, before the envelopes' end check.
    with realistic.transaction() as s:
        s.execute(delete(TransferRow).where(TransferRow.transfer_id == "sh-js-1"))
    found = _storage(realistic)
    assert found.table == "transfers" and found.problem.startswith("missing: the audit log")
    assert "sh-js-1" in found.key


RULE_2_KEYS = (
    "v",
    "expires_at",
    "outside_grams",
    "body_sha256",
    "assessment_sha256",
    "stored_blocks",
    "stored_blocks_sha256",
    "totals_sha256",
)


def _cut(
    origin: str, start: int, end: int, state: str, cuts: set[int]
) -> list[tuple[str, int, int, str]]:
    """The block ``start``..``end`` cut before each serial of ``cuts`` inside it."""
    points = [start, *sorted(c for c in cuts if start < c <= end), end + 1]
    return [(origin, a, b - 1, state) for a, b in itertools.pairwise(points)]


def _blocks_as_stored_before_0008(s: Session, sid: int, region: str) -> None:
    """Snapshot ``sid``'s blocks as a gateway before migration 0008 stored them: every block of
    both sides. Nothing changed the ledger after the fixture's snapshots, so the ledger's side
    is its blocks now; the registry's is what it holds alike with them, and what it kept."""
    ledger = set(ReconciliationStore(s).ledger_blocks(region))
    kept = ReconciliationStore(s).kept_blocks(sid)
    # The gateway keeps the registry's runs; the fixture's registries send the ledger's blocks
    # (states changed where a mistake is planted), so a run is cut back where they start.
    sent = {
        piece
        for origin, start, end, state in kept["registry"]
        for piece in _cut(origin, start, end, state, {b[1] for b in ledger if b[0] == origin})
    }
    sides = {"registry": sent | (ledger - set(kept["ledger"])), "ledger": ledger}
    s.execute(delete(SnapshotBlockRow).where(SnapshotBlockRow.snapshot_id == sid))
    for side, blocks in sides.items():
        for origin, start, end, state in sorted(blocks):
            s.add(
                SnapshotBlockRow(
                    snapshot_id=sid,
                    side=side,
                    origin_region=origin,
                    serial_start=start,
                    serial_end=end,
                    state=state,
                )
            )
    s.flush()


def _as_written_before_rule_2(db: Database) -> None:
    """Rewrite the log as a gateway before detail rule 2 wrote it: the same entries without
    rule 2's keys, chained again; its snapshots' blocks as it stored them."""
    with db.transaction() as s:
        rows = s.execute(select(AuditEntryRow).order_by(AuditEntryRow.sequence)).scalars().all()
        previous = GENESIS
        snapshots = [r.sequence for r in rows if r.kind == "reconciliation.snapshot"]
        ledger_kinds = ("transfer.", "units.", "issuance.")
        assert not [
            r for r in rows if r.sequence > snapshots[0] and r.kind.startswith(ledger_kinds)
        ]
        for row in rows:
            detail = json.loads(row.detail)
            if row.kind == "reconciliation.snapshot":
                sid = int(row.subject.rsplit("/", 1)[1])
                _blocks_as_stored_before_0008(s, sid, row.actor_region)
            for k in RULE_2_KEYS:
                detail.pop(k, None)
            row.detail = canonical_json(detail)
            row.previous_hash = previous
            fields = EntryFields(
                row.sequence,
                row.kind,
                row.subject,
                row.actor_region,
                row.actor,
                row.detail,
                previous,
                row.created_at,
            )
            row.entry_hash = previous = entry_hash(fields)
            s.flush()
        head = s.get(AuditHeadRow, 1)
        assert head is not None
        head.head_hash = previous


def test_entries_written_under_rule_1_keep_verifying(realistic: Database) -> None:
    """A log written before rule 2 verifies under rule 1: what its entries commit to is checked,
    what they do not is counted as unchecked (and changing it goes unseen, as it did then)."""
    with realistic.transaction() as s:
        kinds = list(s.execute(select(AuditEntryRow.kind)).scalars())
    _as_written_before_rule_2(realistic)
    result = AuditReader(realistic).verify_storage(default_registry)
    assert result.check.ok, result.check
    # What rule 2 adds: every recognition entry's body (and a request's assessment), each
    # proposal's deadline, each retirement's outside grams, each snapshot's registry blocks.
    assert result.unchecked == (
        sum(k.startswith("recognition.") for k in kinds)
        + kinds.count("recognition.requested")
        + kinds.count("transfer.proposed")
        + kinds.count("units.retired")
        + kinds.count("reconciliation.snapshot")
    )
    key, old = _flip(realistic, "recognitions", "body", "1 = 1")
    assert _storage(realistic).ok  # rule 1 never committed to it
    _restore(realistic, "recognitions", "body", key, old)
    # Rule 1's snapshot totals are the sums of its (verified) blocks, as migration 0008 made them.
    key, old = _flip(realistic, "snapshot_totals", "registry_grams", "1 = 1")
    found = _storage(realistic)
    assert (found.ok, found.table, found.key) == (False, "snapshot_totals", f"snapshot_id={key[0]}")
    _restore(realistic, "snapshot_totals", "registry_grams", key, old)
    _flip(realistic, "transfers", "quantity_grams", "transfer_id = 'sh-js-1'")
    found = _storage(realistic)
    assert (found.ok, found.table) == (False, "transfers")


def test_rule_2_vectors_hold() -> None:
    """docs/vectors/audit-commitments.json re-derived with hashlib and json alone (the entry
    hashes with the implementation's, which audit-chain.json pins independently)."""
    path = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "audit-commitments.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    previous = GENESIS
    for case in doc["cases"]:
        e = case["entry"]
        detail = json.loads(e["detail_text"])
        assert detail["v"] == 2
        fields = EntryFields(
            e["sequence"],
            e["kind"],
            e["subject"],
            e["actor_region"],
            e["actor"],
            e["detail_text"].encode(),
            previous,
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            + dt.timedelta(microseconds=e["create_time_micros"]),
        )
        previous = entry_hash(fields)
        assert previous.hex() == e["entry_hash"]
        stored, tampered = case["stored"], case["tampered"]
        if "value_text" in stored:
            sha = hashlib.sha256(stored["value_text"].encode()).hexdigest()
            assert sha == detail["body_sha256"] == stored["sha256"]
            assert hashlib.sha256(tampered["value_text"].encode()).hexdigest() != sha
        elif "row" in stored:
            # An external project: canonical JSON of its committed columns.
            def row_digest(row: dict[str, Any]) -> tuple[str, str]:
                text_ = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                return text_, hashlib.sha256(text_.encode()).hexdigest()

            assert row_digest(stored["row"]) == (stored["digest_input"], stored["sha256"])
            assert detail["projects"] == [[stored["row"]["subject"], stored["sha256"]]]
            assert detail["rows"] == 1
            assert row_digest(tampered["row"])[1] == tampered["sha256"] != stored["sha256"]
        else:
            # Each side's stored blocks, and the totals: sorted rows, one JSON array a line.
            def digest(rows: list[list[Any]]) -> tuple[str, str]:
                text_ = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in sorted(rows))
                return text_, hashlib.sha256(text_.encode()).hexdigest()

            for side, kept in stored["snapshot_blocks"].items():
                assert digest(kept["rows"]) == (kept["digest_input"], kept["sha256"])
                assert kept["sha256"] == detail["stored_blocks_sha256"][side]
                assert len(kept["rows"]) == detail["stored_blocks"][side]
            totals = stored["snapshot_totals"]
            assert digest(totals["rows"]) == (totals["digest_input"], totals["sha256"])
            assert totals["sha256"] == detail["totals_sha256"]
            blocks, sums = tampered
            assert digest(blocks["rows"])[1] == blocks["sha256"]
            assert blocks["sha256"] != detail["stored_blocks_sha256"][blocks["side"]]
            assert digest(sums["rows"])[1] == sums["sha256"] != detail["totals_sha256"]
    assert previous.hex() == doc["head"]["head_hash"]


# -- online: what the feed serves against the log -----------------------------------------------


def _flip_text(data: bytes, inside: bytes) -> bytes:
    """``data`` with one byte of its first ``inside`` changed (the bytes stay parseable)."""
    at = data.index(inside) + len(inside) - 1
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_online_verify_compares_the_served_feed(database: Database, pki: PKIDir) -> None:
    """`yrdgw audit verify` online: every record the feed serves, and its envelope, hash to what
    the log committed to; a byte changed in the database is named."""
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url="sqlite://",
        cert_dir=pki.root,
        metrics_listen="127.0.0.1:0",
        shutdown_grace_s=1.0,
        log_format="json",
        log_level="warning",
    )
    server = GatewayServer(settings, db=database)
    target = f"127.0.0.1:{server.start()}"
    clients = [GatewayClient(target, pki, region=r, role=Role.REGISTRY) for r in DELTA_REGIONS[:2]]
    try:
        for c in clients:
            assert all(r.accepted for r in c.publish(sample_documents(c.region)))
        reader = clients[1]
        result, served = served_records(reader, verify_remote_log(reader))
        assert result.ok and served == 6
        with database.transaction() as s:
            record = s.get(RecordRow, 2)
            assert record is not None
            body = record.body
            record.body = _flip_text(body, record.name.encode())
        result, served = served_records(reader, verify_remote_log(reader))
        assert (result.ok, result.table, result.key, served) == (False, "records", "id=2", 1)
        assert "record_sha256" in result.problem
        with database.transaction() as s:
            record = s.get(RecordRow, 2)
            assert record is not None
            record.body = body
            envelope = s.get(EnvelopeRow, record.envelope_id)
            assert envelope is not None
            envelope.payload = _flip_text(envelope.payload, b"2024")
        result, served = served_records(reader, verify_remote_log(reader))
        assert (result.ok, result.key, served) == (False, "id=2", 1)
        assert "envelope_hash" in result.problem
    finally:
        for c in clients:
            c.close()
        server.stop(grace=1.0)
