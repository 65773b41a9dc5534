"""Catalogue, part 4: duplicate cases across registries — holds on issuances, the administrators'
resolution of a case, and the import of external project lists."""

from __future__ import annotations

from gateway.reasons.model import Reason, Retry

REASONS: tuple[Reason, ...] = (
    Reason(
        "UNITS_HELD",
        "FAILED_PRECONDITION",
        (
            "Some units belong to an issuance held by an open duplicate case (metadata `serials` "
            "or `issuance`, and `cases`: the case names, comma-separated). On AcceptTransfer "
            "nothing changes and the transfer stays pending."
        ),
        rpcs=("ProposeTransfer", "AcceptTransfer", "Retire"),
        retry=Retry.LATER,
        retry_note="after the case is resolved",
        check=4,
    ),
    Reason(
        "DUPLICATE_CASE_NOT_FOUND",
        "NOT_FOUND",
        "No such duplicate case.",
        rpcs=("GetDuplicateCase", "ResolveDuplicateCase"),
        retry=Retry.FIX,
    ),
    Reason(
        "DUPLICATE_CASE_CLOSED",
        "FAILED_PRECONDITION",
        "The duplicate case is already resolved (metadata `state`); it is decided once.",
        rpcs=("ResolveDuplicateCase",),
        retry=Retry.NO,
    ),
    Reason(
        "CASE_ALREADY_DECIDED",
        "ALREADY_EXISTS",
        "This administrator has already decided this duplicate case (one decision each).",
        rpcs=("ResolveDuplicateCase",),
        retry=Retry.NO,
    ),
    Reason(
        "NOT_DECIDING_REGION",
        "PERMISSION_DENIED",
        (
            "The administrator's region is not a deciding region of the case (the regions of its "
            "region-side subjects)."
        ),
        rpcs=("ResolveDuplicateCase",),
        retry=Retry.NO,
    ),
    Reason(
        "STANDING_INVALID",
        "INVALID_ARGUMENT",
        (
            "A case verdict's `standing` is not one of the case's two subjects, or is set on a "
            "DISTINCT resolution."
        ),
        rpcs=("ResolveDuplicateCase",),
        retry=Retry.FIX,
    ),
    Reason(
        "EXTERNAL_LIST_INVALID",
        "INVALID_ARGUMENT",
        (
            "An external project list (CSV or XLSX) does not read: a missing column, a bad row "
            "(all issues listed). Reported by the host command `yrdgw duplicates import`, never "
            "on an RPC."
        ),
        rpcs=(),
        retry=None,
    ),
)
