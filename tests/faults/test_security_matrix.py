"""The security matrix: one parametrised test over real mTLS. Every row is an attack or a mistake
that must be refused with a precise status (and its ErrorInfo reason, where the gateway answers
with one) and must change nothing: every table's rows and the audit head are the same after.

One gateway serves the whole module; the setup it needs (records, a pending and a completed
transfer, a pending recognition, a revoked signing key, a revoked certificate on the CRL the
gateway loads at start) is done before any row runs, and no row changes anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from yrd.interop.v1 import (
    envelope_pb2,
    recognition_pb2,
    recognition_service_pb2,
    records_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
    transfer_pb2,
    transfer_service_pb2,
    transfer_service_pb2_grpc,
)

from gateway.client import EnvelopeSigner, GatewayClient
from gateway.config import GatewaySettings
from gateway.contract import ANSWER_TYPE, COMPLETED, PROPOSAL_TYPE, VERDICT_TYPE, answer_payload
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init, issue, load_signing_key, revoke
from gateway.server import GatewayServer
from tests.faults.support import (
    Outcome,
    expired_identity,
    foreign_pki,
    identity_channel,
    outcome_of,
    raw_channel,
    sibling_pki,
    snapshot,
)
from tests.integration.conftest import publish_samples

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"
MAX_CONCURRENT_RPCS = 8
FLOOD_BURST, FLOOD_ROUNDS = 20, 3
FLOOD_STREAMS = 4 * FLOOD_BURST * FLOOD_ROUNDS


@dataclass
class Federation:
    """The module's gateway, its PKI, and what the setup left for the rows to attack."""

    server: GatewayServer
    pki: PKIDir
    scratch: Path
    clients: dict[tuple[str, Role, str | None], GatewayClient] = field(default_factory=dict)
    pending_transfer: str = ""
    accept_envelope: envelope_pb2.SignedEnvelope = field(
        default_factory=envelope_pb2.SignedEnvelope
    )
    pending_recognition: str = ""
    revoked_certificate: PKIDir | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def client(
        self, region: str, role: Role = Role.REGISTRY, name: str | None = None
    ) -> GatewayClient:
        key = (region, role, name)
        if key not in self.clients:
            self.clients[key] = GatewayClient(
                f"127.0.0.1:{self.port}", self.pki, region=region, role=role, name=name
            )
        return self.clients[key]

    def signer(
        self, region: str, role: Role = Role.REGISTRY, name: str | None = None
    ) -> EnvelopeSigner:
        """A signer of that identity's key, at the chain head the gateway holds for it."""
        files = self.pki.files(role, region, name)
        signer = EnvelopeSigner(load_signing_key(files.signing_key))
        (key,) = [
            k
            for k in self.client(SH).list_signing_keys(region, include_revoked=True)
            if k.key_id == signer.key_id
        ]
        signer.rewind(key.last_sequence, key.last_envelope_hash)
        return signer


def _proposal(transfer_id: str, destination: str, origin: str, start: int, end: int) -> bytes:
    return transfer_service_pb2.TransferProposal(
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        transfer_id=transfer_id,
        destination_region=destination,
        units=transfer_pb2.UnitSelection(
            ranges=transfer_pb2.SerialRanges(
                origin_region=origin, ranges=[records_pb2.SerialRange(start=start, end=end)]
            )
        ),
    ).SerializeToString()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("matrix")
    pki = PKIDir(root / "pki")
    init(pki)
    # A second certificate of the Shanghai registry, revoked on the CRL before the gateway starts:
    # the gateway loads the CRL at start.
    revoked_dir = sibling_pki(pki, root / "revoked")
    revoke(pki, issue(revoked_dir, Role.REGISTRY, SH).cert)
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{root / 'gateway.sqlite3'}",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        log_format="json",
        recognition_enforced=False,
        max_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        shutdown_grace_s=1.0,
    )
    server = GatewayServer(settings)
    server.start()
    fed = Federation(server, pki, root, revoked_certificate=revoked_dir)
    try:
        publish_samples(fed.client)
        ah, sh = fed.client(AH), fed.client(SH)
        fed.pending_transfer = ah.propose_transfer(
            "matrix-pending", SH, origin=AH, ranges=[(1_000, 1_999)]
        ).name
        done = ah.propose_transfer("matrix-done", SH, origin=AH, ranges=[(2_000, 2_999)])
        # Shanghai accepts with an envelope of its own making, kept for the replay row.
        sh.sync_signer()
        fed.accept_envelope = sh.signer.sign(ANSWER_TYPE, answer_payload(done.name, COMPLETED))
        sh.call(
            sh.transfers.AcceptTransfer,
            transfer_service_pb2.AcceptTransferRequest(envelope=fed.accept_envelope),
        )
        (rec,) = ah.request_recognition(AH_PV, version="1", regions=[JS])
        fed.pending_recognition = rec.name
        # Zhejiang's administrator revokes the Zhejiang registry's signing key; its certificate
        # stays valid.
        zj_key = fed.signer(ZJ).key_id
        fed.client(ZJ, Role.ADMIN, "admin-a").revoke_signing_key(zj_key, "key compromised")
        yield fed
    finally:
        for client in fed.clients.values():
            client.close()
        server.stop(grace=0.5)


