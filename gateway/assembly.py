"""The service layer assembled from settings: what every entrypoint (the gRPC server, the
scheduler, the operator CLI) calls."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import mutual_recognition as mr
from adapters import default_registry
from adapters.registry import AdapterRegistry
from gateway.config import GatewaySettings
from gateway.scheduler import Jobs
from gateway.security import gateway_keys
from gateway.security.pki import PKIDir, load_signing_key
from gateway.security.signing import raw_public_key
from gateway.services import Clock, utc_now
from gateway.services.audit import AuditReader
from gateway.services.duplicate_cases import DuplicateCaseService
from gateway.services.exchange import ExchangeService
from gateway.services.federation import FederationStatusService, pki_certificates
from gateway.services.info import InfoService
from gateway.services.keys import KeyDirectory
from gateway.services.recognition import EnforcedRecognition, RecognitionService
from gateway.services.reconciliation import ReconciliationService
from gateway.services.retirements import RetirementService
from gateway.services.transfers import TransferService
from gateway.storage.db import Database
from gateway.storage.ledger_store import ledger_group_commit


@dataclass(frozen=True)
class Services:
    """One gateway's services over one database."""

    db: Database
    keys: KeyDirectory
    audit: AuditReader
    exchange: ExchangeService
    recognition: RecognitionService
    transfers: TransferService
    retirements: RetirementService
    reconciliation: ReconciliationService
    duplicate_cases: DuplicateCaseService
    info: InfoService
    jobs: Jobs
    status: FederationStatusService


def build_services(
    settings: GatewaySettings,
    db: Database,
    *,
    clock: Clock = utc_now,
    adapters: AdapterRegistry | None = None,
) -> Services:
    """The services, configured from settings; the gateway key comes from the PKI directory."""
    gateway_files = PKIDir(settings.cert_dir).gateway()
    gateway_key = load_signing_key(gateway_files.signing_key)
    audit = AuditReader(db, gateway_key, clock)
    approvals = mr.ApprovalPolicy(
        approvals=dict(settings.recognition_approvals),
        delta_wide_needs_every_region=settings.delta_wide_needs_every_region,
    )
    skew = dt.timedelta(seconds=settings.sign_time_skew_s)
    recognition = RecognitionService(db, approvals, clock, sign_time_skew=skew)
    policy = EnforcedRecognition(recognition) if settings.recognition_enforced else None
    writer = ledger_group_commit(db)  # transfers and retirements arriving together commit together
    transfers = TransferService(
        db,
        clock,
        recognition=policy,
        proposal_ttl=dt.timedelta(seconds=settings.proposal_ttl_s),
        writer=writer,
        sign_time_skew=skew,
    )
    # A revocation ends, in its own transaction, the pending transfers it leaves unrecognised.
    recognition.on_revoked = transfers.release_unrecognised
    retirements = RetirementService(
        db,
        clock,
        recognition=policy,
        ets_policies=settings.ets_offset_policies,
        writer=writer,
        sign_time_skew=skew,
    )
    reconciliation = ReconciliationService(db, gateway_key, clock)
    adapters = adapters or default_registry
    info = InfoService(
        signing_keys=gateway_keys.history(gateway_files.directory, raw_public_key(gateway_key)),
        adapters=adapters,
        approvals=approvals,
        ets_offsets=settings.ets_offset_policies,
        reconciled_regions=settings.reconcile_regions,
        recognition_enforced=settings.recognition_enforced,
        proposal_ttl=dt.timedelta(seconds=settings.proposal_ttl_s),
        max_message_bytes=settings.max_message_bytes,
        max_concurrent_rpcs=settings.max_concurrent_rpcs,
        max_sign_time_skew=skew,
    )
    return Services(
        db=db,
        keys=KeyDirectory(db, clock),
        audit=audit,
        exchange=ExchangeService(db, adapters, clock, sign_time_skew=skew, approvals=approvals),
        recognition=recognition,
        transfers=transfers,
        retirements=retirements,
        reconciliation=reconciliation,
        # Each deciding region's quorum is the recognition approval policy's.
        duplicate_cases=DuplicateCaseService(db, approvals, clock, sign_time_skew=skew),
        info=info,
        jobs=Jobs(db, transfers, reconciliation, audit, settings.reconcile_regions),
        status=FederationStatusService(
            db, clock, adapters.regions(), lambda: pki_certificates(PKIDir(settings.cert_dir))
        ),
    )
