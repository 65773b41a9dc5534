"""Duplicate and reorder storms over real mTLS, on SQLite and PostgreSQL.

Every mutating RPC is sent three times with the same bytes, at once, on three connections of its
own, in an order the seed picks: it takes effect exactly once (one envelope in the signer's chain,
the audit entries of one call, the ledger's invariants) and the three answers are the same — and
a fourth, later, is answered the same and changes nothing. The same id with another body is then
refused three times with the same reason and changes nothing.

Publish included (issue 17): an envelope already accepted is answered as the first time
(accepted, the same record names), not refused.

``YRDGW_STORM_SEED`` replays a failing storm (the seed is in every failure message).
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import message as pb_message
from sqlalchemy import select
from yrd.interop.v1 import (
    key_service_pb2,
    recognition_pb2,
    recognition_service_pb2,
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway.client import GatewayClient, error_from_rpc
from gateway.contract import (
    ANSWER_TYPE,
    APPLICATION_TYPE,
    PROPOSAL_TYPE,
    RETIREMENT_TYPE,
    REVOCATION_TYPE,
    VERDICT_TYPE,
)
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import IdentityFiles, PKIDir
from gateway.security.signing import key_id_of
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.models import AuditEntryRow
from tests.faults.support import Outcome, identity_channel, snapshot
from tests.integration.conftest import publish_samples

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"
SEED = int(os.environ.get("YRDGW_STORM_SEED", "20250808"))
COPIES = 3
_SVC = "/yrd.interop.v1."

Answer = tuple[Outcome, str, Any]
"""How one copy ended: outcome, status details, and the decoded response (None on error)."""


@dataclass
class World:
    """The gateway under test and a client per identity."""

    server: GatewayServer
    pki: PKIDir
    client_for: Callable[..., GatewayClient]

    def files(
        self, region: str, role: Role = Role.REGISTRY, name: str | None = None
    ) -> IdentityFiles:
        return self.pki.files(role, region, name)

    def signed(
        self,
        content_type: str,
        body: pb_message.Message,
        region: str,
        role: Role = Role.REGISTRY,
        name: str | None = None,
    ) -> Any:
        """An envelope of body, signed by the identity's key at the gateway's chain head."""
        client = self.client_for(region, role, name)
        client.sync_signer()
        return client.signer.sign(content_type, body.SerializeToString())


def storm(
    world: World,
    files: IdentityFiles,
    method: str,
    request: pb_message.Message,
    response: type[pb_message.Message],
    rng: random.Random,
    *,
    stream: bool = False,
    copies: int = COPIES,
) -> list[Answer]:
    """Send the same request bytes ``copies`` times at once, each on a connection of its own,
    in an order (and with delays) the rng picks; the answers in the order of the copies."""
    data = request.SerializeToString()
    channels = [identity_channel(world.server.port, world.pki, files) for _ in range(copies)]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=10)
    delays = [rng.uniform(0, 0.004) for _ in range(copies)]
    answers: list[Answer | None] = [None] * copies
    start = threading.Barrier(copies)

    def send(i: int) -> None:
        channel = channels[i]
        start.wait()
        threading.Event().wait(delays[i])
        try:
            if stream:
                call = channel.stream_stream(method)
                replies = list(call(iter([data]), timeout=30))
                assert len(replies) == 1
                raw = replies[0]
            else:
                raw = channel.unary_unary(method)(data, timeout=30)
            answers[i] = (Outcome(grpc.StatusCode.OK), "", response.FromString(raw))
        except grpc.RpcError as exc:
            err = error_from_rpc(exc)
            reason = getattr(err, "reason", "")
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = exc.details() if isinstance(exc, grpc.Call) else ""
            answers[i] = (Outcome(code, reason), details or "", None)

    threads = [threading.Thread(target=send, args=(i,)) for i in rng.sample(range(copies), copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for channel in channels:
        channel.close()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def audit_after(world: World, sequence: int) -> list[tuple[str, str]]:
    """(kind, subject) of the audit entries appended after ``sequence``."""
    with world.server.db.transaction() as s:
        return [
            (kind, subject)
            for kind, subject in s.execute(
                select(AuditEntryRow.kind, AuditEntryRow.subject)
                .where(AuditEntryRow.sequence > sequence)
                .order_by(AuditEntryRow.sequence)
            )
        ]


# -- the cases ------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """One storm: who sends what, what one effect looks like, and the same id with another body."""

    files: IdentityFiles
    request: pb_message.Message
    audit: Callable[[pb_message.Message], list[tuple[str, str]]]
    """The audit entries of exactly one effect, given the first answer."""
    variant: Callable[[], pb_message.Message]
    """The same id with another body (signed when called, at the chain head of that moment)."""
    envelopes: int = 1
    """Envelopes one effect adds to the signer's chain."""


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    response: type[pb_message.Message]
    prepare: Callable[[World], Prepared]
    variant_refusal: Outcome
    stream: bool = False
    in_band: bool = False
    """For Publish: the envelope's result is the answer (the call itself succeeds)."""
    tags: Sequence[str] = field(default_factory=tuple)


