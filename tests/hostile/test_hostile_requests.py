"""Every RPC and every signed body type, sent well-formed and correctly signed (the caller's real
key from the test PKI, the next sequence of its chain, a current ``sign_time``, so the envelope
checks pass and the body's own checks are reached) with one field set to a hostile value, against
a real mTLS gateway on SQLite and on PostgreSQL (tests/hostile/generator.py makes the values).

Asserted for every message: the answer is never INTERNAL or UNKNOWN; a refusal leaves the
database digest (tests/digest.py) unchanged, and so does any answer of an RPC that only reads.
The counts of messages tried per RPC are printed (``-s``) and written to
``hostile-counts-{backend}.json`` in the test's temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf.message import Message
from sqlalchemy import create_engine, text
from yrd.interop.v1 import (
    audit_service_pb2,
    duplicate_service_pb2,
    duplicates_pb2,
    envelope_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway.client import EnvelopeSigner, GatewayClient
from gateway.config import GatewaySettings
from gateway.contract import (
    ANSWER_TYPE,
    APPLICATION_TYPE,
    CASE_VERDICT_TYPE,
    PROPOSAL_TYPE,
    RETIREMENT_TYPE,
    REVOCATION_TYPE,
    VERDICT_TYPE,
)
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir
from gateway.security.signing import (
    EnvelopeFields,
    raw_public_key,
    sign,
)
from gateway.server import GatewayServer
from gateway.storage.db import Database, make_engine
from tests.digest import TableDigests, changed, table_digests
from tests.duplicate_docs import documents, identity
from tests.hostile.generator import variants

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"
FULL = os.environ.get("YRDGW_HOSTILE", "") == "full"
"""``make hostile``: every hostile value of every list, not only the first of each kind."""
BROKEN = frozenset({"INTERNAL", "UNKNOWN"})
READS = frozenset(
    {
        "Subscribe",
        "GetRecord",
        "ListRecords",
        "GetTransfer",
        "ListTransfers",
        "ListUnitBlocks",
        "GetRetirement",
        "ListRetirements",
        "GetRecognition",
        "ListRecognitions",
        "CheckRecognized",
        "GetReconciliationReport",
        "ListReconciliationReports",
        "ListSigningKeys",
        "ListAuditEntries",
        "GetSignedTreeHead",
        "GetGatewayInfo",
        "GetDuplicateCase",
        "ListDuplicateCases",
    }
)
"""RPCs that only read: whatever they answer, the database stays as it was."""
SERVICES = {
    "RegistryService": registry_service_pb2,
    "TransferService": transfer_service_pb2,
    "RecognitionService": recognition_service_pb2,
    "ReconciliationService": reconciliation_service_pb2,
    "KeyService": key_service_pb2,
    "AuditService": audit_service_pb2,
    "GatewayInfoService": gateway_info_service_pb2,
    "DuplicateService": duplicate_service_pb2,
}
ALL_METHODS = sorted(
    f"{service.name}/{method.name}"
    for module in SERVICES.values()
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
)
SIGNED_TYPES = {
    PROPOSAL_TYPE,
    ANSWER_TYPE,
    RETIREMENT_TYPE,
    APPLICATION_TYPE,
    VERDICT_TYPE,
    REVOCATION_TYPE,
    CASE_VERDICT_TYPE,
}


# -- the gateway, its database, the callers --------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Database]]:
    """A migrated database of each backend, for the whole module (one gateway per backend)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("hostile") / "gw.sqlite3"
        db = Database.from_url(f"sqlite:///{path}")
        db.upgrade()
        yield "sqlite", db
        db.dispose()
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(make_engine(url, connect_args={"options": f"-csearch_path={schema}"}))
    db.upgrade()
    try:
        yield "postgresql", db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Case:
    """One RPC's well-formed request, sent by ``caller``; ``content_type`` set: its envelope's
    body (``body``) is what the variants change, else the request itself (``messages``: the
    messages of a client stream, changed one at a time)."""

    method: str
    caller: GatewayClient
    messages: list[Message]
    content_type: str = ""
    body: Message | None = None
    wrap: Callable[[envelope_pb2.SignedEnvelope], Message] | None = None
    skip: frozenset[str] = frozenset()


@dataclass
class World:
    server: GatewayServer
    db: Database
    backend: str
    clients: dict[tuple[str, str], GatewayClient]
    cases: list[Case] = field(default_factory=list)


