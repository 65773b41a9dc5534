"""Signed record exchange over real mTLS, on SQLite and on PostgreSQL: publish, subscribe, resume,
and every refusal with its reason and nothing stored."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable

import pytest
from yrd.interop.v1 import envelope_pb2, registry_service_pb2

from gateway.client import EnvelopeSigner, GatewayClient, envelope_signature_ok
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, load_signing_key, load_signing_public_key
from gateway.server import GatewayServer
from tests.integration.conftest import counts, publish_samples

REGIONS = ("310000", "320000", "330000", "340000")
TOTAL_SAMPLE_RECORDS = 3 * 3 + 6  # Anhui's CSV files carry two rows each


def test_samples_published_and_every_subscriber_gets_them(
    server: GatewayServer, client_for: Callable[..., GatewayClient], pki: PKIDir
) -> None:
    publish_samples(client_for)
    assert counts(server.db)["records"] == TOTAL_SAMPLE_RECORDS
    assert counts(server.db)["unit_blocks"] == 5  # one block per issuance
    public_keys = {k.key_id: k.public_key for k in client_for("310000").list_signing_keys()}
    for region in REGIONS:
        events = list(client_for(region).subscribe(native=True))
        assert len(events) == TOTAL_SAMPLE_RECORDS
        assert {e.record.WhichOneof("kind") for e in events} == {
            "methodology",
            "project",
            "issuance",
        }
        for event in events:
            # Every subscriber checks the origin's signature itself, over the bytes as sent.
            assert envelope_signature_ok(event.envelope, public_keys[event.envelope.key_id])
            origin = event.record.WhichOneof("kind")
            assert origin is not None
            assert event.native_payload or event.native_unavailable_reason
        own = [
            e
            for e in events
            if getattr(e.record, e.record.WhichOneof("kind") or "").region == region
        ]
        assert len(own) == (6 if region == "340000" else 3)
    # Shanghai's issuance: 392.700 t on kilogram serials 1,000,001..1,392,700.
    sh = client_for("320000")
    issuance = sh.call(
        sh.registry.GetRecord,
        registry_service_pb2.GetRecordRequest(name="regions/310000/issuances/SHCI-I-2025-000045"),
    ).record.issuance
    assert issuance.quantity_grams == 392_700_000
    assert (issuance.serials.start, issuance.serials.end) == (1_000_001_000, 1_392_700_999)
    # The Shanghai registry's own key really signed it.
    sh_public = load_signing_public_key(pki.registry("310000").signing_public_key)
    envelope = sh.call(
        sh.registry.GetRecord,
        registry_service_pb2.GetRecordRequest(name="regions/310000/issuances/SHCI-I-2025-000045"),
    ).envelope
    assert envelope_signature_ok(envelope, sh_public)


def test_resume_from_cursor_loses_nothing_and_repeats_nothing(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    reader = client_for("330000")
    first = []
    for event in reader.subscribe(batch_size=4):
        first.append(event)
        if len(first) == 6:
            break  # the subscriber disconnects mid-stream
    rest = list(reader.subscribe(cursor=first[-1].cursor, batch_size=4))
    everything = [e.cursor for e in first + rest]
    assert len(everything) == TOTAL_SAMPLE_RECORDS
    assert len(set(everything)) == TOTAL_SAMPLE_RECORDS
    assert [int(c) for c in everything] == sorted(int(c) for c in everything)


def test_follow_delivers_records_accepted_later(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    reader = client_for("340000")
    got: list[registry_service_pb2.FeedEvent] = []
    done = threading.Event()

    def follow() -> None:
        for event in reader.subscribe(follow=True, timeout=30):
            got.append(event)
            if len(got) == 3:
                done.set()
                return

    thread = threading.Thread(target=follow)
    thread.start()
    assert client_for("310000").publish(sample_documents("310000"))[2].accepted
    assert done.wait(15)
    thread.join(5)
    assert [e.record.WhichOneof("kind") for e in got] == ["methodology", "project", "issuance"]


def test_stream_continues_after_a_refused_envelope(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    client = client_for("310000")
    docs = sample_documents("310000")
    broken = (docs[0][0], b'{"record_type": "methodology"}')
    results = client.publish([docs[0], broken, docs[1], docs[2]])
    assert [r.accepted for r in results] == [True, False, True, True]
    assert results[1].reason == "NATIVE_RECORD_INVALID"
    assert "methodology_no" in results[1].field_errors


def _sh_json(kind: str, **changes: object) -> bytes:
    docs = dict(
        zip(("methodology", "project", "issuance"), sample_documents("310000"), strict=True)
    )
    body = json.loads(docs[kind][1])
    body.update(changes)
    return json.dumps(body, ensure_ascii=False).encode()


SH_CT = "application/vnd.yrd.310000+json"


def _signer(pki: PKIDir, region: str, client: GatewayClient) -> EnvelopeSigner:
    signer = EnvelopeSigner(load_signing_key(pki.registry(region).signing_key))
    head = next(k for k in client.list_signing_keys(region) if k.key_id == signer.key_id)
    signer.rewind(head.last_sequence, head.last_envelope_hash)
    return signer


def _send(
    client: GatewayClient, envelope: envelope_pb2.SignedEnvelope
) -> registry_service_pb2.EnvelopeResult:
    return client.call(
        client.registry.PublishEnvelope,
        registry_service_pb2.PublishEnvelopeRequest(envelope=envelope),
    ).result


def _tamper_signature(env: envelope_pb2.SignedEnvelope) -> None:
    env.signature = bytes([env.signature[0] ^ 1]) + env.signature[1:]


def _tamper_payload(env: envelope_pb2.SignedEnvelope) -> None:
    env.payload = env.payload.replace(b"392.700", b"393.700")


REFUSALS: list[
    tuple[
        str,
        str,
        Callable[[PKIDir, Callable[..., GatewayClient]], registry_service_pb2.EnvelopeResult],
    ]
] = []


def refusal(reason: str) -> Callable[[Callable[..., registry_service_pb2.EnvelopeResult]], None]:
    def register(fn: Callable[..., registry_service_pb2.EnvelopeResult]) -> None:
        REFUSALS.append((fn.__name__, reason, fn))

    return register


@refusal("SIGNATURE_INVALID")
def bad_signature(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    env = _signer(pki, "310000", client).sign(
        SH_CT,
        _sh_json(
            "issuance",
            issuance_no="SHCI-I-2025-000099",
            serial_start=2000001,
            serial_end=2000010,
            reduction_tco2e="0.010",
        ),
    )
    _tamper_signature(env)
    return _send(client, env)


@refusal("SIGNATURE_INVALID")
def payload_changed_after_signing(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    env = _signer(pki, "310000", client).sign(
        SH_CT,
        _sh_json(
            "issuance", issuance_no="SHCI-I-2025-000098", serial_start=3000001, serial_end=3392700
        ),
    )
    _tamper_payload(env)
    return _send(client, env)


@refusal("SEQUENCE_REUSED")
def sequence_reused(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    # Another envelope at a sequence taken (the signer's first): a fork, refused as before.
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    signer.rewind(0, bytes(32))
    return _send(client, signer.sign(SH_CT, _sh_json("methodology", version="2.0")))


@refusal("SIGN_TIME_OUT_OF_RANGE")
def signed_in_2100(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    when = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    return _send(client, signer.sign(SH_CT, _sh_json("methodology", version="2.0"), now=when))


@refusal("SIGN_TIME_OUT_OF_RANGE")
def signed_an_hour_ago(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return _send(client, signer.sign(SH_CT, _sh_json("methodology", version="2.0"), now=when))


def test_a_replayed_envelope_gets_its_first_answer(
    server: GatewayServer, client_for: Callable[..., GatewayClient], pki: PKIDir
) -> None:
    """The very same envelope sent again, alone or in a stream with others, long after: the
    answer it got the first time (accepted, the same record names), nothing stored again —
    and no sign_time refusal, since it takes no new place in the chain."""
    publish_samples(client_for)
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    first_env = signer.sign(SH_CT, _sh_json("methodology", version="2.0"))
    first = _send(client, first_env)
    assert first.accepted, first.message
    before = counts(server.db)
    assert _send(client, first_env) == first
    # In a stream, followed by the next envelope of the chain: the replay answered as the
    # first time, the next one accepted.
    nxt = signer.sign(SH_CT, _sh_json("methodology", version="4.0"))
    answers = [
        r
        for response in client.registry.Publish(
            iter([registry_service_pb2.PublishRequest(envelopes=[first_env, nxt])])
        )
        for r in response.results
    ]
    assert answers[0] == first
    assert answers[1].accepted, answers[1].message
    after = counts(server.db)
    assert after == {
        name: before[name] + (1 if name in ("envelopes", "records", "audit_entries") else 0)
        for name in before
    }
    # An envelope taken by the chain but sent now with another sign_time is another envelope
    # (another hash): a fork, not a replay.
    signer.rewind(first_env.sequence - 1, first_env.previous_hash)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    other = signer.sign(SH_CT, first_env.payload, now=later)
    assert other.sign_time != first_env.sign_time
    assert _send(client, other).reason == "SEQUENCE_REUSED"


@refusal("SEQUENCE_GAP")
def sequence_gap(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    signer.sign(SH_CT, b"never sent")
    return _send(client, signer.sign(SH_CT, _sh_json("methodology", version="2.0")))


@refusal("PREVIOUS_HASH_MISMATCH")
def fork(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    client = client_for("310000")
    signer = _signer(pki, "310000", client)
    signer.rewind(signer.sequence, b"\x07" * 32)
    return _send(client, signer.sign(SH_CT, _sh_json("methodology", version="2.0")))


@refusal("SIGNING_KEY_WRONG_REGION")
def jiangsu_cert_with_shanghai_key(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh, js = client_for("310000"), client_for("320000")
    env = _signer(pki, "310000", sh).sign(SH_CT, _sh_json("methodology", version="2.0"))
    return _send(js, env)


@refusal("CONTENT_TYPE_WRONG_REGION")
def shanghai_key_publishing_jiangsu_record(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    ct, xml = sample_documents("320000")[0]
    return _send(sh, _signer(pki, "310000", sh).sign(ct, xml))


@refusal("SERIALS_OVERLAP")
def overlapping_serials(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json(
        "issuance",
        issuance_no="SHCI-I-2025-000046",
        serial_start=1392700,
        serial_end=1392709,
        reduction_tco2e="0.010",
    )
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("PROJECT_UNKNOWN")
def issuance_for_unknown_project(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json(
        "issuance",
        issuance_no="SHCI-I-2025-000047",
        project_no="SHCI-P-2024-999999",
        serial_start=5000001,
        serial_end=5000010,
        reduction_tco2e="0.010",
    )
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("METHODOLOGY_UNKNOWN")
def project_with_unknown_methodology(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json("project", project_no="SHCI-P-2024-000124", methodology_no="SHCI-M-PV-2024-09")
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("CAPACITY_EXCEEDS_METHODOLOGY")
def capacity_above_maximum(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json("project", project_no="SHCI-P-2024-000125", capacity_mw="1.000001")
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("MONITORING_OUTSIDE_CREDITING")
def monitoring_before_crediting(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json(
        "issuance",
        issuance_no="SHCI-I-2025-000048",
        monitoring_start="2023-01-01",
        serial_start=6000001,
        serial_end=6000010,
        reduction_tco2e="0.010",
    )
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("ISSUANCE_EXISTS")
def issuance_id_reused(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json("issuance", serial_start=7000001, serial_end=7000010, reduction_tco2e="0.010")
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("NATIVE_RECORD_INVALID")
def impossible_quantity(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    doc = _sh_json(
        "issuance",
        issuance_no="SHCI-I-2025-000049",
        reduction_tco2e="0.0000005",
        serial_start=8000001,
        serial_end=8000001,
    )
    return _send(sh, _signer(pki, "310000", sh).sign(SH_CT, doc))


@refusal("SIGNING_KEY_REVOKED")
def revoked_key(
    pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> registry_service_pb2.EnvelopeResult:
    sh = client_for("310000")
    signer = _signer(pki, "310000", sh)
    admin = client_for("310000", Role.ADMIN, "admin-a")
    admin.revoke_signing_key(signer.key_id, "compromised")
    return _send(sh, signer.sign(SH_CT, _sh_json("methodology", version="2.0")))


@pytest.mark.parametrize(("name", "reason", "attempt"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_has_reason_and_stores_nothing(
    name: str,
    reason: str,
    attempt: Callable[[PKIDir, Callable[..., GatewayClient]], registry_service_pb2.EnvelopeResult],
    server: GatewayServer,
    client_for: Callable[..., GatewayClient],
    pki: PKIDir,
) -> None:
    publish_samples(client_for)
    if name == "revoked_key":
        pass  # the revocation itself is an accepted (audited) change, made inside the attempt
    before = counts(server.db)
    result = attempt(pki, client_for)
    after = counts(server.db)
    assert not result.accepted
    assert result.reason == reason, result.message
    if name == "revoked_key":
        assert after == {**before, "audit_entries": before["audit_entries"] + 1}
    else:
        assert after == before
    # The gateway still accepts the next correct envelope from the same signer.
    if name not in ("revoked_key",):
        sh = client_for("310000")
        sh.sync_signer()
        ok = sh.publish([(SH_CT, _sh_json("methodology", version="3.0"))])
        assert ok[0].accepted, ok[0].message
