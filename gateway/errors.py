"""Domain errors: raised in the core, mapped to ``google.rpc.Status`` in one place
(``gateway.rpc.status``). Pure Python: no gRPC here, so the SDK and the core share these classes.

Each error has a machine-readable ``reason`` (UPPER_SNAKE_CASE, AIP-193) and the canonical status
:class:`Code` it maps to. Every reason is declared in the catalogue (:mod:`gateway.reasons`) with
that code: defining or raising an error whose reason is not raises
:class:`~gateway.reasons.UndeclaredReason`. Clients turn statuses back into these same classes
(``gateway.client.errors``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.reasons import UndeclaredReason as UndeclaredReason
from gateway.reasons import declared

ERROR_DOMAIN = "yrd-interop"
"""The ``ErrorInfo.domain`` of every error the gateway returns."""


class Code(enum.IntEnum):
    """The canonical status codes (``google.rpc.Code``): same names and numbers as gRPC's."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class DomainError(Exception):
    """Base of every error the gateway reports to a caller. A subclass whose reason is not
    declared in :mod:`gateway.reasons` with its code cannot be defined (nor an instance made
    after its reason was changed): :class:`~gateway.reasons.UndeclaredReason`."""

    code: ClassVar[Code] = Code.FAILED_PRECONDITION
    reason: ClassVar[str] = "FAILED_PRECONDITION"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared(cls.reason, cls.code.name)

    def __init__(
        self,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        field_errors: Mapping[str, str] | None = None,
    ) -> None:
        declared(self.reason, self.code.name)
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_errors: dict[str, str] = dict(field_errors or {})


declared(DomainError.reason, DomainError.code.name)


class InvalidArgument(DomainError):
    """The request itself is malformed or impossible."""

    code = Code.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    """A named resource does not exist."""

    code = Code.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """The resource exists already with a different body."""

    code = Code.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class Unauthenticated(DomainError):
    """The caller's certificate is missing, unreadable or revoked."""

    code = Code.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class CertificateRevoked(Unauthenticated):
    """The caller's certificate is on the revocation list."""

    reason = "CERTIFICATE_REVOKED"


class IdentityMissing(Unauthenticated):
    """The certificate carries no usable region/role SAN URI."""

    reason = "IDENTITY_MISSING"


class PermissionDenied(DomainError):
    """The caller's role or region may not do this."""

    code = Code.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class RoleNotAllowed(PermissionDenied):
    """The RPC is not open to the caller's role (default deny)."""

    reason = "ROLE_NOT_ALLOWED"


class WrongRegion(PermissionDenied):
    """The caller acts for a region that is not its own."""

    reason = "WRONG_REGION"


class SigningKeyInvalid(InvalidArgument):
    """A public key is not a raw 32-byte Ed25519 key."""

    reason = "SIGNING_KEY_INVALID"


class SigningKeyExists(AlreadyExists):
    """The key is already registered."""

    reason = "SIGNING_KEY_EXISTS"


class SigningKeyNotFound(NotFound):
    """No such signing key."""

    reason = "SIGNING_KEY_NOT_FOUND"


class SigningKeyRevoked(DomainError):
    """The key was revoked and signs nothing any more."""

    code = Code.FAILED_PRECONDITION
    reason = "SIGNING_KEY_REVOKED"


class FailedPrecondition(DomainError):
    """The request is well formed but the system's state does not allow it."""

    code = Code.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class RequestMalformed(InvalidArgument):
    """The request bytes do not decode as the RPC's request message (truncated, wrong wire type,
    invalid UTF-8 in a string, nested too deep)."""

    reason = "REQUEST_MALFORMED"


# --- Record exchange (publish) -------------------------------------------------------------


class EnvelopeMalformed(InvalidArgument):
    """An envelope field is missing or has the wrong size."""

    reason = "ENVELOPE_MALFORMED"


