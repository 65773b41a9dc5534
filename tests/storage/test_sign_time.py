"""The ``sign_time`` window on every kind of signed request, on every backend: a new envelope
signed further than the skew from the gateway's clock is refused SIGN_TIME_OUT_OF_RANGE and
changes nothing (the chain stays where it was); the window is the service's, passed in at
assembly; a replay is answered as the first time whatever its age."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from yrd.interop.v1 import recognition_service_pb2

from adapters import default_registry
from gateway import errors
from gateway.client import EnvelopeSigner
from gateway.contract import APPLICATION_TYPE
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.recognition import RecognitionService
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow, EnvelopeRow, RecordRow, SigningKeyRow

AH = "340000"
SH = "310000"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def _state(db: Database) -> tuple[int, ...]:
    with db.transaction() as s:
        counts = tuple(
            s.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (EnvelopeRow, RecordRow, AuditEntryRow)
        )
        heads = tuple(
            s.execute(select(SigningKeyRow.last_sequence).order_by(SigningKeyRow.key_id)).scalars()
        )
    return counts + heads


@pytest.fixture
def ah(database: Database, pki: PKIDir) -> EnvelopeSigner:
    KeyDirectory(database).import_from_pki(pki)
    return EnvelopeSigner(load_signing_key(pki.registry(AH).signing_key))


def test_publish_refuses_a_new_envelope_outside_the_skew(
    database: Database, ah: EnvelopeSigner
) -> None:
    now = T0
    exchange = ExchangeService(database, default_registry, clock=lambda: now)
    caller = Identity(Role.REGISTRY, AH)
    documents = sample_documents(AH)
    before = _state(database)
    for off in (dt.timedelta(minutes=10, microseconds=1), -dt.timedelta(minutes=10, seconds=1)):
        head = ah.head()
        (outcome,) = exchange.publish(caller, [ah.sign(*documents[0], now=T0 + off)])
        assert outcome.error is not None and outcome.error.reason == "SIGN_TIME_OUT_OF_RANGE"
        assert outcome.error.metadata["max_skew_seconds"] == "600"
        assert _state(database) == before
        ah.rewind(*head)
    # At the edges of the window: accepted.
    early = ah.sign(*documents[0], now=T0 - dt.timedelta(minutes=10))
    late = ah.sign(*documents[1], now=T0 + dt.timedelta(minutes=10))
    first = exchange.publish(caller, [early, late])
    assert all(o.accepted for o in first), [o.error for o in first]
    # Two hours on: the same envelopes again get their first answers, nothing stored.
    now = T0 + dt.timedelta(hours=2)
    after = _state(database)
    again = exchange.publish(caller, [early, late])
    assert [(o.accepted, o.record_names) for o in again] == [
        (o.accepted, o.record_names) for o in first
    ]
    assert _state(database) == after
    # A service built without a window (the setting is the assembly's) accepts any time.
    free = ExchangeService(database, default_registry, clock=lambda: now, sign_time_skew=None)
    (old,) = free.publish(caller, [ah.sign(*documents[2], now=T0 - dt.timedelta(days=400))])
    assert old.accepted, old.error


def test_a_recognition_request_outside_the_skew_is_refused(
    database: Database, ah: EnvelopeSigner
) -> None:
    caller = Identity(Role.REGISTRY, AH)
    ExchangeService(database, default_registry, clock=lambda: T0).publish(
        caller, [ah.sign(ct, d, now=T0) for ct, d in sample_documents(AH)]
    )
    recognition = RecognitionService(
        database, clock=lambda: T0, sign_time_skew=dt.timedelta(minutes=1)
    )
    body = recognition_service_pb2.RecognitionApplication(
        subject=AH_PV, version="1", recognising_regions=[SH]
    ).SerializeToString()
    before = _state(database)
    head = ah.head()
    with pytest.raises(errors.DomainError) as refused:
        recognition.request(caller, ah.sign(APPLICATION_TYPE, body, now=T0 + dt.timedelta(hours=1)))
    assert refused.value.reason == "SIGN_TIME_OUT_OF_RANGE"
    assert refused.value.metadata["max_skew_seconds"] == "60"
    assert _state(database) == before
    ah.rewind(*head)
    (rec,) = recognition.request(caller, ah.sign(APPLICATION_TYPE, body, now=T0))
    assert rec[0].recognising_region == SH
