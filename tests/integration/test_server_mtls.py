"""A real gateway on port 0 with real mTLS: who gets in, who is refused, and with what status."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from gateway.client import GatewayClient, TransportError
from gateway.config import GatewaySettings
from gateway.errors import (
    CertificateRevoked,
    Code,
    RoleNotAllowed,
    SigningKeyInvalid,
    WrongRegion,
)
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init, issue, revoke
from gateway.security.signing import raw_public_key
from gateway.server import SERVICE_NAMES, GatewayServer
from tests.conftest import ClientFactory


def _target(server: GatewayServer) -> str:
    return f"127.0.0.1:{server.port}"


def _health_with(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


def test_registry_certificate_reaches_health_through_standard_stub(
    gateway: GatewayServer, pki: PKIDir
) -> None:
    files = pki.registry("320000")
    creds = grpc.ssl_channel_credentials(
        pki.ca_cert.read_bytes(), files.key.read_bytes(), files.cert.read_bytes()
    )
    with grpc.secure_channel(_target(gateway), creds) as channel:
        assert _health_with(channel) == health_pb2.HealthCheckResponse.SERVING
        for name in SERVICE_NAMES:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=name), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_contract_services(
    gateway: GatewayServer, connect: ClientFactory
) -> None:
    client = connect("330000")
    services = set(ProtoReflectionDescriptorDatabase(client.channel).get_services())
    assert set(SERVICE_NAMES) <= services
    assert "grpc.health.v1.Health" in services
    assert {s for s in services if s.startswith("yrd.interop.v1.")} == set(SERVICE_NAMES)


def test_no_client_certificate_is_refused(gateway: GatewayServer, pki: PKIDir) -> None:
    creds = grpc.ssl_channel_credentials(pki.ca_cert.read_bytes())
    with (
        grpc.secure_channel(_target(gateway), creds) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        _health_with(channel)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused(gateway: GatewayServer) -> None:
    with grpc.insecure_channel(_target(gateway)) as channel, pytest.raises(grpc.RpcError) as info:
        _health_with(channel)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_certificate_from_another_ca_is_refused(
    gateway: GatewayServer, pki: PKIDir, tmp_path: Path
) -> None:
    foreign = PKIDir(tmp_path / "foreign")
    init(foreign, regions=("310000",), admins=())
    files = foreign.registry("310000")
    # Trust the real gateway, but present a certificate the federation CA never signed.
    creds = grpc.ssl_channel_credentials(
        pki.ca_cert.read_bytes(), files.key.read_bytes(), files.cert.read_bytes()
    )
    with (
        grpc.secure_channel(_target(gateway), creds) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        _health_with(channel)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def _sibling_pki(pki: PKIDir, root: Path) -> PKIDir:
    """A directory sharing the federation CA, to issue extra certificates without touching pki."""
    sibling = PKIDir(root)
    root.mkdir(parents=True)
    for name in ("ca.pem", "ca-key.pem", "crl.pem"):
        shutil.copy2(pki.root / name, root / name)
    return sibling


def test_expired_certificate_is_refused(
    gateway: GatewayServer, pki: PKIDir, tmp_path: Path
) -> None:
    sibling = _sibling_pki(pki, tmp_path / "expired")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    issue(
        sibling,
        Role.REGISTRY,
        "310000",
        not_valid_before=past,
        not_valid_after=past + dt.timedelta(days=1),
    )
    with (
        GatewayClient(_target(gateway), sibling, region="310000") as client,
        pytest.raises(TransportError) as info,
    ):
        client.health()
    assert info.value.code is grpc.StatusCode.UNAVAILABLE


def test_registry_calling_admin_only_rpc_is_denied(connect: ClientFactory) -> None:
    client = connect("310000")
    with pytest.raises(RoleNotAllowed) as info:
        client.register_signing_key(
            "registry", raw_public_key(ed25519.Ed25519PrivateKey.generate())
        )
    err = info.value
    assert err.code is Code.PERMISSION_DENIED
    assert err.reason == "ROLE_NOT_ALLOWED"
    assert err.metadata == {
        "role": "registry",
        "method": "/yrd.interop.v1.KeyService/RegisterSigningKey",
    }


def test_admin_registers_for_own_region_only(connect: ClientFactory) -> None:
    admin = connect("320000", Role.ADMIN, "admin-b")
    public = raw_public_key(ed25519.Ed25519PrivateKey.generate())
    key = admin.register_signing_key("registry", public)
    assert key.region == "320000" and key.public_key == public
    other = connect("310000", Role.ADMIN, "admin-a")
    with pytest.raises(WrongRegion) as info:
        other.revoke_signing_key(key.key_id, "not mine")
    assert info.value.code is Code.PERMISSION_DENIED


def test_bad_key_gets_invalid_argument_with_field(connect: ClientFactory) -> None:
    admin = connect("340000", Role.ADMIN, "admin-a")
    with pytest.raises(SigningKeyInvalid) as info:
        admin.register_signing_key("registry", b"\x00" * 31)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.field_errors == {"public_key": "must be 32 raw bytes"}


def test_oversized_message_is_refused(
    gateway_settings: GatewaySettings, connect: ClientFactory
) -> None:
    admin = connect("310000", Role.ADMIN, "admin-a")
    big = b"\x00" * (gateway_settings.max_message_bytes + 1)
    with pytest.raises(TransportError) as info:
        admin.register_signing_key("registry", big)
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_metrics_count_rpcs_by_status(gateway: GatewayServer, connect: ClientFactory) -> None:
    client = connect("310000")
    client.health()
    with pytest.raises(RoleNotAllowed):
        client.revoke_signing_key("0" * 32, "x")
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    assert 'yrdgw_rpc_calls_total{code="OK",method="/grpc.health.v1.Health/Check"} 1.0' in body
    assert (
        'yrdgw_rpc_calls_total{code="PERMISSION_DENIED",'
        'method="/yrd.interop.v1.KeyService/RevokeSigningKey"} 1.0' in body
    )
    assert "yrdgw_rpc_duration_seconds_bucket" in body


def test_graceful_shutdown_turns_health_not_serving(
    gateway_settings: GatewaySettings, pki: PKIDir
) -> None:
    server = GatewayServer(gateway_settings)
    server.start()
    client = GatewayClient(_target(server), pki, region="310000")
    stub = health_pb2_grpc.HealthStub(client.channel)
    watch: Iterator[health_pb2.HealthCheckResponse] = stub.Watch(
        health_pb2.HealthCheckRequest(), timeout=10
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    stopper = threading.Thread(target=server.stop, kwargs={"grace": 2.0})
    stopper.start()
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    with pytest.raises(TransportError) as info:
        client.health()
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    client.close()


def test_revoked_certificate_is_refused(tmp_path: Path) -> None:
    own = PKIDir(tmp_path / "pki")
    init(own, regions=("310000", "320000"), admins=())
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path / 'gw.sqlite3'}",
        cert_dir=own.root,
        metrics_listen="",
    )
    server = GatewayServer(settings)
    server.start()
    try:
        with GatewayClient(_target(server), own, region="320000") as client:
            assert client.health() == "SERVING"
            revoke(own, own.registry("320000").cert)
            # The server notices the new CRL within a second; the same connection is then refused.
            deadline = dt.datetime.now() + dt.timedelta(seconds=5)
            error: Exception | None = None
            while dt.datetime.now() < deadline:
                try:
                    client.health()
                except CertificateRevoked as exc:
                    error = exc
                    break
                threading.Event().wait(0.2)
            assert isinstance(error, CertificateRevoked)
            assert error.code is Code.UNAUTHENTICATED
        with GatewayClient(_target(server), own, region="310000") as unaffected:
            assert unaffected.health() == "SERVING"
    finally:
        server.stop(grace=0.5)


def test_concurrent_rpc_limit_answers_resource_exhausted(
    gateway_settings: GatewaySettings, pki: PKIDir
) -> None:
    server = GatewayServer(gateway_settings.model_copy(update={"max_concurrent_rpcs": 1}))
    server.start()
    try:
        with GatewayClient(_target(server), pki, region="310000") as client:
            stub = health_pb2_grpc.HealthStub(client.channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert (
                next(watch).status == health_pb2.HealthCheckResponse.SERVING
            )  # holds the one slot
            with pytest.raises(TransportError) as info:
                client.health()
            assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            watch.cancel()
    finally:
        server.stop(grace=0.5)
