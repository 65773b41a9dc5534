"""Catalogue, part 2: transfers, retirements, reconciliation, keys and the transport-like
reasons every RPC can return."""

from __future__ import annotations

from gateway.reasons.model import Reason, Retry

REASONS: tuple[Reason, ...] = (
    Reason(
        "PAYLOAD_MALFORMED",
        "INVALID_ARGUMENT",
        (
            "The envelope's content type is not the RPC's, or its payload does not decode as the "
            "body message."
        ),
        rpcs=(
            "ProposeTransfer",
            "Answer",
            "Retire",
            "RequestRecognition",
            "Decide",
            "RevokeRecognition",
        ),
        retry=Retry.FIX,
    ),
    Reason(
        "ANSWER_DECISION_MISMATCH",
        "INVALID_ARGUMENT",
        "A transfer answer's signed `decision` is not what the RPC does (or is unset).",
        rpcs=("Answer",),
        retry=Retry.FIX,
        check=2,
    ),
    Reason(
        "CALLER_NOT_SOURCE",
        "PERMISSION_DENIED",
        "Only the source region cancels a transfer.",
        rpcs=("CancelTransfer",),
        retry=Retry.NO,
        check=1,
    ),
    Reason(
        "CALLER_NOT_DESTINATION",
        "PERMISSION_DENIED",
        "Only the destination region accepts or rejects a transfer.",
        rpcs=("AcceptTransfer", "RejectTransfer"),
        retry=Retry.NO,
        check=1,
    ),
    Reason(
        "CALLER_NOT_HOLDER",
        "PERMISSION_DENIED",
        (
            'Defined ("only the holder retires its units") but **never sent**: a non-holder gets '
            "SERIALS_NOT_HELD or INSUFFICIENT_UNITS."
        ),
        rpcs=(),
        retry=None,
        check=1,
    ),
    Reason(
        "TRANSFER_ID_REUSED",
        "ALREADY_EXISTS",
        "The transfer id was used before with a different payload.",
        rpcs=("ProposeTransfer",),
        retry=Retry.FIX,
        retry_note="new id",
        check=3,
    ),
    Reason(
        "RETIREMENT_ID_REUSED",
        "ALREADY_EXISTS",
        "The retirement id was used before with a different payload.",
        rpcs=("Retire",),
        retry=Retry.FIX,
        retry_note="new id",
        check=3,
    ),
    Reason(
        "SAME_REGION",
        "INVALID_ARGUMENT",
        "Source and destination are the same region.",
        rpcs=("ProposeTransfer",),
        retry=Retry.FIX,
        check=6,
    ),
    Reason(
        "SERIALS_UNKNOWN",
        "FAILED_PRECONDITION",
        "Some serials of a range are in no block of that origin.",
        rpcs=("ProposeTransfer", "Retire"),
        retry=Retry.FIX,
        check=4,
    ),
    Reason(
        "SERIALS_NOT_HELD",
        "FAILED_PRECONDITION",
        "Some serials are held by another region.",
        rpcs=("ProposeTransfer", "Retire"),
        retry=Retry.LATER,
        check=4,
    ),
    Reason(
        "SERIALS_NOT_ACTIVE",
        "FAILED_PRECONDITION",
        "Some serials are reserved by another transfer, retired or cancelled.",
        rpcs=("ProposeTransfer", "Retire"),
        retry=Retry.LATER,
        retry_note="if reserved",
        check=4,
    ),
    Reason(
        "INSUFFICIENT_UNITS",
        "FAILED_PRECONDITION",
        "The caller holds fewer active grams of that project and vintage than asked.",
        rpcs=("ProposeTransfer", "Retire"),
        retry=Retry.LATER,
        check=4,
    ),
    Reason(
        "NOT_RECOGNISED",
        "FAILED_PRECONDITION",
        (
            "The receiving region (destination; or the holder for an ETS offset) does not "
            "recognise the units; the message carries the recognition answer's reason (§3). Also "
            "sent on accept when recognition was revoked meanwhile."
        ),
        rpcs=("ProposeTransfer", "AcceptTransfer", "Retire"),
        retry=Retry.LATER,
        retry_note="after recognition",
        check=5,
    ),
    Reason(
        "TRANSFER_NOT_FOUND",
        "NOT_FOUND",
        "No such transfer.",
        rpcs=("GetTransfer", "Answer"),
        retry=Retry.FIX,
    ),
    Reason(
        "RETIREMENT_NOT_FOUND",
        "NOT_FOUND",
        "No such retirement.",
        rpcs=("GetRetirement",),
        retry=Retry.FIX,
    ),
    Reason(
        "TRANSFER_NOT_PENDING",
        "FAILED_PRECONDITION",
        (
            "The transfer was already resolved (metadata `state`); also a re-signed repeat of an "
            "answer."
        ),
        rpcs=("Answer",),
        retry=Retry.NO,
    ),
    Reason(
        "TRANSFER_EXPIRED",
        "FAILED_PRECONDITION",
        "The proposal passed its deadline before the accept/reject came.",
        rpcs=("AcceptTransfer", "RejectTransfer"),
        retry=Retry.NO,
    ),
    Reason(
        "ETS_REGION_WITHOUT_POLICY",
        "FAILED_PRECONDITION",
        "The holder region has no ETS offset policy.",
        rpcs=("Retire",),
        retry=Retry.NO,
        check=7,
    ),
    Reason(
        "ETS_NOT_WHOLE_TONNES",
        "FAILED_PRECONDITION",
        "ETS offsets are made in whole tonnes (multiples of 1 000 000 g).",
        rpcs=("Retire",),
        retry=Retry.FIX,
        check=7,
    ),
    Reason(
        "ETS_VINTAGE_OUTSIDE_WINDOW",
        "FAILED_PRECONDITION",
        "A unit's vintage is outside the policy's window before the compliance year.",
        rpcs=("Retire",),
        retry=Retry.FIX,
        check=7,
    ),
    Reason(
        "ETS_CAP_EXCEEDED",
        "FAILED_PRECONDITION",
        (
            "The beneficiary's credited offsets for the year would pass the policy's share of the "
            "declared obligation (metadata `earlier_grams`, `cap_grams`)."
        ),
        rpcs=("Retire",),
        retry=Retry.FIX,
        check=7,
    ),
    Reason(
        "ETS_OUTSIDE_CAP_EXCEEDED",
        "FAILED_PRECONDITION",
        (
            "Offsets from units issued outside the region would pass their separate cap (only with"
            " `max_outside_share`)."
        ),
        rpcs=("Retire",),
        retry=Retry.FIX,
        check=7,
    ),
    Reason(
        "SNAPSHOT_INVALID",
        "INVALID_ARGUMENT",
        (
            "A holdings snapshot is malformed: no header first, bad time (or more than 5 min "
            "ahead), a transfer entry that is not a transfer name, bad origin/range/state, too "
            "many or overlapping blocks."
        ),
        rpcs=("SubmitHoldings",),
        retry=Retry.FIX,
    ),
    Reason(
        "SNAPSHOT_MISSING",
        "FAILED_PRECONDITION",
        "The region has submitted no holdings snapshot.",
        rpcs=("RunReconciliation",),
        retry=Retry.LATER,
    ),
    Reason(
        "REPORT_NOT_FOUND",
        "NOT_FOUND",
        "No reconciliation report has that name.",
        rpcs=("GetReconciliationReport",),
        retry=Retry.FIX,
    ),
    Reason(
        "SIGNING_KEY_INVALID",
        "INVALID_ARGUMENT",
        "A public key is not 32 raw bytes.",
        rpcs=("RegisterSigningKey",),
        retry=Retry.FIX,
    ),
    Reason(
        "SIGNING_KEY_EXISTS",
        "ALREADY_EXISTS",
        "The key is already registered to another region or owner, or was revoked.",
        rpcs=("RegisterSigningKey",),
        retry=Retry.NO,
    ),
    Reason(
        "SIGNING_KEY_NOT_FOUND",
        "NOT_FOUND",
        "No such signing key.",
        rpcs=("RevokeSigningKey",),
        retry=Retry.FIX,
    ),
    Reason(
        "STORAGE_UNAVAILABLE",
        "UNAVAILABLE",
        "The database could not serve the request just now; it may or may not have committed.",
        rpcs=("*",),
        retry=Retry.SAME,
    ),
    Reason(
        "NOT_IMPLEMENTED",
        "UNIMPLEMENTED",
        "The RPC is in the contract but not served by this gateway version.",
        rpcs=("*",),
        retry=Retry.NO,
    ),
    Reason(
        "INTERNAL",
        "INTERNAL",
        "Unexpected failure (no details leak).",
        rpcs=("*",),
        retry=Retry.SAME,
        retry_note="once",
    ),
)