def _active_block(client: GatewayClient, region: str) -> records_pb2.UnitBlock:
    reply = client.transfers.ListUnitBlocks(
        transfer_service_pb2.ListUnitBlocksRequest(
            holder_region=region, origin_region=region, state=records_pb2.UNIT_BLOCK_STATE_ACTIVE
        )
    )
    return max(reply.blocks, key=lambda b: b.serials.end - b.serials.start)


def _methodology(client: GatewayClient, region: str) -> records_pb2.Methodology:
    reply = client.registry.ListRecords(
        registry_service_pb2.ListRecordsRequest(
            region=region, kind=registry_service_pb2.RECORD_KIND_METHODOLOGY
        )
    )
    return reply.records[0].methodology


@pytest.fixture(scope="module")
def world(backend: tuple[str, Database], pki: PKIDir) -> Iterator[World]:
    name, db = backend
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="error",
        recognition_enforced=False,
        scheduler_enabled=False,
    )
    server = GatewayServer(settings, db=db)
    server.start()
    target = f"127.0.0.1:{server.port}"
    clients: dict[tuple[str, str], GatewayClient] = {}

    def client(region: str, admin: str = "") -> GatewayClient:
        if (region, admin) not in clients:
            role = Role.ADMIN if admin else Role.REGISTRY
            clients[(region, admin)] = GatewayClient(
                target, pki, region=region, role=role, name=admin or None
            )
        return clients[(region, admin)]

    for region in (SH, JS, ZJ, AH):
        results = client(region).publish(sample_documents(region))
        assert all(r.accepted for r in results), [r.message for r in results]
    # One plant filed in Shanghai and in Jiangsu (projects of their own, without issuances): the
    # duplicate case the DuplicateService cases read and decide.
    for region, project_id in ((SH, "SHCI-P-2024-000777"), (JS, "JS-XM-2024-0777")):
        twice = documents(region, identity(), project_id=project_id, kinds=("project",))
        results = client(region).publish(twice)
        assert all(r.accepted for r in results), [r.message for r in results]
    w = World(server, db, name, clients)
    _cases(w, client)
    yield w
    for c in clients.values():
        c.close()
    server.stop(grace=0.5)