def _ranges(origin: str, start: int, end: int) -> transfer_pb2.UnitSelection:
    return transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region=origin, ranges=[records_pb2.SerialRange(start=start, end=end)]
        )
    )


def _proposal(
    transfer_id: str, destination: str, start: int, end: int
) -> transfer_service_pb2.TransferProposal:
    return transfer_service_pb2.TransferProposal(
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        transfer_id=transfer_id,
        destination_region=destination,
        units=_ranges(AH, start, end),
    )


def _sh_issuance(issuance_no: str, start: int, end: int) -> bytes:
    _, doc = sample_documents(SH)[2]
    body = json.loads(doc)
    body.update(
        issuance_no=issuance_no,
        serial_start=start,
        serial_end=end,
        reduction_tco2e=f"{(end - start + 1) / 1000:.3f}",
    )
    return json.dumps(body, ensure_ascii=False).encode()


def _sh_issuance_envelope(w: World, issuance_no: str, start: int) -> Any:
    client = w.client_for(SH)
    client.sync_signer()
    ct = sample_documents(SH)[2][0]
    return client.signer.sign(ct, _sh_issuance(issuance_no, start, start + 9))


def prepare_publish(w: World) -> Prepared:
    name = "regions/310000/issuances/SHCI-I-2025-000099"
    env = _sh_issuance_envelope(w, "SHCI-I-2025-000099", 2_000_001)
    return Prepared(
        w.files(SH),
        registry_service_pb2.PublishRequest(envelopes=[env]),
        lambda _: [("issuance.accepted", name)],
        lambda: registry_service_pb2.PublishRequest(
            envelopes=[_sh_issuance_envelope(w, "SHCI-I-2025-000099", 3_000_001)]
        ),
    )


def prepare_publish_envelope(w: World) -> Prepared:
    name = "regions/310000/issuances/SHCI-I-2025-000098"
    env = _sh_issuance_envelope(w, "SHCI-I-2025-000098", 4_000_001)
    return Prepared(
        w.files(SH),
        registry_service_pb2.PublishEnvelopeRequest(envelope=env),
        lambda _: [("issuance.accepted", name)],
        lambda: registry_service_pb2.PublishEnvelopeRequest(
            envelope=_sh_issuance_envelope(w, "SHCI-I-2025-000098", 5_000_001)
        ),
    )


def prepare_propose(w: World) -> Prepared:
    env = w.signed(PROPOSAL_TYPE, _proposal("storm-p", SH, 1_000, 1_999), AH)
    return Prepared(
        w.files(AH),
        transfer_service_pb2.ProposeTransferRequest(envelope=env),
        lambda first: [("transfer.proposed", first.transfer.name)],
        lambda: transfer_service_pb2.ProposeTransferRequest(
            envelope=w.signed(PROPOSAL_TYPE, _proposal("storm-p", SH, 1_000, 2_999), AH)
        ),
    )


def _answer_case(rpc: str, who: str, kind: str, reason: str) -> Callable[[World], Prepared]:
    request_type = getattr(transfer_service_pb2, f"{rpc}TransferRequest")

    def prepare(w: World) -> Prepared:
        t = w.client_for(AH).propose_transfer(
            f"storm-{kind}", SH, origin=AH, ranges=[(1_000, 1_999)]
        )
        decision = getattr(transfer_service_pb2, f"TRANSFER_DECISION_{rpc.upper()}")
        answer = transfer_service_pb2.TransferAnswer(
            transfer=t.name, reason=reason, decision=decision
        )
        other = transfer_service_pb2.TransferAnswer(
            transfer=t.name, reason=reason + " (again)", decision=decision
        )
        return Prepared(
            w.files(who),
            request_type(envelope=w.signed(ANSWER_TYPE, answer, who)),
            lambda _: [(f"transfer.{kind}", t.name)],
            lambda: request_type(envelope=w.signed(ANSWER_TYPE, other, who)),
        )

    return prepare


