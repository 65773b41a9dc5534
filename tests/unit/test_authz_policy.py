"""Authorization is default-deny and covers every RPC of the contract."""

from __future__ import annotations

from yrd.interop.v1 import (
    audit_service_pb2,
    duplicate_service_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    registry_service_pb2,
    status_service_pb2,
    transfer_service_pb2,
)

from gateway.security.authz import POLICY, allowed_roles
from gateway.security.identity import Role
from gateway.server import SERVICE_NAMES

MODULES = (
    audit_service_pb2,
    duplicate_service_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    registry_service_pb2,
    status_service_pb2,
    transfer_service_pb2,
)


def _all_methods() -> set[str]:
    methods = set()
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods.add(f"/{service.full_name}/{method.name}")
    return methods


def test_every_rpc_has_an_explicit_policy() -> None:
    missing = _all_methods() - POLICY.keys()
    assert not missing, f"RPCs without an authorization entry: {sorted(missing)}"


def test_policy_names_only_real_rpcs() -> None:
    ours = {m for m in POLICY if m.startswith("/yrd.")}
    assert ours == _all_methods()


def test_unknown_methods_are_denied() -> None:
    assert allowed_roles("/yrd.interop.v1.RegistryService/DropAllTables") == frozenset()


def test_registry_cannot_decide_or_manage_keys() -> None:
    for method in (
        "/yrd.interop.v1.RecognitionService/ApproveRecognition",
        "/yrd.interop.v1.RecognitionService/RejectRecognition",
        "/yrd.interop.v1.RecognitionService/RevokeRecognition",
        "/yrd.interop.v1.DuplicateService/ResolveDuplicateCase",
        "/yrd.interop.v1.KeyService/RegisterSigningKey",
        "/yrd.interop.v1.KeyService/RevokeSigningKey",
    ):
        assert Role.REGISTRY not in allowed_roles(method)


def test_only_registries_publish_and_move_units() -> None:
    for method in (
        "/yrd.interop.v1.RegistryService/Publish",
        "/yrd.interop.v1.TransferService/ProposeTransfer",
        "/yrd.interop.v1.TransferService/AcceptTransfer",
    ):
        assert allowed_roles(method) == frozenset({Role.REGISTRY})


def test_service_names_are_the_nine_contract_services() -> None:
    assert len(SERVICE_NAMES) == 9
    assert all(name.startswith("yrd.interop.v1.") for name in SERVICE_NAMES)


def test_federation_status_is_for_operators() -> None:
    assert allowed_roles("/yrd.interop.v1.StatusService/GetFederationStatus") == frozenset(
        {Role.ADMIN, Role.GATEWAY}
    )


def test_only_administrators_resolve_duplicate_cases_and_everyone_reads_them() -> None:
    d = "/yrd.interop.v1.DuplicateService/"
    assert allowed_roles(f"{d}ResolveDuplicateCase") == frozenset({Role.ADMIN})
    for method in ("GetDuplicateCase", "ListDuplicateCases"):
        assert allowed_roles(f"{d}{method}") == frozenset({Role.REGISTRY, Role.ADMIN, Role.GATEWAY})