class SignatureInvalid(InvalidArgument):
    """The signature does not verify over the envelope as received."""

    reason = "SIGNATURE_INVALID"


class SigningKeyUnknown(NotFound):
    """The envelope names a key the directory does not know."""

    reason = "SIGNING_KEY_UNKNOWN"


class SigningKeyWrongRegion(PermissionDenied):
    """The key belongs to another region than the caller's certificate."""

    reason = "SIGNING_KEY_WRONG_REGION"


class SigningKeyNotForRecords(PermissionDenied):
    """Only a registry's key signs records (administrators' keys sign decisions)."""

    reason = "SIGNING_KEY_NOT_REGISTRY"


class EnvelopeReplayed(AlreadyExists):
    """This exact envelope was accepted before."""

    reason = "ENVELOPE_REPLAYED"


class SignTimeOutOfRange(FailedPrecondition):
    """The envelope's sign_time is outside the allowed skew of the gateway's clock."""

    reason = "SIGN_TIME_OUT_OF_RANGE"


class SequenceReused(FailedPrecondition):
    """A different envelope already holds this signer's sequence number (a fork)."""

    reason = "SEQUENCE_REUSED"


class SequenceGap(FailedPrecondition):
    """The sequence skips numbers; the signer must send the missing envelopes first."""

    reason = "SEQUENCE_GAP"


class PreviousHashMismatch(FailedPrecondition):
    """The envelope does not chain to the signer's last accepted envelope (a fork)."""

    reason = "PREVIOUS_HASH_MISMATCH"


class ContentTypeUnknown(InvalidArgument):
    """No adapter reads this content type."""

    reason = "CONTENT_TYPE_UNKNOWN"


class ContentTypeWrongRegion(PermissionDenied):
    """The content type is another region's format; a registry publishes its own records."""

    reason = "CONTENT_TYPE_WRONG_REGION"


class NativeRecordInvalid(InvalidArgument):
    """The payload does not parse or validate in its region's format (all issues listed)."""

    reason = "NATIVE_RECORD_INVALID"


class MethodologyUnknown(FailedPrecondition):
    """A project names a methodology its region has not published."""

    reason = "METHODOLOGY_UNKNOWN"


class CapacityExceedsMethodology(FailedPrecondition):
    """A project's capacity is above its methodology's maximum."""

    reason = "CAPACITY_EXCEEDS_METHODOLOGY"


class ProjectUnknown(FailedPrecondition):
    """An issuance names a project its region has not published."""

    reason = "PROJECT_UNKNOWN"


class ProjectNotRegistered(FailedPrecondition):
    """The project is suspended or closed and receives no issuance."""

    reason = "PROJECT_NOT_REGISTERED"


class MonitoringOutsideCrediting(FailedPrecondition):
    """The monitoring period is not inside the project's crediting period."""

    reason = "MONITORING_OUTSIDE_CREDITING"


class IssuanceExists(AlreadyExists):
    """An issuance with this id was accepted before; issuances are immutable."""

    reason = "ISSUANCE_EXISTS"


class SerialsOverlap(AlreadyExists):
    """The serials overlap serials the origin region has already issued."""

    reason = "SERIALS_OVERLAP"


class RecordConflict(FailedPrecondition):
    """A new revision changes what a record may not change (its methodology, say)."""

    reason = "RECORD_CONFLICT"


class RecordNotFound(NotFound):
    """No record with that name."""

    reason = "RECORD_NOT_FOUND"


class CursorInvalid(InvalidArgument):
    """The feed cursor or page token was not issued by this gateway."""

    reason = "CURSOR_INVALID"


class GatewayShuttingDown(DomainError):
    """The gateway is shutting down and ended the Subscribe stream; ``metadata["cursor"]`` is
    where to resume (after the last event sent on the stream)."""

    code = Code.UNAVAILABLE
    reason = "GATEWAY_SHUTTING_DOWN"

    @property
    def cursor(self) -> str:
        """The cursor to subscribe again from."""
        return self.metadata.get("cursor", "")