# -- the rows -----------------------------------------------------------------------------------

Row = Callable[[Federation], Outcome]


def _propose_over(channel: grpc.Channel, envelope: envelope_pb2.SignedEnvelope) -> Outcome:
    stub = transfer_service_pb2_grpc.TransferServiceStub(channel)
    request = transfer_service_pb2.ProposeTransferRequest(envelope=envelope)
    outcome, _ = outcome_of(lambda: stub.ProposeTransfer(request, timeout=10))
    return outcome


def _ah_proposal(
    fed: Federation, transfer_id: str = "matrix-attack"
) -> envelope_pb2.SignedEnvelope:
    """A well-formed proposal of Anhui's own units, signed by Anhui's key at its chain head."""
    return fed.signer(AH).sign(PROPOSAL_TYPE, _proposal(transfer_id, SH, AH, 10_000, 10_999))


def no_client_certificate(fed: Federation) -> Outcome:
    creds = grpc.ssl_channel_credentials(fed.pki.ca_cert.read_bytes())
    with raw_channel(fed.port, creds) as channel:
        return _propose_over(channel, _ah_proposal(fed))


def certificate_of_a_foreign_ca(fed: Federation) -> Outcome:
    foreign = foreign_pki(fed.scratch / "foreign", regions=(AH,))
    # The caller trusts the real gateway but presents a certificate the federation never signed.
    files = foreign.registry(AH)
    creds = grpc.ssl_channel_credentials(
        fed.pki.ca_cert.read_bytes(), files.key.read_bytes(), files.cert.read_bytes()
    )
    with raw_channel(fed.port, creds) as channel:
        return _propose_over(channel, _ah_proposal(fed))


def expired_certificate(fed: Federation) -> Outcome:
    expired = expired_identity(fed.pki, fed.scratch / "expired", region=AH)
    with identity_channel(fed.port, expired, expired.registry(AH)) as channel:
        return _propose_over(channel, _ah_proposal(fed))


def revoked_certificate(fed: Federation) -> Outcome:
    revoked = fed.revoked_certificate
    assert revoked is not None
    with identity_channel(fed.port, revoked, revoked.registry(SH)) as channel:
        return _propose_over(
            channel, fed.signer(SH).sign(PROPOSAL_TYPE, _proposal("x", AH, SH, 1, 1))
        )


def registry_signing_for_another_region(fed: Federation) -> Outcome:
    # Jiangsu's certificate, carrying an envelope signed with Shanghai's key over Shanghai's units.
    envelope = fed.signer(SH).sign(
        PROPOSAL_TYPE, _proposal("js-as-sh", JS, SH, 1_000_001_000, 1_000_001_999)
    )
    with identity_channel(fed.port, fed.pki, fed.pki.registry(JS)) as channel:
        return _propose_over(channel, envelope)


def registry_accepting_for_another_region(fed: Federation) -> Outcome:
    js = fed.client(JS)
    outcome, _ = outcome_of(lambda: js.accept_transfer(fed.pending_transfer))
    return outcome


def registry_calling_an_admin_rpc(fed: Federation) -> Outcome:
    sh = fed.client(SH)
    outcome, _ = outcome_of(lambda: sh.approve_recognition(fed.pending_recognition, "ok"))
    return outcome


def registry_registering_a_key(fed: Federation) -> Outcome:
    sh = fed.client(SH)
    outcome, _ = outcome_of(lambda: sh.register_signing_key("registry", b"\x01" * 32))
    return outcome


def admin_of_one_region_deciding_for_another(fed: Federation) -> Outcome:
    # The recognition asks Jiangsu; Zhejiang's administrator decides.
    zj_admin = fed.client(ZJ, Role.ADMIN, "admin-a")
    outcome, _ = outcome_of(lambda: zj_admin.approve_recognition(fed.pending_recognition, "mine?"))
    return outcome


def admin_of_one_region_revoking_another_regions_key(fed: Federation) -> Outcome:
    ah_admin = fed.client(AH, Role.ADMIN, "admin-a")
    sh_key = fed.signer(SH).key_id
    outcome, _ = outcome_of(lambda: ah_admin.revoke_signing_key(sh_key, "not mine to revoke"))
    return outcome