def _cases(w: World, client: Callable[..., GatewayClient]) -> None:
    sh, js, sh_admin, js_admin = (
        client(SH),
        client(JS),
        client(SH, "admin-a"),
        client(JS, "admin-a"),
    )
    block = _active_block(sh, SH)
    start = block.serials.start
    pending = sh.propose_transfer("hostile-accept", JS, origin=SH, ranges=[(start, start + 999)])
    to_cancel = sh.propose_transfer(
        "hostile-cancel", JS, origin=SH, ranges=[(start + 1000, start + 1999)]
    )
    methodology = _methodology(sh, SH)
    (recognition,) = sh.request_recognition(
        methodology.name, version=methodology.version, regions=[JS]
    )
    throwaway = raw_public_key(ed25519.Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
    spare = sh_admin.register_signing_key("admin/hostile", throwaway)
    now = dt.datetime.now(dt.UTC)
    ranges = transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region=SH,
            ranges=[records_pb2.SerialRange(start=start + 5000, end=start + 5999)],
        )
    )
    quantity = transfer_pb2.UnitSelection(
        quantity=transfer_pb2.QuantityFromProject(
            project=block.project, vintage=block.vintage, quantity_grams=1000
        )
    )
    retired = transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region=SH,
            ranges=[records_pb2.SerialRange(start=start + 8000, end=start + 8999)],
        )
    )
    tonne = transfer_pb2.UnitSelection(
        quantity=transfer_pb2.QuantityFromProject(
            project=block.project, vintage=block.vintage, quantity_grams=1_000_000
        )
    )
    (case,) = sh.list_duplicate_cases()
    ts = transfer_service_pb2
    rs = recognition_service_pb2
    ds = duplicate_service_pb2
    signed: list[tuple[str, GatewayClient, str, Message, Callable[..., Message]]] = [
        *(
            (
                "TransferService/ProposeTransfer",
                sh,
                PROPOSAL_TYPE,
                ts.TransferProposal(
                    transfer_id=f"hostile-{i}",
                    destination_region=JS,
                    units=units,
                    purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
                ),
                lambda env: ts.ProposeTransferRequest(envelope=env),
            )
            for i, units in enumerate((ranges, quantity))
        ),
        (
            "TransferService/AcceptTransfer",
            js,
            ANSWER_TYPE,
            ts.TransferAnswer(transfer=pending.name, decision=ts.TRANSFER_DECISION_ACCEPT),
            lambda env: ts.AcceptTransferRequest(envelope=env),
        ),
        (
            "TransferService/RejectTransfer",
            js,
            ANSWER_TYPE,
            ts.TransferAnswer(
                transfer=pending.name, decision=ts.TRANSFER_DECISION_REJECT, reason="no"
            ),
            lambda env: ts.RejectTransferRequest(envelope=env),
        ),
        (
            "TransferService/CancelTransfer",
            sh,
            ANSWER_TYPE,
            ts.TransferAnswer(
                transfer=to_cancel.name, decision=ts.TRANSFER_DECISION_CANCEL, reason="no"
            ),
            lambda env: ts.CancelTransferRequest(envelope=env),
        ),
        *(
            (
                "TransferService/Retire",
                sh,
                RETIREMENT_TYPE,
                ts.RetirementOrder(
                    retirement_id=f"hostile-{i}",
                    units=units,
                    purpose=purpose,
                    beneficiary="某公司",
                    compliance_year=2025
                    if purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
                    else 0,
                    declared_obligation_grams=10**12
                    if purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
                    else 0,
                ),
                lambda env: ts.RetireRequest(envelope=env),
            )
            for i, (units, purpose) in enumerate(
                (
                    (retired, transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY),
                    (tonne, transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET),
                )
            )
        ),
        (
            "RecognitionService/RequestRecognition",
            sh,
            APPLICATION_TYPE,
            rs.RecognitionApplication(
                subject=block.project,
                recognising_regions=[ZJ],
                conditions=recognition_pb2.RecognitionConditions(
                    vintage_from=2020,
                    vintage_to=2030,
                    ets_adjustment_ratio=recognition_pb2.Fraction(numerator=1, denominator=2),
                    expire_date=records_pb2.CalendarDate(year=now.year + 2, month=1, day=1),
                ),
            ),
            lambda env: rs.RequestRecognitionRequest(envelope=env),
        ),
        (
            "RecognitionService/ApproveRecognition",
            js_admin,
            VERDICT_TYPE,
            rs.RecognitionVerdict(
                recognition=recognition.name, verdict=recognition_pb2.VERDICT_APPROVE, comment="ok"
            ),
            lambda env: rs.ApproveRecognitionRequest(envelope=env),
        ),
        (
            "RecognitionService/RejectRecognition",
            js_admin,
            VERDICT_TYPE,
            rs.RecognitionVerdict(
                recognition=recognition.name, verdict=recognition_pb2.VERDICT_REJECT, comment="no"
            ),
            lambda env: rs.RejectRecognitionRequest(envelope=env),
        ),
        (
            "RecognitionService/RevokeRecognition",
            js_admin,
            REVOCATION_TYPE,
            rs.RecognitionRevocation(recognition=recognition.name, reason="review"),
            lambda env: rs.RevokeRecognitionRequest(envelope=env),
        ),
        (
            "DuplicateService/ResolveDuplicateCase",
            sh_admin,
            CASE_VERDICT_TYPE,
            ds.CaseVerdict(
                duplicate_case=case.name,
                resolution=duplicates_pb2.CASE_RESOLUTION_DUPLICATE,
                standing=case.second.subject,
                comment="同一电站",
            ),
            lambda env: ds.ResolveDuplicateCaseRequest(envelope=env),
        ),
    ]
    for method, caller, content_type, body, wrap in signed:
        w.cases.append(Case(method, caller, [], content_type, body, wrap))
    # Records: the envelope's fields (signed anew) and its payload are what changes.
    document_type = sample_documents(SH)[0][0]
    w.cases.append(
        Case(
            "RegistryService/Publish",
            sh,
            [],
            document_type,
            None,
            lambda env: registry_service_pb2.PublishRequest(envelopes=[env]),
        )
    )
    w.cases.append(
        Case(
            "RegistryService/PublishEnvelope",
            sh,
            [],
            document_type,
            None,
            lambda env: registry_service_pb2.PublishEnvelopeRequest(envelope=env),
        )
    )
    header = reconciliation_service_pb2.SubmitHoldingsRequest()
    header.header.snapshot_time.FromDatetime(now)
    header.header.completed_transfer_ids.append(pending.name)
    batch = reconciliation_service_pb2.SubmitHoldingsRequest()
    batch.blocks.blocks.add(
        origin_region=SH,
        serials=records_pb2.SerialRange(start=block.serials.start, end=block.serials.end),
        state=records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    )
    # Blocks as columns (1.4.0), past the block above so that the three messages agree.
    columns = reconciliation_service_pb2.SubmitHoldingsRequest()
    columns.columns.origin_region = SH
    columns.columns.serial_starts.extend([block.serials.end + 1, block.serials.end + 11])
    columns.columns.serial_ends.extend([block.serials.end + 10, block.serials.end + 20])
    columns.columns.states.extend(
        [records_pb2.UNIT_BLOCK_STATE_ACTIVE, records_pb2.UNIT_BLOCK_STATE_RETIRED]
    )
    rg, tr, rc, ky, au = (
        registry_service_pb2,
        transfer_service_pb2,
        recognition_service_pb2,
        key_service_pb2,
        audit_service_pb2,
    )
    rq = reconciliation_service_pb2
    unsigned: list[tuple[str, GatewayClient, list[Message]]] = [
        (
            "RegistryService/Subscribe",
            sh,
            [rg.SubscribeRequest(cursor="1", regions=[SH], kinds=[rg.RECORD_KIND_PROJECT])],
        ),
        ("RegistryService/GetRecord", sh, [rg.GetRecordRequest(name=methodology.name)]),
        (
            "RegistryService/ListRecords",
            sh,
            [rg.ListRecordsRequest(region=SH, kind=rg.RECORD_KIND_ISSUANCE, page_size=2)],
        ),
        ("TransferService/GetTransfer", sh, [tr.GetTransferRequest(name=pending.name)]),
        (
            "TransferService/ListTransfers",
            sh,
            [
                tr.ListTransfersRequest(
                    source_region=SH,
                    destination_region=JS,
                    state=transfer_pb2.TRANSFER_STATE_PROPOSED,
                    page_size=1,
                )
            ],
        ),
        (
            "TransferService/ListUnitBlocks",
            sh,
            [
                tr.ListUnitBlocksRequest(
                    holder_region=SH,
                    origin_region=SH,
                    state=records_pb2.UNIT_BLOCK_STATE_ACTIVE,
                    page_size=1,
                )
            ],
        ),
        (
            "TransferService/GetRetirement",
            sh,
            # Retired by the signed Retire case (not found before it runs: as hostile a value).
            [tr.GetRetirementRequest(name=f"regions/{SH}/retirements/hostile-0")],
        ),
        (
            "TransferService/ListRetirements",
            sh,
            [
                tr.ListRetirementsRequest(
                    holder_region=SH,
                    purpose=transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
                    compliance_year=2025,
                    page_size=1,
                )
            ],
        ),
        (
            "RecognitionService/GetRecognition",
            sh,
            [rc.GetRecognitionRequest(name=recognition.name)],
        ),
        (
            "RecognitionService/ListRecognitions",
            sh,
            [
                rc.ListRecognitionsRequest(
                    recognising_region=JS,
                    requesting_region=SH,
                    state=recognition_pb2.RECOGNITION_STATE_REQUESTED,
                    page_size=1,
                )
            ],
        ),
        (
            "RecognitionService/CheckRecognized",
            sh,
            [rc.CheckRecognizedRequest(project=block.project, vintage=block.vintage, region=JS)],
        ),
        ("ReconciliationService/SubmitHoldings", sh, [header, batch, columns]),
        (
            "ReconciliationService/RunReconciliation",
            sh_admin,
            [rq.RunReconciliationRequest(region=SH)],
        ),
        (
            "ReconciliationService/GetReconciliationReport",
            sh,
            [rq.GetReconciliationReportRequest(name="reconciliations/1")],
        ),
        (
            "ReconciliationService/ListReconciliationReports",
            sh,
            [rq.ListReconciliationReportsRequest(region=SH, page_size=1)],
        ),
        (
            "KeyService/RegisterSigningKey",
            sh_admin,
            [ky.RegisterSigningKeyRequest(owner="admin/hostile", public_key=throwaway)],
        ),
        (
            "KeyService/RevokeSigningKey",
            sh_admin,
            [ky.RevokeSigningKeyRequest(key_id=spare.key_id, reason="rotated")],
        ),
        (
            "KeyService/ListSigningKeys",
            sh,
            [ky.ListSigningKeysRequest(region=SH, include_revoked=True)],
        ),
        (
            "AuditService/ListAuditEntries",
            sh,
            [au.ListAuditEntriesRequest(start_sequence=1, page_size=2)],
        ),
        ("AuditService/GetSignedTreeHead", sh, [au.GetSignedTreeHeadRequest()]),
        (
            "GatewayInfoService/GetGatewayInfo",
            sh,
            [gateway_info_service_pb2.GetGatewayInfoRequest()],
        ),
        ("DuplicateService/GetDuplicateCase", sh, [ds.GetDuplicateCaseRequest(name=case.name)]),
        (
            "DuplicateService/ListDuplicateCases",
            js,
            [
                ds.ListDuplicateCasesRequest(
                    region=SH,
                    state=duplicates_pb2.DUPLICATE_CASE_STATE_OPEN,
                    strength=duplicates_pb2.MATCH_STRENGTH_CERTAIN,
                    subject=case.first.subject,
                    page_size=1,
                )
            ],
        ),
    ]
    for method, caller, messages in unsigned:
        # A following subscriber would wait for its deadline: ``follow`` is left false.
        w.cases.append(Case(method, caller, messages, skip=frozenset({"follow"})))


