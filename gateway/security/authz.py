"""Default-deny authorization: the roles that may call each RPC.

A method missing from the table is refused for everyone. Which *region* a caller may act for is
decided by the service layer from the caller's identity; this table only gates roles.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.security.identity import Role

R, A, G = Role.REGISTRY, Role.ADMIN, Role.GATEWAY
ANY = frozenset({R, A, G})
_P = "/yrd.interop.v1."

POLICY: Mapping[str, frozenset[Role]] = {
    # Record exchange: only registries publish; everyone in the federation may read.
    f"{_P}RegistryService/Publish": frozenset({R}),
    f"{_P}RegistryService/PublishEnvelope": frozenset({R}),
    f"{_P}RegistryService/Subscribe": ANY,
    f"{_P}RegistryService/GetRecord": ANY,
    f"{_P}RegistryService/ListRecords": ANY,
    # Transfers and retirements are the registries' acts; administrators and the gateway read.
    f"{_P}TransferService/ProposeTransfer": frozenset({R}),
    f"{_P}TransferService/AcceptTransfer": frozenset({R}),
    f"{_P}TransferService/RejectTransfer": frozenset({R}),
    f"{_P}TransferService/CancelTransfer": frozenset({R}),
    f"{_P}TransferService/Retire": frozenset({R}),
    f"{_P}TransferService/GetTransfer": ANY,
    f"{_P}TransferService/ListTransfers": ANY,
    f"{_P}TransferService/ListUnitBlocks": ANY,
    f"{_P}TransferService/GetRetirement": ANY,
    f"{_P}TransferService/ListRetirements": ANY,
    # Recognition: registries and administrators request; only administrators decide.
    f"{_P}RecognitionService/RequestRecognition": frozenset({R, A}),
    f"{_P}RecognitionService/ApproveRecognition": frozenset({A}),
    f"{_P}RecognitionService/RejectRecognition": frozenset({A}),
    f"{_P}RecognitionService/RevokeRecognition": frozenset({A}),
    f"{_P}RecognitionService/GetRecognition": ANY,
    f"{_P}RecognitionService/ListRecognitions": ANY,
    f"{_P}RecognitionService/CheckRecognized": ANY,
    # Reconciliation: registries submit snapshots; administrators (and the gateway's jobs) run it.
    f"{_P}ReconciliationService/SubmitHoldings": frozenset({R}),
    f"{_P}ReconciliationService/RunReconciliation": frozenset({A, G}),
    f"{_P}ReconciliationService/GetReconciliationReport": ANY,
    f"{_P}ReconciliationService/ListReconciliationReports": ANY,
    # Duplicate cases: registries and administrators (and the gateway's jobs) read; only
    # administrators decide (the service checks that their region is a deciding one).
    f"{_P}DuplicateService/GetDuplicateCase": ANY,
    f"{_P}DuplicateService/ListDuplicateCases": ANY,
    f"{_P}DuplicateService/ResolveDuplicateCase": frozenset({A}),
    # Key directory: administrators manage their region's keys.
    f"{_P}KeyService/RegisterSigningKey": frozenset({A}),
    f"{_P}KeyService/RevokeSigningKey": frozenset({A}),
    f"{_P}KeyService/ListSigningKeys": ANY,
    # Audit log: anyone may read and verify.
    f"{_P}AuditService/ListAuditEntries": ANY,
    f"{_P}AuditService/GetSignedTreeHead": ANY,
    # The gateway's facts (protocol version, its keys, regions, policies, limits): anyone.
    f"{_P}GatewayInfoService/GetGatewayInfo": ANY,
    # Federation status (lags, queues, refusals, expiries of every region): operators only.
    f"{_P}StatusService/GetFederationStatus": frozenset({A, G}),
    # Standard services.
    "/grpc.health.v1.Health/Check": ANY,
    "/grpc.health.v1.Health/Watch": ANY,
    "/grpc.health.v1.Health/List": ANY,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": ANY,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": ANY,
}


def allowed_roles(method: str) -> frozenset[Role]:
    """Roles that may call a full method name; empty (deny) when unknown."""
    return POLICY.get(method, frozenset())
