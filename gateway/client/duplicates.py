"""Duplicate case calls: reading cases, and an administrator's signed resolution.

Refusals come back as the gateway's typed exceptions (``gateway.errors``): ``UnitsHeld``,
``DuplicateCaseNotFound``, ``DuplicateCaseClosed``, ``CaseAlreadyDecided``,
``NotDecidingRegion``, ``StandingInvalid`` among them."""

from __future__ import annotations

from collections.abc import Iterator

from yrd.interop.v1 import duplicate_service_pb2, duplicates_pb2

from gateway.client.connection import Connection
from gateway.contract import CASE_RESOLUTION_PROTO, CASE_STATE_PROTO, CASE_VERDICT_TYPE

RESOLUTIONS = tuple(CASE_RESOLUTION_PROTO)
"""The resolutions by name: ``DISTINCT``, ``DUPLICATE``."""
STATES = tuple(CASE_STATE_PROTO)
"""The case states by name: ``OPEN``, ``DISTINCT``, ``DUPLICATE``."""


def resolution_value(resolution: str | int) -> duplicates_pb2.CaseResolution.ValueType:
    """A resolution given by name (``DISTINCT``, ``duplicate``, ``CASE_RESOLUTION_DISTINCT``)
    or by its enum value; ``ValueError`` for anything else."""
    if isinstance(resolution, int):
        if resolution not in CASE_RESOLUTION_PROTO.values():
            raise ValueError(f"unknown resolution {resolution}")
        return duplicates_pb2.CaseResolution.ValueType(resolution)
    key = resolution.upper().removeprefix("CASE_RESOLUTION_")
    if key not in CASE_RESOLUTION_PROTO:
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}, not {resolution!r}")
    return CASE_RESOLUTION_PROTO[key]


def verdict_payload(name: str, resolution: str | int, comment: str, standing: str = "") -> bytes:
    """The signed body of a decision on case ``name`` (a serialised ``CaseVerdict``)."""
    return duplicate_service_pb2.CaseVerdict(
        duplicate_case=name,
        resolution=resolution_value(resolution),
        standing=standing,
        comment=comment,
    ).SerializeToString()


class DuplicateCalls(Connection):
    """DuplicateService."""

    def get_duplicate_case(self, name: str) -> duplicates_pb2.DuplicateCase:
        """One case by name (``duplicateCases/{id}``)."""
        req = duplicate_service_pb2.GetDuplicateCaseRequest(name=name)
        return self.call(self.duplicates.GetDuplicateCase, req).duplicate_case

    def duplicate_cases(
        self,
        *,
        region: str = "",
        state: str = "",
        strength: int = 0,
        subject: str = "",
        page_size: int = 0,
    ) -> Iterator[duplicates_pb2.DuplicateCase]:
        """Every case matching the filters, newest first, page by page (``state``: ``OPEN``,
        ``DISTINCT`` or ``DUPLICATE``, empty for any; ``strength``: a ``MatchStrength`` value,
        0 for any)."""
        token = ""
        while True:
            req = duplicate_service_pb2.ListDuplicateCasesRequest(
                region=region,
                state=(
                    CASE_STATE_PROTO[state.upper()]
                    if state
                    else duplicates_pb2.DUPLICATE_CASE_STATE_UNSPECIFIED
                ),
                strength=duplicates_pb2.MatchStrength.ValueType(strength),
                subject=subject,
                page_size=page_size,
                page_token=token,
            )
            page = self.call(self.duplicates.ListDuplicateCases, req)
            yield from page.duplicate_cases
            token = page.next_page_token
            if not token:
                return

    def list_duplicate_cases(
        self, *, region: str = "", state: str = "", strength: int = 0, subject: str = ""
    ) -> list[duplicates_pb2.DuplicateCase]:
        """:meth:`duplicate_cases` as a list."""
        return list(
            self.duplicate_cases(region=region, state=state, strength=strength, subject=subject)
        )

    def resolve_duplicate_case(
        self, name: str, resolution: str | int, comment: str, *, standing: str = ""
    ) -> duplicates_pb2.DuplicateCase:
        """An administrator's signed decision on a case: ``DISTINCT``, or ``DUPLICATE`` with the
        subject of the registration that stands (empty: the earlier one). Returns the case after
        the decision (resolved once every deciding region's quorum agrees)."""
        return self._signed_call(
            self.duplicates.ResolveDuplicateCase,
            lambda env: duplicate_service_pb2.ResolveDuplicateCaseRequest(envelope=env),
            CASE_VERDICT_TYPE,
            verdict_payload(name, resolution, comment, standing),
        ).duplicate_case