def valid_certificate_revoked_signing_key(fed: Federation) -> Outcome:
    envelope = fed.signer(ZJ).sign(PROPOSAL_TYPE, _proposal("zj-1", SH, ZJ, 1, 1_000))
    with identity_channel(fed.port, fed.pki, fed.pki.registry(ZJ)) as channel:
        return _propose_over(channel, envelope)


def replayed_record_envelope(fed: Federation) -> Outcome:
    """An accepted record's envelope, taken from the feed and published again: answered as the
    first time (accepted, the same record), and nothing changes."""
    sh = fed.client(SH)
    first = next(sh.subscribe(regions=[SH]))
    stub = registry_service_pb2_grpc.RegistryServiceStub(sh.channel)
    outcome, reply = outcome_of(
        lambda: stub.PublishEnvelope(
            registry_service_pb2.PublishEnvelopeRequest(envelope=first.envelope), timeout=10
        )
    )
    if outcome.code is not grpc.StatusCode.OK:
        return outcome
    assert reply.result.accepted, reply.result.reason
    kind = first.record.WhichOneof("kind")  # the record it carried is named again
    assert kind is not None
    names = list(reply.result.record_names)
    assert names[first.envelope_record_index] == getattr(first.record, kind).name
    return Outcome(grpc.StatusCode.OK, "")


def replayed_answer_on_another_rpc(fed: Federation) -> Outcome:
    """Shanghai's signed acceptance of a completed transfer, replayed as a rejection: the
    signed decision is not the RPC's."""
    sh = fed.client(SH)
    request = transfer_service_pb2.RejectTransferRequest(envelope=fed.accept_envelope)
    outcome, _ = outcome_of(lambda: sh.transfers.RejectTransfer(request, timeout=10))
    return outcome


def approval_presented_as_a_rejection(fed: Federation) -> Outcome:
    """A Jiangsu administrator's approval (signed, never sent) presented to RejectRecognition."""
    admin = fed.client(JS, Role.ADMIN, "admin-a")
    verdict = recognition_service_pb2.RecognitionVerdict(
        recognition=fed.pending_recognition, verdict=recognition_pb2.VERDICT_APPROVE, comment="ok"
    )
    envelope = fed.signer(JS, Role.ADMIN, "admin-a").sign(VERDICT_TYPE, verdict.SerializeToString())
    request = recognition_service_pb2.RejectRecognitionRequest(envelope=envelope)
    outcome, _ = outcome_of(lambda: admin.recognition.RejectRecognition(request, timeout=10))
    return outcome


def signature_over_mutated_bytes(fed: Federation) -> Outcome:
    envelope = _ah_proposal(fed, "mutated")
    # One serial more than was signed for.
    envelope.payload = _proposal("mutated", SH, AH, 10_000, 11_000)
    with identity_channel(fed.port, fed.pki, fed.pki.registry(AH)) as channel:
        return _propose_over(channel, envelope)


def oversized_message(fed: Federation) -> Outcome:
    envelope = _ah_proposal(fed, "huge")
    envelope.payload = envelope.payload + b"\x00" * fed.server.settings.max_message_bytes
    with identity_channel(
        fed.port, fed.pki, fed.pki.registry(AH), max_send_bytes=64 * 1024 * 1024
    ) as channel:
        return _propose_over(channel, envelope)


def _in_flight(fed: Federation) -> float:
    """The gateway's yrdgw_rpc_in_flight gauge."""
    (metric,) = fed.server.metrics.in_flight.collect()
    return metric.samples[0].value


