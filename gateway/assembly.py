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
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services import Clock, utc_now
from gateway.services.audit import AuditReader
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.ledger import LedgerService
from gateway.services.recognition import EnforcedRecognition, RecognitionService
from gateway.services.reconciliation import ReconciliationService
from gateway.storage.db import Database


@dataclass(frozen=True)
class Services:
    """One gateway's services over one database."""

    db: Database
    keys: KeyDirectory
    audit: AuditReader
    exchange: ExchangeService
    recognition: RecognitionService
    ledger: LedgerService
    reconciliation: ReconciliationService
    jobs: Jobs


def build_services(
    settings: GatewaySettings,
    db: Database,
    *,
    clock: Clock = utc_now,
    adapters: AdapterRegistry | None = None,
) -> Services:
    """The services, configured from settings; the gateway key comes from the PKI directory."""
    gateway_key = load_signing_key(PKIDir(settings.cert_dir).gateway().signing_key)
    audit = AuditReader(db, gateway_key, clock)
    recognition = RecognitionService(
        db,
        mr.ApprovalPolicy(
            approvals=dict(settings.recognition_approvals),
            delta_wide_needs_every_region=settings.delta_wide_needs_every_region,
        ),
        clock,
    )
    ledger = LedgerService(
        db,
        clock,
        recognition=EnforcedRecognition(recognition) if settings.recognition_enforced else None,
        proposal_ttl=dt.timedelta(seconds=settings.proposal_ttl_s),
        ets_policies=settings.ets_offset_policies,
    )
    reconciliation = ReconciliationService(db, gateway_key, clock)
    return Services(
        db=db,
        keys=KeyDirectory(db, clock),
        audit=audit,
        exchange=ExchangeService(db, adapters or default_registry, clock),
        recognition=recognition,
        ledger=ledger,
        reconciliation=reconciliation,
        jobs=Jobs(db, ledger, reconciliation, audit, settings.reconcile_regions),
    )