# -- sending ---------------------------------------------------------------------------------------


def _signed_envelope(
    key: ed25519.Ed25519PrivateKey, fields: EnvelopeFields
) -> envelope_pb2.SignedEnvelope:
    env = envelope_pb2.SignedEnvelope(
        content_type=fields.content_type,
        payload=fields.payload,
        key_id=fields.key_id,
        sequence=fields.sequence,
        previous_hash=fields.previous_hash,
        signature=sign(key, fields),
    )
    env.sign_time.seconds, env.sign_time.nanos = fields.sign_time_seconds, fields.sign_time_nanos
    return env


def _fields(env: envelope_pb2.SignedEnvelope) -> EnvelopeFields:
    return EnvelopeFields(
        env.content_type,
        env.payload,
        env.key_id,
        env.sequence,
        env.previous_hash,
        env.sign_time.seconds,
        env.sign_time.nanos,
    )


def _call(channel: grpc.Channel, method: str, requests: Sequence[Message]) -> tuple[str, bool]:
    """How the call ended (the status code's name) and whether it took effect: Publish refuses
    envelopes in-band (the call is OK, ``accepted`` false), every other RPC by its status."""
    path = f"/yrd.interop.v1.{method}"
    name = method.split("/")[1]
    payloads = [m.SerializeToString() for m in requests]
    try:
        if name == "Publish":
            replies = list(channel.stream_stream(path)(iter(payloads), timeout=20))
            results = [
                r
                for reply in replies
                for r in registry_service_pb2.PublishResponse.FromString(reply).results
            ]
            return "OK", any(r.accepted for r in results)
        if name == "PublishEnvelope":
            reply = channel.unary_unary(path)(payloads[0], timeout=20)
            return "OK", registry_service_pb2.PublishEnvelopeResponse.FromString(
                reply
            ).result.accepted
        if name == "SubmitHoldings":
            channel.stream_unary(path)(iter(payloads), timeout=20)
        elif name == "Subscribe":
            list(channel.unary_stream(path)(payloads[0], timeout=20))
        else:
            channel.unary_unary(path)(payloads[0], timeout=20)
    except grpc.RpcError as exc:
        if os.environ.get("YRDGW_HOSTILE_DEBUG"):
            print(method, exc.code().name, exc.details())
        return exc.code().name, False
    return "OK", name not in READS