# --- Transfers (numbered checks; metadata["check"] carries the number) ------------------------


class PayloadMalformed(InvalidArgument):
    """The signed payload is not the message the RPC expects."""

    reason = "PAYLOAD_MALFORMED"


class CallerNotSource(PermissionDenied):
    """Check 1: only the source region proposes, cancels and retires its units."""

    reason = "CALLER_NOT_SOURCE"


class CallerNotDestination(PermissionDenied):
    """Check 1: only the destination region accepts or rejects a transfer."""

    reason = "CALLER_NOT_DESTINATION"


class TransferIdReused(AlreadyExists):
    """Check 3: the transfer id was used before with a different request."""

    reason = "TRANSFER_ID_REUSED"


class SerialsUnknown(FailedPrecondition):
    """Check 4: some serials are in no block of the ledger."""

    reason = "SERIALS_UNKNOWN"


class SerialsNotHeld(FailedPrecondition):
    """Check 4: some serials are held by another region."""

    reason = "SERIALS_NOT_HELD"


class SerialsNotActive(FailedPrecondition):
    """Check 4: some serials are reserved by another transfer, retired or cancelled."""

    reason = "SERIALS_NOT_ACTIVE"


class InsufficientUnits(FailedPrecondition):
    """Check 4: the project and vintage do not have the quantity asked for, active and held."""

    reason = "INSUFFICIENT_UNITS"


class NotRecognised(FailedPrecondition):
    """Check 5: the destination does not recognise the units' methodology or project."""

    reason = "NOT_RECOGNISED"


class SameRegion(InvalidArgument):
    """Check 6: source and destination are the same region."""

    reason = "SAME_REGION"


class TransferNotFound(NotFound):
    """No such transfer."""

    reason = "TRANSFER_NOT_FOUND"


class TransferNotPending(FailedPrecondition):
    """The transfer was already resolved; it resolves exactly once."""

    reason = "TRANSFER_NOT_PENDING"


class AnswerDecisionMismatch(InvalidArgument):
    """A transfer answer's signed decision is not what the RPC it came on does (or is unset)."""

    reason = "ANSWER_DECISION_MISMATCH"


class VerdictMismatch(InvalidArgument):
    """A recognition verdict's signed verdict is not what the RPC it came on does (or is unset
    or unknown)."""

    reason = "VERDICT_MISMATCH"


class TransferExpired(FailedPrecondition):
    """The proposal passed its deadline before the answer came."""

    reason = "TRANSFER_EXPIRED"


class CallerNotHolder(PermissionDenied):
    """Check 1: only the holder retires its units."""

    reason = "CALLER_NOT_HOLDER"


class RetirementNotFound(NotFound):
    """No such retirement."""

    reason = "RETIREMENT_NOT_FOUND"


class RetirementIdReused(AlreadyExists):
    """Check 3: the retirement id was used before with a different request."""

    reason = "RETIREMENT_ID_REUSED"


class EtsNotWholeTonnes(FailedPrecondition):
    """Check 7: ETS offsets are made in whole tonnes."""

    reason = "ETS_NOT_WHOLE_TONNES"


class EtsRegionWithoutPolicy(FailedPrecondition):
    """Check 7: the holder region has no ETS offset policy, so no ETS offsets there."""

    reason = "ETS_REGION_WITHOUT_POLICY"


class EtsCapExceeded(FailedPrecondition):
    """Check 7: the entity's offsets for the year would pass the policy's share of its duty."""

    reason = "ETS_CAP_EXCEEDED"


class EtsOutsideCapExceeded(FailedPrecondition):
    """Check 7: offsets from units issued outside the ETS region would pass their cap."""

    reason = "ETS_OUTSIDE_CAP_EXCEEDED"


class EtsVintageOutsideWindow(FailedPrecondition):
    """Check 7: a unit's vintage is outside the policy's window before the compliance year."""

    reason = "ETS_VINTAGE_OUTSIDE_WINDOW"


