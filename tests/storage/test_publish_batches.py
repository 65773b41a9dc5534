"""Large Publish batches, whose signatures a worker process checks while the batch is parsed and
stored: every refusal inside the batch is the one verifying each envelope in turn gives, on every
backend, with the worker and without it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from yrd.interop.v1 import envelope_pb2

from adapters import default_registry
from gateway.client import EnvelopeSigner
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.audit import AuditReader
from gateway.services.exchange import WORKER_MIN_BATCH, ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.verifier import shared_worker
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    EnvelopeRow,
    IssuanceRow,
    RecordRow,
    SigningKeyRow,
    UnitBlockRow,
)

ZJ = "330000"
ZJ_CT = "application/vnd.yrd.330000+json"
PROJECT_ID = "1626163848812433999"  # the Zhejiang sample project


def _issuance(certification: int, serial_from: int, kilograms: int = 1) -> bytes:
    return json.dumps(
        {
            "successful": True,
            "msg": "",
            "dataType": "issuance",
            "dataInfo": {
                "certificationId": str(1_800_000_000_000_000_000 + certification),
                "projectInfoId": PROJECT_ID,
                "vintageYear": 2024,
                "periodStart": "2024-01-01 00:00:00",
                "periodEnd": "2024-12-31 23:59:59",
                "certifiedKg": f"{kilograms}.000",
                "serialFrom": serial_from,
                "serialTo": serial_from + kilograms * 1000 - 1,
            },
        }
    ).encode()


def _counts(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        return {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (EnvelopeRow, RecordRow, AuditEntryRow, IssuanceRow, UnitBlockRow)
        }


class _Batch:
    """Builds a batch envelope by envelope, with the outcome each one must get."""

    def __init__(self, signer: EnvelopeSigner) -> None:
        self.signer = signer
        self.envelopes: list[envelope_pb2.SignedEnvelope] = []
        self.expected: list[str] = []
        self.head = signer.head()  # the gateway's head for this key, as the batch goes
        self.replays: dict[int, int] = {}
        """Index of each envelope sent again → index of its first sending."""

    def accepted(self, payload: bytes) -> envelope_pb2.SignedEnvelope:
        env = self.signer.sign(ZJ_CT, payload)
        self.envelopes.append(env)
        self.expected.append("ACCEPTED")
        self.head = self.signer.head()
        return env

    def refused(self, reason: str, env: envelope_pb2.SignedEnvelope) -> None:
        self.envelopes.append(env)
        self.expected.append(reason)
        self.signer.rewind(*self.head)  # a refused envelope does not move the chain

    def replayed(self, env: envelope_pb2.SignedEnvelope) -> None:
        """The very same envelope again: answered as the first time, nothing stored again."""
        self.replays[len(self.envelopes)] = self.envelopes.index(env)
        self.envelopes.append(env)
        self.expected.append("ACCEPTED")

    def signed(self, payload: bytes) -> envelope_pb2.SignedEnvelope:
        return self.signer.sign(ZJ_CT, payload)


@pytest.fixture
def exchange_setup(database: Database, pki: PKIDir) -> tuple[Database, EnvelopeSigner]:
    KeyDirectory(database).import_from_pki(pki)
    signer = EnvelopeSigner(load_signing_key(pki.registry(ZJ).signing_key))
    setup = [signer.sign(ct, data) for ct, data in sample_documents(ZJ)[:2]]
    outcomes = ExchangeService(database, default_registry).publish(
        Identity(Role.REGISTRY, ZJ), setup
    )
    assert all(o.accepted for o in outcomes), [o.error for o in outcomes]
    return database, signer


@pytest.mark.parametrize("bad_signature", [False, True], ids=["all-signatures-valid", "one-bad"])
@pytest.mark.parametrize("in_worker", [True, False], ids=["worker", "inline"])
def test_refusals_inside_a_large_batch(
    exchange_setup: tuple[Database, EnvelopeSigner], in_worker: bool, bad_signature: bool
) -> None:
    db, signer = exchange_setup
    b = _Batch(signer)
    for i in range(10):
        b.accepted(_issuance(i, 10_000_000 + i * 1000))
    fifth = b.envelopes[4]
    b.replayed(fifth)
    b.signed(b"never sent")
    b.refused("SEQUENCE_GAP", b.signed(_issuance(99, 90_000_000)))
    signer.rewind(b.head[0], b"\x07" * 32)  # a fork: the next sequence, another predecessor
    b.refused("PREVIOUS_HASH_MISMATCH", b.signed(_issuance(98, 91_000_000)))
    b.accepted(_issuance(10, 10_010_000))
    b.refused("SERIALS_OVERLAP", b.signed(_issuance(11, 10_002_500)))  # inside issuance 2
    b.refused("ISSUANCE_EXISTS", b.signed(_issuance(1, 20_000_000)))
    if bad_signature:
        tampered = b.signed(_issuance(12, 30_000_000))
        tampered.signature = bytes([tampered.signature[0] ^ 1]) + tampered.signature[1:]
        b.refused("SIGNATURE_INVALID", tampered)
    for i in range(13, 13 + WORKER_MIN_BATCH):
        b.accepted(_issuance(i, 10_000_000 + i * 1000))
    # Spans that meet only inside the batch: the earlier one accepted, the later one refused.
    b.accepted(_issuance(200, 50_000_000, kilograms=5))
    b.refused("SERIALS_OVERLAP", b.signed(_issuance(201, 50_004_000)))
    assert len(b.envelopes) >= WORKER_MIN_BATCH

    before = _counts(db)
    exchange = ExchangeService(db, default_registry, verify_in_worker=in_worker)
    outcomes = exchange.publish(Identity(Role.REGISTRY, ZJ), b.envelopes)

    got = [o.error.reason if o.error else "ACCEPTED" for o in outcomes]
    assert got == b.expected
    for again, first in b.replays.items():  # the first answer, not a refusal
        assert outcomes[again].record_names == outcomes[first].record_names
        assert outcomes[again].envelope_hash == outcomes[first].envelope_hash
    accepted = b.expected.count("ACCEPTED") - len(b.replays)
    assert _counts(db) == {
        "envelopes": before["envelopes"] + accepted,
        "records": before["records"] + accepted,
        "audit_entries": before["audit_entries"] + accepted,
        "issuances": before["issuances"] + accepted,
        "unit_blocks": before["unit_blocks"] + accepted,
    }
    check = AuditReader(db).verify()
    assert check.ok, check.problem
    with db.transaction() as s:
        key = s.get(SigningKeyRow, signer.key_id)
        assert key is not None
        assert (key.last_sequence, key.last_hash) == b.head
    if in_worker:
        assert shared_worker().running  # the batch went to the worker


def test_a_batch_continues_the_chain_of_the_one_before(
    exchange_setup: tuple[Database, EnvelopeSigner],
) -> None:
    db, signer = exchange_setup
    exchange = ExchangeService(db, default_registry)
    caller = Identity(Role.REGISTRY, ZJ)
    for first in (0, 100):
        batch = [
            signer.sign(ZJ_CT, _issuance(i, 10_000_000 + i * 1000))
            for i in range(first, first + WORKER_MIN_BATCH)
        ]
        assert all(o.accepted for o in exchange.publish(caller, batch))
    before = _counts(db)
    replayed = exchange.publish(caller, batch[:1])
    # The first answer (the records it carried), from the database; nothing stored again.
    assert [(o.accepted, o.record_names) for o in replayed] == [
        (True, (f"regions/{ZJ}/issuances/{1_800_000_000_000_000_100}",))
    ]
    assert _counts(db) == before
    # Refusals found in the database rather than in the batch: an issuance id and serials
    # accepted by an earlier batch.
    head = signer.head()
    reused_id = signer.sign(ZJ_CT, _issuance(5, 60_000_000))
    signer.rewind(*head)  # refused: the next envelope takes the same place in the chain
    overlapping = signer.sign(ZJ_CT, _issuance(300, 10_000_000 + 5 * 1000 + 500))
    signer.rewind(*head)
    fresh = [
        signer.sign(ZJ_CT, _issuance(i, 10_000_000 + i * 1000))
        for i in range(400, 400 + WORKER_MIN_BATCH)
    ]
    outcomes = exchange.publish(caller, [reused_id, overlapping, *fresh])
    assert [o.error.reason if o.error else "ACCEPTED" for o in outcomes] == [
        "ISSUANCE_EXISTS",
        "SERIALS_OVERLAP",
        *["ACCEPTED"] * WORKER_MIN_BATCH,
    ]
    assert AuditReader(db).verify().ok


def test_the_feed_serves_what_was_published(
    exchange_setup: tuple[Database, EnvelopeSigner],
) -> None:
    db, signer = exchange_setup
    exchange = ExchangeService(db, default_registry)
    batch = [
        signer.sign(ZJ_CT, _issuance(i, 10_000_000 + i * 1000)) for i in range(WORKER_MIN_BATCH)
    ]
    outcomes = exchange.publish(Identity(Role.REGISTRY, ZJ), batch)
    assert all(o.accepted for o in outcomes)
    items = exchange.read_feed(0, limit=1000)
    assert len(items) == 2 + len(batch)  # the methodology and project, then the issuances
    assert [i.position for i in items] == sorted({i.position for i in items})
    for item, env, outcome in zip(items[2:], batch, outcomes, strict=True):
        record = item.record
        assert record.WhichOneof("kind") == "issuance"
        assert [record.issuance.name] == list(outcome.record_names)
        assert record.envelope_hash == outcome.envelope_hash.hex()
        assert item.envelope == env
        assert item.accepted_at.tzinfo is not None
        assert record.accepted_time.ToDatetime(dt.UTC) == item.accepted_at