@dataclass
class Tally:
    tried: Counter[str] = field(default_factory=Counter)
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def _send(
    w: World, case: Case, what: str, requests: Sequence[Message], tally: Tally, before: TableDigests
) -> TableDigests:
    """Send, check the answer and the digest; the digest to compare the next call with."""
    code, took = _call(case.caller.channel, case.method, requests)
    if took and os.environ.get("YRDGW_HOSTILE_DEBUG"):
        print("TAKEN", case.method, what)
    tally.tried[case.method] += 1
    tally.codes[case.method][code if code != "OK" or took else "OK (nothing taken)"] += 1
    assert code not in BROKEN, f"{case.method} answered {code} to {what}: {requests}"
    after = table_digests(w.db)
    if not took:
        assert after == before, f"{case.method} ({code}) to {what} changed {changed(before, after)}"
    return after


def _signed_variants(case: Case) -> Iterator[tuple[str, bytes | None, str]]:
    """(what, payload, content type) of a signed case: the body's variants, then as it is (its
    envelope's variants are made by the caller)."""
    if case.body is not None:
        for what, body in variants(case.body, full=FULL):
            yield what, body.SerializeToString(), case.content_type


def _run_signed(w: World, case: Case, tally: Tally, before: TableDigests) -> TableDigests:
    signer = case.caller.signer
    key = signer.private_key
    if case.body is not None:
        base_payload = case.body.SerializeToString()
    else:
        base_payload = sample_documents(SH)[0][1]
    assert case.wrap is not None
    for what, payload, content_type in [
        ("as it is", base_payload, case.content_type),
        *_signed_variants(case),
    ]:
        head = signer.head()
        env = signer.sign(content_type, payload or b"")
        before = _send_signed(w, case, what, case.wrap(env), tally, before, head)
    # The envelope's own fields, each set to a hostile value and signed over: made afresh from
    # the chain's head each time (an earlier variant may have been taken).
    count = len(_envelope_variants(signer, case.content_type, base_payload))
    for i in range(count):
        head = signer.head()
        what, changed_env = _envelope_variants(signer, case.content_type, base_payload)[i]
        try:
            env = _signed_envelope(key, _fields(changed_env))
        except (ValueError, OverflowError, struct.error):
            env = changed_env  # no signing input holds it (negative nanos): sent as it is
        before = _send_signed(w, case, f"envelope.{what}", case.wrap(env), tally, before, head)
    return before


