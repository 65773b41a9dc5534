"""The gateway's discoverable facts: protocol version, its own signing keys, regions, policies,
limits (GatewayInfoService). Built once at assembly from values the edge passes in; the limits
are the constants the services and adapters enforce, read from where they are defined."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import mutual_recognition as mr
from adapters import _common as native_limits
from adapters import r340000_anhui
from adapters.registry import AdapterRegistry
from gateway.contract import MAX_REQUEST_ID_CHARS, PROTOCOL_PACKAGE, PROTOCOL_VERSION
from gateway.security.gateway_keys import GatewayKey
from gateway.services import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    audit,
    exchange,
    reconciliation,
    snapshots,
)
from gateway.services.ledger import TONNE
from mutual_recognition.assessment import REGION_NAMES

REGISTRY, RECOGNISER, ETS, RECONCILED = "registry", "recogniser", "ets", "reconciled"
"""Roles a region can play (``RegionRole`` on the wire)."""

_P = "/yrd.interop.v1."


@dataclass(frozen=True, slots=True)
class RegionFacts:
    """One served region."""

    region: str
    name_en: str
    name_zh: str
    roles: tuple[str, ...]
    content_types: tuple[str, ...]
    serial_unit_grams: int
    required_approvals: int


@dataclass(frozen=True, slots=True)
class PageRule:
    """Page size rule of one List RPC (or Subscribe's batch size)."""

    method: str
    default: int
    maximum: int


@dataclass(frozen=True, slots=True)
class Policies:
    """The rules in force beyond the message formats."""

    ets_offsets: Mapping[str, mr.EtsOffsetPolicy]
    ets_quantity_multiple_grams: int
    recognition_enforced: bool
    delta_wide_needs_every_region: bool
    proposal_ttl: dt.timedelta


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes and counts beyond which requests are refused."""

    max_message_bytes: int
    max_concurrent_rpcs: int
    max_envelopes_per_publish: int = exchange.MAX_BATCH
    max_native_document_bytes: int = native_limits.MAX_DOCUMENT_BYTES
    max_native_csv_bytes: int = r340000_anhui.MAX_FILE_BYTES
    max_native_csv_rows: int = r340000_anhui.MAX_ROWS
    max_native_identifier_chars: int = native_limits.MAX_ID_LENGTH
    max_native_text_chars: int = native_limits.MAX_TEXT_LENGTH
    max_request_id_chars: int = MAX_REQUEST_ID_CHARS
    max_snapshot_blocks: int = snapshots.MAX_SNAPSHOT_BLOCKS
    max_snapshot_time_ahead: dt.timedelta = reconciliation.MAX_SNAPSHOT_AHEAD
    max_sign_time_skew: dt.timedelta | None = None
    """How far ``sign_time`` may be from the clock, either way (None: no window)."""
    page_rules: tuple[PageRule, ...] = (
        PageRule(
            f"{_P}RegistryService/Subscribe", exchange.DEFAULT_FEED_BATCH, exchange.MAX_FEED_BATCH
        ),
        PageRule(f"{_P}RegistryService/ListRecords", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(f"{_P}TransferService/ListTransfers", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(f"{_P}TransferService/ListUnitBlocks", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(f"{_P}TransferService/ListRetirements", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(f"{_P}RecognitionService/ListRecognitions", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(f"{_P}DuplicateService/ListDuplicateCases", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        PageRule(
            f"{_P}ReconciliationService/ListReconciliationReports",
            reconciliation.DEFAULT_REPORT_PAGE,
            reconciliation.MAX_REPORT_PAGE,
        ),
        PageRule(f"{_P}AuditService/ListAuditEntries", audit.DEFAULT_PAGE, audit.MAX_PAGE),
    )


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """Everything GetGatewayInfo answers."""

    protocol_package: str
    protocol_version: str
    signing_keys: tuple[GatewayKey, ...]
    regions: tuple[RegionFacts, ...]
    policies: Policies
    limits: Limits


def region_facts(
    adapters: AdapterRegistry,
    approvals: mr.ApprovalPolicy,
    ets_regions: Iterable[str],
    reconciled_regions: Iterable[str],
) -> tuple[RegionFacts, ...]:
    """Each region with an adapter, ordered by code, with the roles it plays."""
    ets, reconciled = set(ets_regions), set(reconciled_regions)
    facts = []
    for code in adapters.regions():
        adapter = adapters.get(code)
        roles = [REGISTRY, RECOGNISER]
        roles += [ETS] if code in ets else []
        roles += [RECONCILED] if code in reconciled else []
        name_en, name_zh = REGION_NAMES.get(code, (code, code))
        facts.append(
            RegionFacts(
                region=code,
                name_en=name_en,
                name_zh=name_zh,
                roles=tuple(roles),
                content_types=tuple(adapter.content_types),
                serial_unit_grams=adapter.serial_unit_grams,
                required_approvals=approvals.required_for(code),
            )
        )
    return tuple(facts)


class InfoService:
    """Answers the gateway's facts (fixed for the life of the process)."""

    def __init__(
        self,
        *,
        signing_keys: Iterable[GatewayKey],
        adapters: AdapterRegistry,
        approvals: mr.ApprovalPolicy,
        ets_offsets: Mapping[str, mr.EtsOffsetPolicy],
        reconciled_regions: Iterable[str],
        recognition_enforced: bool,
        proposal_ttl: dt.timedelta,
        max_message_bytes: int,
        max_concurrent_rpcs: int,
        max_sign_time_skew: dt.timedelta | None = None,
    ) -> None:
        self._info = GatewayInfo(
            protocol_package=PROTOCOL_PACKAGE,
            protocol_version=PROTOCOL_VERSION,
            signing_keys=tuple(signing_keys),
            regions=region_facts(adapters, approvals, ets_offsets, reconciled_regions),
            policies=Policies(
                ets_offsets=dict(sorted(ets_offsets.items())),
                ets_quantity_multiple_grams=TONNE,
                recognition_enforced=recognition_enforced,
                delta_wide_needs_every_region=approvals.delta_wide_needs_every_region,
                proposal_ttl=proposal_ttl,
            ),
            limits=Limits(
                max_message_bytes=max_message_bytes,
                max_concurrent_rpcs=max_concurrent_rpcs,
                max_sign_time_skew=max_sign_time_skew,
            ),
        )

    def info(self) -> GatewayInfo:
        """The facts."""
        return self._info