def prepare_retire(w: World) -> Prepared:
    def order(end: int) -> transfer_service_pb2.RetirementOrder:
        return transfer_service_pb2.RetirementOrder(
            retirement_id="storm-r",
            units=_ranges(AH, 1_000, end),
            purpose=transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
            beneficiary="合肥某科技有限公司",
        )

    return Prepared(
        w.files(AH),
        transfer_service_pb2.RetireRequest(envelope=w.signed(RETIREMENT_TYPE, order(1_999), AH)),
        lambda _: [("units.retired", "regions/340000/retirements/storm-r")],
        lambda: transfer_service_pb2.RetireRequest(
            envelope=w.signed(RETIREMENT_TYPE, order(2_999), AH)
        ),
    )


def _application(vintage_from: int = 0) -> recognition_service_pb2.RecognitionApplication:
    app = recognition_service_pb2.RecognitionApplication(
        subject=AH_PV, version="1", recognising_regions=[SH, JS]
    )
    app.conditions.vintage_from = vintage_from
    return app


def prepare_request(w: World) -> Prepared:
    return Prepared(
        w.files(AH),
        recognition_service_pb2.RequestRecognitionRequest(
            envelope=w.signed(APPLICATION_TYPE, _application(), AH)
        ),
        lambda first: [("recognition.requested", r.name) for r in first.recognitions],
        lambda: recognition_service_pb2.RequestRecognitionRequest(
            envelope=w.signed(APPLICATION_TYPE, _application(vintage_from=2024), AH)
        ),
    )


def _requested(w: World) -> str:
    (rec,) = w.client_for(AH).request_recognition(AH_PV, version="1", regions=[JS])
    return rec.name


def _decision_case(rpc: str, verdict: int, kind: str) -> Callable[[World], Prepared]:
    request_type = getattr(recognition_service_pb2, f"{rpc}RecognitionRequest")

    def prepare(w: World) -> Prepared:
        name = _requested(w)

        def body(comment: str) -> recognition_service_pb2.RecognitionVerdict:
            return recognition_service_pb2.RecognitionVerdict(
                recognition=name,
                verdict=verdict,
                comment=comment,  # type: ignore[arg-type]
            )

        return Prepared(
            w.files(JS, Role.ADMIN, "admin-a"),
            request_type(
                envelope=w.signed(VERDICT_TYPE, body("审阅完毕"), JS, Role.ADMIN, "admin-a")
            ),
            lambda _: [(f"recognition.{kind}", name)],
            lambda: request_type(
                envelope=w.signed(VERDICT_TYPE, body("再次审阅"), JS, Role.ADMIN, "admin-a")
            ),
        )

    return prepare


def prepare_revoke_recognition(w: World) -> Prepared:
    name = _requested(w)
    w.client_for(JS, Role.ADMIN, "admin-a").approve_recognition(name, "同意")

    def body(reason: str) -> recognition_service_pb2.RecognitionRevocation:
        return recognition_service_pb2.RecognitionRevocation(recognition=name, reason=reason)

    return Prepared(
        w.files(JS, Role.ADMIN, "admin-b"),
        recognition_service_pb2.RevokeRecognitionRequest(
            envelope=w.signed(REVOCATION_TYPE, body("方法学撤回"), JS, Role.ADMIN, "admin-b")
        ),
        lambda _: [("recognition.revoked", name)],
        lambda: recognition_service_pb2.RevokeRecognitionRequest(
            envelope=w.signed(REVOCATION_TYPE, body("另一理由"), JS, Role.ADMIN, "admin-b")
        ),
    )


PUBLIC_KEY = bytes(range(32, 64))