def _envelope_variants(
    signer: EnvelopeSigner, content_type: str, payload: bytes
) -> list[tuple[str, Message]]:
    """The variants of the next envelope of the signer's chain (its head left where it was)."""
    head = signer.head()
    base = signer.sign(content_type, payload)
    signer.rewind(*head)
    return list(variants(base, full=FULL, skip=frozenset({"signature"})))


def _send_signed(
    w: World,
    case: Case,
    what: str,
    request: Message,
    tally: Tally,
    before: TableDigests,
    head: tuple[int, bytes],
) -> TableDigests:
    taken_before = tally.codes[case.method]["OK"]
    after = _send(w, case, what, [request], tally, before)
    signer = case.caller.signer
    if tally.codes[case.method]["OK"] == taken_before:
        signer.rewind(*head)  # refused: the gateway's chain did not move
    else:
        case.caller.sync_signer()  # taken (or answered as a repeat): follow the gateway's head
    return after


def _run_unsigned(w: World, case: Case, tally: Tally, before: TableDigests) -> TableDigests:
    before = _send(w, case, "as it is", case.messages, tally, before)
    for i, message in enumerate(case.messages):
        for what, changed_message in variants(message, full=FULL, skip=case.skip):
            requests = list(case.messages)
            requests[i] = changed_message
            before = _send(w, case, what, requests, tally, before)
    return before


@pytest.mark.timeout(900)  # about 15 s on SQLite and 40 s on PostgreSQL on a quiet machine
def test_hostile_values_in_every_field_of_every_request(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tally = Tally()
    before = table_digests(world.db)
    for case in world.cases:
        if case.content_type:
            before = _run_signed(world, case, tally, before)
        else:
            before = _run_unsigned(world, case, tally, before)
    counts = {m: {"tried": tally.tried[m], **dict(tally.codes[m])} for m in sorted(tally.tried)}
    out: Path = tmp_path_factory.getbasetemp() / f"hostile-counts-{world.backend}.json"
    out.write_text(json.dumps(counts, indent=2, sort_keys=True))
    total = sum(tally.tried.values())
    print(f"\nhostile requests on {world.backend}: {total} tried ({out})")
    for method, row in counts.items():
        print(f"  {method:48} {row}")
    # Every RPC of the contract and every signed body type was tried.
    assert sorted(tally.tried) == ALL_METHODS
    assert {c.content_type for c in world.cases if c.body is not None} == SIGNED_TYPES
    # The hostile values were refused, not taken: most answers are refusals.
    refused = sum(n for m in counts.values() for c, n in m.items() if c not in ("tried", "OK"))
    # (an answer "OK (nothing taken)" is a Publish whose envelopes were all refused in-band)
    assert refused > total // 2, counts
