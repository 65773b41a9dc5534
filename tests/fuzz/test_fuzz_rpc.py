"""Every RPC of every service, fed hostile requests over real mTLS: bytes that are not a message of
the request type (random, truncated, wrong wire types, lengths past the end, nesting past any
parser's depth, invalid UTF-8, another type's bytes) and well-formed messages with hostile values
(huge strings and numbers, unknown enum values, GB18030 four-byte characters). Every call ends in a
status other than UNKNOWN or INTERNAL, and a refused call changes nothing in the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from hypothesis import given
from hypothesis import strategies as st
from yrd.interop.v1 import (
    audit_service_pb2,
    duplicate_service_pb2,
    key_service_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    registry_service_pb2,
    transfer_service_pb2,
)

from adapters import default_registry
from gateway.client import EnvelopeSigner, GatewayClient, error_from_rpc
from gateway.config import GatewaySettings
from gateway.errors import Code, DomainError
from gateway.security.authz import allowed_roles
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init, load_signing_key
from gateway.server import GatewayServer
from gateway.storage.models import SigningKeyRow
from tests.faults.support import Outcome, identity_channel, snapshot
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.strategies import NATIVE_DOCUMENTS, malformed_bytes, messages
from tests.integration.conftest import publish_samples

METHODS: list[MethodDescriptor] = [
    method
    for module in (
        registry_service_pb2,
        transfer_service_pb2,
        recognition_service_pb2,
        reconciliation_service_pb2,
        key_service_pb2,
        audit_service_pb2,
        duplicate_service_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
MAY_ACT = frozenset(
    {"RegisterSigningKey", "RevokeSigningKey", "RunReconciliation", "SubmitHoldings"}
)
"""RPCs a well-formed request may legitimately make act (no signature to forge): their success
is allowed to change the database. Every other success, and every refusal, must change nothing."""
BROKEN = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


class Target:
    """The gateway under fuzz and a channel per identity."""

    def __init__(self, server: GatewayServer, pki: PKIDir) -> None:
        self.server = server
        self.pki = pki
        self.channels = {
            Role.REGISTRY: identity_channel(server.port, pki, pki.registry("310000")),
            Role.ADMIN: identity_channel(server.port, pki, pki.admin("310000", "admin-a")),
        }

    def call(self, method: MethodDescriptor, payload: bytes) -> Outcome:
        """Send raw request bytes as the identity the RPC is open to; how the call ended."""
        roles = allowed_roles(_path(method))
        channel = self.channels[Role.REGISTRY if Role.REGISTRY in roles else Role.ADMIN]
        path = _path(method)
        try:
            if method.client_streaming and method.server_streaming:
                list(channel.stream_stream(path)(iter([payload]), timeout=10))
            elif method.client_streaming:
                channel.stream_unary(path)(iter([payload]), timeout=10)
            elif method.server_streaming:
                # A follower with nothing to send waits for ever: its deadline ends it.
                stream = channel.unary_stream(path)(payload, timeout=2)
                for count, _ in enumerate(stream):
                    if count == 2:  # a follower would stream for ever: enough seen
                        stream.cancel()
                        return Outcome(grpc.StatusCode.OK)
            else:
                channel.unary_unary(path)(payload, timeout=10)
        except grpc.RpcError as exc:
            err = error_from_rpc(exc)
            return Outcome(exc.code(), getattr(err, "reason", ""))  # type: ignore[attr-defined]
        return Outcome(grpc.StatusCode.OK)

    def check(self, method: MethodDescriptor, payload: bytes) -> None:
        before = snapshot(self.server.db)
        outcome = self.call(method, payload)
        assert outcome.code not in BROKEN, f"{method.name} answered {outcome} to {payload[:200]!r}"
        if len(payload) < self.server.settings.max_message_bytes:
            # Within the size limit nothing is exhausted: such a status would be the transport
            # dropping the gateway's own answer (trailers past the client's limit, say).
            assert outcome.code is not grpc.StatusCode.RESOURCE_EXHAUSTED, (method.name, outcome)
        if outcome.code is not grpc.StatusCode.OK or method.name not in MAY_ACT:
            assert snapshot(self.server.db) == before, (
                f"{method.name} ({outcome}) changed the database"
            )

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root: Path = tmp_path_factory.mktemp("fuzz-rpc")
    pki = PKIDir(root / "pki")
    init(pki)
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{root / 'gateway.sqlite3'}",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="error",
        log_format="json",
        recognition_enforced=False,
    )
    server = GatewayServer(settings)
    server.start()
    clients: list[GatewayClient] = []

    def client_for(
        region: str, role: Role = Role.REGISTRY, name: str | None = None
    ) -> GatewayClient:
        clients.append(
            GatewayClient(f"127.0.0.1:{server.port}", pki, region=region, role=role, name=name)
        )
        return clients[-1]

    publish_samples(client_for)
    t = Target(server, pki)
    yield t
    t.close()
    for c in clients:
        c.close()
    server.stop(grace=0.5)


IDS = [f"{m.containing_service.name}.{m.name}" for m in METHODS]


@pytest.mark.parametrize("method", METHODS, ids=IDS)
@fuzz_settings(examples=12)
@given(data=st.data())
def test_malformed_bytes(target: Target, method: MethodDescriptor, data: st.DataObject) -> None:
    valid = messages(method.input_type).map(lambda m: m.SerializeToString())
    other = (
        st.sampled_from(METHODS)
        .flatmap(lambda m: messages(m.input_type))
        .map(lambda m: m.SerializeToString())
    )
    payload = data.draw(
        st.one_of(malformed_bytes(method.input_type, valid), other), label="payload"
    )
    target.check(method, payload)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
@fuzz_settings(examples=12)
@given(data=st.data())
def test_hostile_values(target: Target, method: MethodDescriptor, data: st.DataObject) -> None:
    request = data.draw(messages(method.input_type), label="request")
    target.check(method, request.SerializeToString())


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/yrd.interop.v1.TransferService/GetTransfer",
            transfer_service_pb2.GetTransferRequest(name="x" * 300_000),
        ),
        (
            "/yrd.interop.v1.RecognitionService/GetRecognition",
            recognition_service_pb2.GetRecognitionRequest(name="认" * 50_000),
        ),
        (
            "/yrd.interop.v1.RegistryService/GetRecord",
            registry_service_pb2.GetRecordRequest(name="regions/310000/" + "記" * 50_000),
        ),
    ],
    ids=["GetTransfer", "GetRecognition", "GetRecord"],
)
def test_a_refusal_quoting_a_huge_request_arrives_whole(
    target: Target, path: str, message: Any
) -> None:
    """The gateway's answer to a request carrying a huge value keeps to the trailer limit, so the
    caller gets that answer (its code and reason), not the transport's RESOURCE_EXHAUSTED."""
    channel = target.channels[Role.REGISTRY]
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(path)(message.SerializeToString(), timeout=10)
    err = error_from_rpc(info.value)
    assert isinstance(err, DomainError), err
    # Past 1000 characters a name is refused by the validation layer (protocol §7.3) before it
    # is looked up (before that, NOT_FOUND quoting it).
    assert err.code is Code.INVALID_ARGUMENT and err.reason == "INVALID_ARGUMENT", err
    assert err.field_errors == {"name": "at most 1000 characters"}, err.field_errors
    assert len(err.message) <= 200