class SnapshotInvalid(InvalidArgument):
    """A holdings snapshot is malformed: no header first, a bad range or state, overlapping blocks,
    a time in the future."""

    reason = "SNAPSHOT_INVALID"


class SnapshotMissing(FailedPrecondition):
    """The region has not submitted a holdings snapshot to reconcile."""

    reason = "SNAPSHOT_MISSING"


class ReportNotFound(NotFound):
    """No reconciliation report has that name."""

    reason = "REPORT_NOT_FOUND"


# --- Duplicate cases: holds, resolution, external lists --------------------------------------


class UnitsHeld(FailedPrecondition):
    """Check 4: some units belong to an issuance held by an open duplicate case; they are neither
    transferred nor retired until the case is resolved."""

    reason = "UNITS_HELD"


class DuplicateCaseNotFound(NotFound):
    """No such duplicate case."""

    reason = "DUPLICATE_CASE_NOT_FOUND"


class DuplicateCaseClosed(FailedPrecondition):
    """The duplicate case is already resolved; it is decided once."""

    reason = "DUPLICATE_CASE_CLOSED"


class CaseAlreadyDecided(AlreadyExists):
    """This administrator has already decided this duplicate case."""

    reason = "CASE_ALREADY_DECIDED"


class NotDecidingRegion(PermissionDenied):
    """The administrator's region does not decide this duplicate case."""

    reason = "NOT_DECIDING_REGION"


class StandingInvalid(InvalidArgument):
    """A case verdict's standing is not one of the case's subjects, or is set on DISTINCT."""

    reason = "STANDING_INVALID"


class ExternalListInvalid(InvalidArgument):
    """An external project list does not read (a missing column, bad rows: all issues listed)."""

    reason = "EXTERNAL_LIST_INVALID"


class StorageUnavailable(DomainError):
    """The database could not serve the request just now (connection lost, busy, deadlock or
    serialization conflict). A write may or may not have committed: the same request sent again
    takes effect once."""

    code = Code.UNAVAILABLE
    reason = "STORAGE_UNAVAILABLE"


class NotImplementedYet(DomainError):
    """The RPC is part of the contract but not served by this version."""

    code = Code.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


def all_error_classes() -> list[type[DomainError]]:
    """Every DomainError subclass, most specific first (used to map reasons back to classes)."""
    found: list[type[DomainError]] = []
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return list(reversed(found))


# --- Mutual recognition: the domain package's errors, each with its gRPC code ---------------

_KIND_BASE: dict[str, type[DomainError]] = {
    "invalid_argument": InvalidArgument,
    "permission_denied": PermissionDenied,
    "failed_precondition": FailedPrecondition,
    "not_found": NotFound,
    "already_exists": AlreadyExists,
}


def _recognition_classes() -> dict[str, type[DomainError]]:
    from mutual_recognition.errors import all_error_classes as domain_classes

    known = {cls.reason: cls for cls in all_error_classes()}
    made: dict[str, type[DomainError]] = {}
    for domain in domain_classes():
        base = _KIND_BASE[domain.kind]
        existing = known.get(domain.reason)
        if existing is not None and issubclass(existing, base):
            made[domain.reason] = existing  # the same reason, already a gateway error
            continue
        made[domain.reason] = type(
            domain.__name__, (base,), {"reason": domain.reason, "__doc__": domain.__doc__}
        )
    return made


RECOGNITION_ERRORS = _recognition_classes()
"""Reason → gateway error class for every mutual_recognition error."""


def from_recognition_error(exc: Exception) -> DomainError:
    """The gateway error for a mutual_recognition error (same reason, message and metadata)."""
    reason = getattr(exc, "reason", "")
    cls = RECOGNITION_ERRORS.get(reason, FailedPrecondition)
    return cls(str(getattr(exc, "message", exc)), metadata=dict(getattr(exc, "metadata", {})))