def prepare_register_key(w: World) -> Prepared:
    subject = f"regions/{SH}/keys/{key_id_of(PUBLIC_KEY)}"
    return Prepared(
        w.files(SH, Role.ADMIN, "admin-a"),
        key_service_pb2.RegisterSigningKeyRequest(owner="registry", public_key=PUBLIC_KEY),
        lambda _: [("signing_key.registered", subject)],
        lambda: key_service_pb2.RegisterSigningKeyRequest(
            owner="admin/admin-b", public_key=PUBLIC_KEY
        ),
        envelopes=0,
    )


def prepare_revoke_key(w: World) -> Prepared:
    key = w.client_for(SH, Role.ADMIN, "admin-a").register_signing_key("registry", PUBLIC_KEY)
    return Prepared(
        w.files(SH, Role.ADMIN, "admin-b"),
        key_service_pb2.RevokeSigningKeyRequest(key_id=key.key_id, reason="rotated"),
        lambda _: [("signing_key.revoked", f"regions/{SH}/keys/{key.key_id}")],
        lambda: key_service_pb2.RevokeSigningKeyRequest(key_id=key.key_id, reason="compromised"),
        envelopes=0,
    )


Code = grpc.StatusCode
T, R, K = f"{_SVC}TransferService/", f"{_SVC}RecognitionService/", f"{_SVC}KeyService/"
CASES = [
    Case(
        "Publish",
        f"{_SVC}RegistryService/Publish",
        registry_service_pb2.PublishResponse,
        prepare_publish,
        Outcome(Code.OK, "ISSUANCE_EXISTS"),
        stream=True,
        in_band=True,
    ),
    Case(
        "PublishEnvelope",
        f"{_SVC}RegistryService/PublishEnvelope",
        registry_service_pb2.PublishEnvelopeResponse,
        prepare_publish_envelope,
        Outcome(Code.OK, "ISSUANCE_EXISTS"),
        in_band=True,
    ),
    Case(
        "ProposeTransfer",
        f"{T}ProposeTransfer",
        transfer_service_pb2.ProposeTransferResponse,
        prepare_propose,
        Outcome(Code.ALREADY_EXISTS, "TRANSFER_ID_REUSED"),
    ),
    Case(
        "AcceptTransfer",
        f"{T}AcceptTransfer",
        transfer_service_pb2.AcceptTransferResponse,
        _answer_case("Accept", SH, "completed", ""),
        Outcome(Code.FAILED_PRECONDITION, "TRANSFER_NOT_PENDING"),
    ),
    Case(
        "RejectTransfer",
        f"{T}RejectTransfer",
        transfer_service_pb2.RejectTransferResponse,
        _answer_case("Reject", SH, "rejected", "超出额度"),
        Outcome(Code.FAILED_PRECONDITION, "TRANSFER_NOT_PENDING"),
    ),
    Case(
        "CancelTransfer",
        f"{T}CancelTransfer",
        transfer_service_pb2.CancelTransferResponse,
        _answer_case("Cancel", AH, "cancelled", "withdrawn"),
        Outcome(Code.FAILED_PRECONDITION, "TRANSFER_NOT_PENDING"),
    ),
    Case(
        "Retire",
        f"{T}Retire",
        transfer_service_pb2.RetireResponse,
        prepare_retire,
        Outcome(Code.ALREADY_EXISTS, "RETIREMENT_ID_REUSED"),
    ),
    Case(
        "RequestRecognition",
        f"{R}RequestRecognition",
        recognition_service_pb2.RequestRecognitionResponse,
        prepare_request,
        Outcome(Code.ALREADY_EXISTS, "RECOGNITION_EXISTS"),
    ),
    Case(
        "ApproveRecognition",
        f"{R}ApproveRecognition",
        recognition_service_pb2.ApproveRecognitionResponse,
        _decision_case("Approve", recognition_pb2.VERDICT_APPROVE, "approved"),
        Outcome(Code.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"),
    ),
    Case(
        "RejectRecognition",
        f"{R}RejectRecognition",
        recognition_service_pb2.RejectRecognitionResponse,
        _decision_case("Reject", recognition_pb2.VERDICT_REJECT, "rejected"),
        Outcome(Code.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"),
    ),
    Case(
        "RevokeRecognition",
        f"{R}RevokeRecognition",
        recognition_service_pb2.RevokeRecognitionResponse,
        prepare_revoke_recognition,
        Outcome(Code.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"),
    ),
    Case(
        "RegisterSigningKey",
        f"{K}RegisterSigningKey",
        key_service_pb2.RegisterSigningKeyResponse,
        prepare_register_key,
        Outcome(Code.ALREADY_EXISTS, "SIGNING_KEY_EXISTS"),
    ),
    Case(
        "RevokeSigningKey",
        f"{K}RevokeSigningKey",
        key_service_pb2.RevokeSigningKeyResponse,
        prepare_revoke_key,
        Outcome(Code.FAILED_PRECONDITION, "SIGNING_KEY_REVOKED"),
    ),
]


def _publish_results(answer: Answer) -> list[registry_service_pb2.EnvelopeResult]:
    reply = answer[2]
    if isinstance(reply, registry_service_pb2.PublishResponse):
        return list(reply.results)
    return [reply.result]


def _as_outcome(answer: Answer, case: Case) -> Outcome:
    """For Publish, the envelope's result is the answer (the call itself succeeds)."""
    if case.in_band and answer[0].code is Code.OK:
        (result,) = _publish_results(answer)
        return Outcome(Code.OK, "" if result.accepted else result.reason)
    return answer[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_duplicate_storm_takes_effect_once(
    case: Case, server: GatewayServer, pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> None:
    rng = random.Random(f"{SEED}-{case.name}")
    where = f"{case.name}, seed {SEED} (YRDGW_STORM_SEED)"
    world = World(server, pki, client_for)
    publish_samples(client_for)
    prepared = case.prepare(world)
    before = snapshot(server.db)

    answers = storm(
        world, prepared.files, case.method, prepared.request, case.response, rng, stream=case.stream
    )
    outcomes = [_as_outcome(a, case) for a in answers]
    after = snapshot(server.db)
    assert outcomes.count(Outcome(Code.OK)) >= 1, (where, outcomes)
    first = next(a for a, o in zip(answers, outcomes, strict=True) if o == Outcome(Code.OK))
    assert all(a == answers[0] for a in answers), (where, outcomes)
    # Exactly one effect.
    assert audit_after(world, before.audit_head[0]) == prepared.audit(first[2]), where
    grown = after.counts()["envelopes"] - before.counts()["envelopes"]
    assert grown == prepared.envelopes, where
    assert check_invariants(server.db).ok, where

    # A fourth copy, later (a retry after a lost reply): the same answer, nothing changed.
    (again,) = storm(
        world,
        prepared.files,
        case.method,
        prepared.request,
        case.response,
        rng,
        stream=case.stream,
        copies=1,
    )
    assert again == answers[0], where
    assert snapshot(server.db) == after, where

    # The same id with another body: refused every time, the same way, nothing changed.
    variant = prepared.variant()
    refused = storm(
        world, prepared.files, case.method, variant, case.response, rng, stream=case.stream
    )
    assert [_as_outcome(a, case) for a in refused] == [case.variant_refusal] * COPIES, where
    if case.in_band:
        assert len({a[2].SerializeToString() for a in refused}) == 1, where
    else:
        assert len({(a[0], a[1]) for a in refused}) == 1, where
    assert snapshot(server.db) == after, where


def _holdings(world: World) -> dict[str, int]:
    """Active and reserved grams held per region (all origins)."""
    held: dict[str, int] = {}
    for block in world.client_for(SH).holdings():
        if block.state in (
            records_pb2.UNIT_BLOCK_STATE_ACTIVE,
            records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER,
        ):
            size = block.serials.end - block.serials.start + 1
            held[block.holder_region] = held.get(block.holder_region, 0) + size
    return held


def _fire(
    world: World,
    requests: list[tuple[str, IdentityFiles, str, pb_message.Message, type[pb_message.Message]]],
    rng: random.Random,
) -> dict[str, list[Answer]]:
    """Every request ×3, all at once in a shuffled order, each copy on a connection of its own;
    the answers by request key."""
    copies = [
        (key, files, method, request, response)
        for key, files, method, request, response in requests
        for _ in range(COPIES)
    ]
    rng.shuffle(copies)
    answers: dict[str, list[Answer]] = {key: [] for key, *_ in requests}
    lock = threading.Lock()

    def send(
        item: tuple[str, IdentityFiles, str, pb_message.Message, type[pb_message.Message]],
        seed: int,
    ) -> None:
        key, files, method, request, response = item
        (answer,) = storm(world, files, method, request, response, random.Random(seed), copies=1)
        with lock:
            answers[key].append(answer)

    threads = [threading.Thread(target=send, args=(item, rng.randrange(2**32))) for item in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_reorder_storm_across_regions(
    server: GatewayServer, pki: PKIDir, client_for: Callable[..., GatewayClient]
) -> None:
    """Two cycles in which every region proposes a transfer to the next and every destination
    (or source) answers it, each request ×3 and all of a round shuffled together across
    connections: every request takes effect once, and the units held per region are what one
    effect each predicts."""
    rng = random.Random(f"{SEED}-reorder")
    where = f"reorder storm, seed {SEED} (YRDGW_STORM_SEED)"
    world = World(server, pki, client_for)
    publish_samples(client_for)
    regions = (SH, JS, ZJ, AH)
    model = _holdings(world)
    start = snapshot(server.db).audit_head[0]
    expected_audit: list[tuple[str, str]] = []
    for cycle in range(2):
        # Round 1: each region proposes 1,000 g of its first active block to the next region.
        proposals = []
        for i, source in enumerate(regions):
            destination = regions[(i + 1) % len(regions)]
            (block,) = [
                b for b in client_for(source).holdings(source, records_pb2.UNIT_BLOCK_STATE_ACTIVE)
            ][:1]
            body = transfer_service_pb2.TransferProposal(
                purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
                transfer_id=f"reorder-{cycle}-{source}",
                destination_region=destination,
                units=_ranges(block.origin_region, block.serials.start, block.serials.start + 999),
            )
            envelope = world.signed(PROPOSAL_TYPE, body, source)
            proposals.append(
                (
                    source,
                    world.files(source),
                    f"{T}ProposeTransfer",
                    transfer_service_pb2.ProposeTransferRequest(envelope=envelope),
                    transfer_service_pb2.ProposeTransferResponse,
                )
            )
        proposed = _fire(world, proposals, rng)
        # Round 2: a random answer to each, by whoever may give it. A signer's envelopes form a
        # chain the gateway takes in order, so each signer has one in flight at a time: answers
        # go in waves of at most one per signer.
        waves: list[list[tuple[str, str, str, transfer_service_pb2.TransferAnswer]]] = []
        outcomes: dict[str, str] = {}
        for i, source in enumerate(regions):
            replies = proposed[source]
            assert all(r == replies[0] for r in replies), (where, source, [r[0] for r in replies])
            transfer = replies[0][2].transfer
            expected_audit.append(("transfer.proposed", transfer.name))
            destination = regions[(i + 1) % len(regions)]
            rpc, kind = rng.choice(
                [("Accept", "completed"), ("Reject", "rejected"), ("Cancel", "cancelled")]
            )
            who = source if rpc == "Cancel" else destination
            body = transfer_service_pb2.TransferAnswer(
                transfer=transfer.name,
                reason="" if rpc == "Accept" else "storm",
                decision=getattr(transfer_service_pb2, f"TRANSFER_DECISION_{rpc.upper()}"),
            )
            wave = next((w for w in waves if all(x[1] != who for x in w)), None)
            if wave is None:
                wave = []
                waves.append(wave)
            wave.append((transfer.name, who, rpc, body))
            outcomes[transfer.name] = kind
            if kind == "completed":
                model[source] -= transfer.quantity_grams
                model[destination] = model.get(destination, 0) + transfer.quantity_grams
        for wave in waves:
            requests = [
                (
                    name,
                    world.files(who),
                    f"{T}{rpc}Transfer",
                    getattr(transfer_service_pb2, f"{rpc}TransferRequest")(
                        envelope=world.signed(ANSWER_TYPE, body, who)
                    ),
                    getattr(transfer_service_pb2, f"{rpc}TransferResponse"),
                )
                for name, who, rpc, body in wave
            ]
            for name, replies in _fire(world, requests, rng).items():
                assert all(r == replies[0] for r in replies), (where, name, [r[0] for r in replies])
                assert replies[0][0] == Outcome(Code.OK), (where, name, replies[0][:2])
                expected_audit.append((f"transfer.{outcomes[name]}", name))
    assert sorted(audit_after(world, start)) == sorted(expected_audit), where
    assert {r: g for r, g in _holdings(world).items() if g} == {
        r: g for r, g in model.items() if g
    }, where
    assert check_invariants(server.db).ok, where
