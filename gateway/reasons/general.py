"""Catalogue, part 1: identity, authorization, generic, envelope and record-publishing reasons."""

from __future__ import annotations

from gateway.reasons.model import Reason, Retry

REASONS: tuple[Reason, ...] = (
    Reason(
        "IDENTITY_MISSING",
        "UNAUTHENTICATED",
        (
            "The client certificate carries no usable identity (no SAN URI in "
            "`spiffe://yrd-interop/`, several, or a malformed one)."
        ),
        rpcs=("*",),
        retry=Retry.FIX,
    ),
    Reason(
        "CERTIFICATE_REVOKED",
        "UNAUTHENTICATED",
        "The client certificate's serial is on the CRL.",
        rpcs=("*",),
        retry=Retry.NO,
    ),
    Reason(
        "ROLE_NOT_ALLOWED",
        "PERMISSION_DENIED",
        (
            "The RPC is not open to the caller's role (default-deny table); also: a "
            "non-administrator deciding or revoking a recognition, a non-registry submitting "
            "holdings, a registry running a reconciliation."
        ),
        rpcs=("*", "Decide", "RevokeRecognition", "SubmitHoldings", "RunReconciliation"),
        retry=Retry.NO,
    ),
    Reason(
        "PERMISSION_DENIED",
        "PERMISSION_DENIED",
        (
            "Generic: the caller's role or region may not do this (a non-registry signing a "
            "transfer request; the gateway signing a request; a non-registry publishing; a "
            "registry managing keys)."
        ),
        rpcs=(
            "ProposeTransfer",
            "Answer",
            "Retire",
            "RequestRecognition",
            "Publish",
            "RegisterSigningKey",
            "RevokeSigningKey",
        ),
        retry=Retry.NO,
        check=1,
        check_note="transfer RPCs",
    ),
    Reason(
        "WRONG_REGION",
        "PERMISSION_DENIED",
        (
            "The caller acts for a region that is not its own (key management, reconciliation, "
            "recognition request or decision)."
        ),
        rpcs=(
            "RegisterSigningKey",
            "RevokeSigningKey",
            "RunReconciliation",
            "RequestRecognition",
            "Decide",
            "RevokeRecognition",
        ),
        retry=Retry.NO,
    ),
    Reason(
        "REQUEST_MALFORMED",
        "INVALID_ARGUMENT",
        (
            "The request bytes do not decode as the RPC's request message (checked after "
            "authentication and authorization)."
        ),
        rpcs=("*",),
        retry=Retry.FIX,
    ),
    Reason(
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        (
            "Generic bad field(s), named in `BadRequest` (field path and what is wrong): the "
            "validation layer's rules (protocol §7.3: unknown or `UNSPECIFIED` enum values, "
            "control characters, malformed region codes in bodies and filters, ids, bounds of "
            "quantities and serial ranges, required fields), answer reason, recognition "
            "conditions (ratio denominator, calendar date), too many envelopes, page sizes, batch"
            " sizes, native feed for the gateway role, key owner, key revocation reason."
        ),
        rpcs=(
            "Publish",
            "Subscribe",
            "GetRecord",
            "ListRecords",
            "ProposeTransfer",
            "Answer",
            "Retire",
            "GetTransfer",
            "ListTransfers",
            "ListUnitBlocks",
            "GetRetirement",
            "ListRetirements",
            "RequestRecognition",
            "Decide",
            "RevokeRecognition",
            "GetRecognition",
            "ListRecognitions",
            "CheckRecognized",
            "RunReconciliation",
            "GetReconciliationReport",
            "ListReconciliationReports",
            "RegisterSigningKey",
            "RevokeSigningKey",
            "ListSigningKeys",
            "ListAuditEntries",
        ),
        retry=Retry.FIX,
    ),
    Reason(
        "ENVELOPE_MALFORMED",
        "INVALID_ARGUMENT",
        "An envelope field is missing or has the wrong size (`BadRequest` per field).",
        rpcs=("Signed",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "SIGNATURE_INVALID",
        "INVALID_ARGUMENT",
        "The Ed25519 signature does not verify over the envelope as received.",
        rpcs=("Signed",),
        retry=Retry.FIX,
        check=2,
        check_note="transfer RPCs",
        in_band=True,
    ),
    Reason(
        "SIGNING_KEY_UNKNOWN",
        "NOT_FOUND",
        "The envelope's `key_id` is not in the key directory.",
        rpcs=("Signed",),
        retry=Retry.LATER,
        retry_note="after registration",
        check=2,
        check_note="transfer RPCs",
        in_band=True,
    ),
    Reason(
        "SIGNING_KEY_WRONG_REGION",
        "PERMISSION_DENIED",
        "The key belongs to another region than the caller's certificate.",
        rpcs=("Signed",),
        retry=Retry.NO,
        check=2,
        check_note="transfer RPCs",
        in_band=True,
    ),
    Reason(
        "SIGNING_KEY_NOT_REGISTRY",
        "PERMISSION_DENIED",
        (
            "The key's owner is not the caller (records and transfer requests need the registry's "
            "key; an administrator must use its own key)."
        ),
        rpcs=("Signed",),
        retry=Retry.FIX,
        check=2,
        check_note="transfer RPCs",
        in_band=True,
    ),
    Reason(
        "SIGNING_KEY_REVOKED",
        "FAILED_PRECONDITION",
        ("The signing key was revoked; also: revoking an already revoked key with another reason."),
        rpcs=("Signed", "RevokeSigningKey"),
        retry=Retry.NO,
        check=2,
        check_note="transfer RPCs",
        in_band=True,
    ),
    Reason(
        "ENVELOPE_REPLAYED",
        "ALREADY_EXISTS",
        (
            "This exact envelope was accepted before, by another request than the one it is "
            "sent as now: a transfer request or recognition decision sent on Publish, or a "
            "decision/revocation sent for another recognition. A repeat of the request the "
            "envelope made gets that request's first answer instead (protocol §12)."
        ),
        rpcs=("Publish", "Decide", "RevokeRecognition", "RequestRecognition"),
        retry=Retry.NO,
        retry_note="already in",
        in_band=True,
    ),
    Reason(
        "SEQUENCE_REUSED",
        "FAILED_PRECONDITION",
        "Another envelope already holds this signer's sequence number (a fork).",
        rpcs=("Signed",),
        retry=Retry.RESYNC,
        in_band=True,
    ),
    Reason(
        "SIGN_TIME_OUT_OF_RANGE",
        "FAILED_PRECONDITION",
        (
            "The envelope's `sign_time` is further from the gateway's clock than the allowed "
            "skew (setting `sign_time_skew_s`, default 10 minutes either way); metadata "
            "`sign_time`, `gateway_time`, `max_skew_seconds`. Checked only for an envelope "
            "that would take a new place in its signer's chain (a replay is answered as the "
            "first time)."
        ),
        rpcs=("Signed",),
        retry=Retry.FIX,
        retry_note="re-sign with a correct clock",
        in_band=True,
    ),
    Reason(
        "SEQUENCE_GAP",
        "FAILED_PRECONDITION",
        "The sequence skips numbers (an earlier envelope was refused or not sent).",
        rpcs=("Signed",),
        retry=Retry.RESYNC,
        in_band=True,
    ),
    Reason(
        "PREVIOUS_HASH_MISMATCH",
        "FAILED_PRECONDITION",
        "`previous_hash` is not the hash of the signer's last accepted envelope.",
        rpcs=("Signed",),
        retry=Retry.RESYNC,
        in_band=True,
    ),
    Reason(
        "CONTENT_TYPE_UNKNOWN",
        "INVALID_ARGUMENT",
        "No adapter reads this content type.",
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "CONTENT_TYPE_WRONG_REGION",
        "PERMISSION_DENIED",
        "The content type is another region's format; a registry publishes its own.",
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "NATIVE_RECORD_INVALID",
        "INVALID_ARGUMENT",
        (
            "The payload does not parse or validate in its region's format; every issue in "
            "`field_errors` (`row N, column` for CSV)."
        ),
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "METHODOLOGY_UNKNOWN",
        "FAILED_PRECONDITION",
        "A project names a methodology (id, version) its region has not published.",
        rpcs=("Publish",),
        retry=Retry.LATER,
        retry_note="publish the methodology first",
        in_band=True,
    ),
    Reason(
        "CAPACITY_EXCEEDS_METHODOLOGY",
        "FAILED_PRECONDITION",
        "A PV project's capacity is above its methodology's maximum.",
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "PROJECT_UNKNOWN",
        "FAILED_PRECONDITION",
        "An issuance names a project its region has not published.",
        rpcs=("Publish",),
        retry=Retry.LATER,
        in_band=True,
    ),
    Reason(
        "PROJECT_NOT_REGISTERED",
        "FAILED_PRECONDITION",
        "The project is suspended or closed and receives no issuance.",
        rpcs=("Publish",),
        retry=Retry.LATER,
        in_band=True,
    ),
    Reason(
        "MONITORING_OUTSIDE_CREDITING",
        "FAILED_PRECONDITION",
        "The monitoring period is not inside the project's crediting period.",
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "ISSUANCE_EXISTS",
        "ALREADY_EXISTS",
        "An issuance with this id was accepted before; issuances are immutable.",
        rpcs=("Publish",),
        retry=Retry.NO,
        in_band=True,
    ),
    Reason(
        "SERIALS_OVERLAP",
        "ALREADY_EXISTS",
        "The serials overlap serials the region issued before (metadata `issuance`).",
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "RECORD_CONFLICT",
        "FAILED_PRECONDITION",
        (
            "A revision changes what may not change (a project's methodology), or a methodology "
            "reference is already taken by another methodology."
        ),
        rpcs=("Publish",),
        retry=Retry.FIX,
        in_band=True,
    ),
    Reason(
        "RECORD_NOT_FOUND",
        "NOT_FOUND",
        (
            "No record with that name (GetRecord), or the recognition subject (or the project's "
            "methodology) is not published."
        ),
        rpcs=("GetRecord", "RequestRecognition"),
        retry=Retry.LATER,
    ),
    Reason(
        "CURSOR_INVALID",
        "INVALID_ARGUMENT",
        "A feed cursor or page token the gateway did not issue.",
        rpcs=(
            "Subscribe",
            "ListRecords",
            "ListTransfers",
            "ListUnitBlocks",
            "ListRetirements",
            "ListReconciliationReports",
            "ListDuplicateCases",
        ),
        retry=Retry.FIX,
    ),
    Reason(
        "GATEWAY_SHUTTING_DOWN",
        "UNAVAILABLE",
        (
            'The gateway is shutting down and ended the feed stream; `metadata["cursor"]` is '
            "the cursor to resume from (after the last event sent on this stream; the request's "
            "cursor when none was sent)."
        ),
        rpcs=("Subscribe",),
        retry=Retry.SAME,
        retry_note='subscribe again from `metadata["cursor"]`, to this or another gateway',
    ),
    Reason(
        "FAILED_PRECONDITION",
        "FAILED_PRECONDITION",
        "Base class (and DomainError's default); every raise site uses a more specific reason.",
        rpcs=(),
        retry=None,
    ),
    Reason(
        "NOT_FOUND",
        "NOT_FOUND",
        "Base class; every raise site uses a more specific reason.",
        rpcs=(),
        retry=None,
    ),
    Reason(
        "ALREADY_EXISTS",
        "ALREADY_EXISTS",
        "Base class; every raise site uses a more specific reason.",
        rpcs=(),
        retry=None,
    ),
    Reason(
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "Base class; every raise site uses a more specific reason.",
        rpcs=(),
        retry=None,
    ),
)