def _signer(target: Target, region: str) -> EnvelopeSigner:
    """The region's registry signer at the chain head the gateway holds."""
    signer = EnvelopeSigner(load_signing_key(target.pki.registry(region).signing_key))
    with target.server.db.transaction() as session:
        key = session.get(SigningKeyRow, signer.key_id)
        assert key is not None
        signer.rewind(key.last_sequence, key.last_hash)
    return signer


@pytest.mark.parametrize("region", ["310000", "320000", "330000", "340000"])
@fuzz_settings(examples=20)
@given(data=st.data())
def test_native_documents_through_publish(target: Target, region: str, data: st.DataObject) -> None:
    """A hostile native document, signed by its region's own key, passes every check before the
    adapter: the adapter's refusal comes back as the envelope's precise result, nothing stored."""
    document = data.draw(NATIVE_DOCUMENTS[region](), label="document")
    envelope = _signer(target, region).sign(default_registry.get(region).content_types[0], document)
    request = registry_service_pb2.PublishEnvelopeRequest(envelope=envelope)
    before = snapshot(target.server.db)
    with identity_channel(target.server.port, target.pki, target.pki.registry(region)) as channel:
        publish = channel.unary_unary("/yrd.interop.v1.RegistryService/PublishEnvelope")
        try:
            raw = publish(request.SerializeToString(), timeout=30)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            assert code not in BROKEN, f"Publish of a {region} document answered {code}"
            assert snapshot(target.server.db) == before
            return
    result = registry_service_pb2.PublishEnvelopeResponse.FromString(raw).result
    if not result.accepted:
        assert result.reason, result
        assert snapshot(target.server.db) == before, f"refused ({result.reason}) yet stored"