def flood_of_cancelled_streams(fed: Federation) -> Outcome:
    """Rapid-reset style: streams opened and cancelled at once, over and over, on a few
    connections. The gateway stays within its concurrency limit, lets go of every cancelled
    handler, and serves a normal call afterwards. The row's status is the flood's: every stream
    ends CANCELLED (or RESOURCE_EXHAUSTED, refused at the limit)."""
    peak, stop = 0.0, threading.Event()
    codes: dict[grpc.StatusCode, int] = {}
    lock = threading.Lock()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _in_flight(fed))
            time.sleep(0.0005)

    def flood(region: str, rounds: int) -> None:
        files = fed.pki.registry(region)
        with identity_channel(fed.port, fed.pki, files) as channel:
            stub = registry_service_pb2_grpc.RegistryServiceStub(channel)
            # A follower of a region that publishes nothing: its handler waits until cancelled.
            request = registry_service_pb2.SubscribeRequest(regions=["999999"], follow=True)
            for i in range(rounds):
                # A burst of streams opened on one connection, then all reset.
                calls = [stub.Subscribe(request, timeout=30) for _ in range(FLOOD_BURST)]
                if i == 0:
                    # The first burst waits for its handlers to run, so the flood cancels running
                    # handlers however slow the machine (the rest are reset at once or soon after).
                    deadline = time.monotonic() + 10
                    while _in_flight(fed) == 0 and time.monotonic() < deadline:
                        time.sleep(0.001)
                time.sleep(0.002 * (i % 3))
                for call in calls:
                    call.cancel()
                for call in calls:
                    code = call.code()
                    with lock:
                        codes[code] = codes.get(code, 0) + 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [
        threading.Thread(target=flood, args=(region, FLOOD_ROUNDS)) for region in (SH, JS, ZJ, AH)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    # Every cancelled handler lets go of its thread (a follower notices within its poll interval).
    deadline = time.monotonic() + 5
    while _in_flight(fed) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    sampler.join()
    assert _in_flight(fed) == 0, "cancelled handlers still running"
    assert 0 < peak <= MAX_CONCURRENT_RPCS, peak
    assert sum(codes.values()) == FLOOD_STREAMS
    after, _ = outcome_of(lambda: fed.client(SH).list_signing_keys(SH))
    assert after.code is grpc.StatusCode.OK, after
    allowed = {grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    stray = sorted((c for c in codes if c not in allowed), key=lambda c: c.name)
    return Outcome(stray[0] if stray else grpc.StatusCode.CANCELLED)


Code = grpc.StatusCode
MATRIX: list[tuple[Row, Outcome]] = [
    # The TLS handshake fails: no call reaches the gateway, so no ErrorInfo.
    (no_client_certificate, Outcome(Code.UNAVAILABLE)),
    (certificate_of_a_foreign_ca, Outcome(Code.UNAVAILABLE)),
    (expired_certificate, Outcome(Code.UNAVAILABLE)),
    (revoked_certificate, Outcome(Code.UNAUTHENTICATED, "CERTIFICATE_REVOKED")),
    (
        registry_signing_for_another_region,
        Outcome(Code.PERMISSION_DENIED, "SIGNING_KEY_WRONG_REGION"),
    ),
    (
        registry_accepting_for_another_region,
        Outcome(Code.PERMISSION_DENIED, "CALLER_NOT_DESTINATION"),
    ),
    (registry_calling_an_admin_rpc, Outcome(Code.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")),
    (registry_registering_a_key, Outcome(Code.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")),
    (admin_of_one_region_deciding_for_another, Outcome(Code.PERMISSION_DENIED, "WRONG_REGION")),
    (
        admin_of_one_region_revoking_another_regions_key,
        Outcome(Code.PERMISSION_DENIED, "WRONG_REGION"),
    ),
    (
        valid_certificate_revoked_signing_key,
        Outcome(Code.FAILED_PRECONDITION, "SIGNING_KEY_REVOKED"),
    ),
    (replayed_record_envelope, Outcome(Code.OK, "")),
    (
        replayed_answer_on_another_rpc,
        Outcome(Code.INVALID_ARGUMENT, "ANSWER_DECISION_MISMATCH"),
    ),
    (approval_presented_as_a_rejection, Outcome(Code.INVALID_ARGUMENT, "VERDICT_MISMATCH")),
    (signature_over_mutated_bytes, Outcome(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID")),
    # Refused by the transport's message limit before any handler: no ErrorInfo.
    (oversized_message, Outcome(Code.RESOURCE_EXHAUSTED)),
    (flood_of_cancelled_streams, Outcome(Code.CANCELLED)),
]


@pytest.mark.parametrize(("row", "expected"), MATRIX, ids=[row.__name__ for row, _ in MATRIX])
def test_refused_with_its_status_and_nothing_changed(
    federation: Federation, row: Row, expected: Outcome
) -> None:
    before = snapshot(federation.server.db)
    outcome = row(federation)
    after = snapshot(federation.server.db)
    assert outcome == expected, f"{row.__name__}: got {outcome}, expected {expected}"
    assert after == before, f"{row.__name__} changed the database"


def test_every_row_would_have_worked_for_the_rightful_caller(federation: Federation) -> None:
    """The matrix's setup is live: the rightful caller's same kind of request goes through, so
    the refusals above are the gateway's doing, not a broken fixture."""
    ah = federation.client(AH)
    with identity_channel(federation.port, federation.pki, federation.pki.registry(AH)) as channel:
        assert _propose_over(channel, _ah_proposal(federation, "rightful")) == Outcome(
            grpc.StatusCode.OK
        )
    assert ah.get_transfer(f"regions/{AH}/transfers/rightful").state == (
        transfer_pb2.TRANSFER_STATE_PROPOSED
    )
    js_admin = federation.client(JS, Role.ADMIN, "admin-a")
    approved = js_admin.approve_recognition(federation.pending_recognition, "电网因子差异已审阅")
    assert approved.state == recognition_pb2.RECOGNITION_STATE_APPROVED
    sh = federation.client(SH)
    assert sh.accept_transfer(federation.pending_transfer).state == (
        transfer_pb2.TRANSFER_STATE_COMPLETED
    )
