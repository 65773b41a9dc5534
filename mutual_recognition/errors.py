"""Typed errors of the recognition domain.

Every error has a machine-readable ``reason`` (UPPER_SNAKE_CASE, unique per class) and a ``kind``
naming the gRPC status family it belongs to, so the gateway maps all of them in one place:
``invalid_argument``, ``permission_denied``, ``failed_precondition``, ``not_found`` or
``already_exists``. ``metadata`` holds string details suitable for ``google.rpc.ErrorInfo``.
A refused operation never changes anything: the functions that raise these return new objects
only on success.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

__all__ = [
    "ERROR_KINDS",
    "AlreadyDecidedByAdmin",
    "CommentRequired",
    "ErrorKind",
    "IncompatibleUnit",
    "InvalidConditions",
    "InvalidPolicy",
    "InvalidQuantity",
    "InvalidRatio",
    "InvalidStateTransition",
    "InvalidSubject",
    "NotAnAdministrator",
    "NotYetExpired",
    "ReasonRequired",
    "RecognitionAlreadyExists",
    "RecognitionError",
    "RecognitionExpired",
    "RecognitionNotFound",
    "RequesterCannotApprove",
    "RoleNotAllowed",
    "SelfRecognition",
    "UnknownRegion",
    "UnknownUnit",
    "WrongRegion",
    "all_error_classes",
]

ErrorKind = Literal[
    "invalid_argument", "permission_denied", "failed_precondition", "not_found", "already_exists"
]
ERROR_KINDS: frozenset[str] = frozenset(
    {"invalid_argument", "permission_denied", "failed_precondition", "not_found", "already_exists"}
)


class RecognitionError(Exception):
    """Base of every error this package raises on purpose."""

    reason: ClassVar[str] = "RECOGNITION_ERROR"
    kind: ClassVar[ErrorKind] = "failed_precondition"

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


# --- permission_denied ---------------------------------------------------------------------


class NotAnAdministrator(RecognitionError):
    """Only an administrator decides (approve, reject, revoke); registries and the gateway not."""

    reason = "NOT_AN_ADMINISTRATOR"
    kind = "permission_denied"


class RoleNotAllowed(RecognitionError):
    """The actor's role may not do this (e.g. the gateway role requesting a recognition)."""

    reason = "ROLE_NOT_ALLOWED"
    kind = "permission_denied"


class WrongRegion(RecognitionError):
    """The actor acts for another region than the one the operation belongs to."""

    reason = "WRONG_REGION"
    kind = "permission_denied"


class RequesterCannotApprove(RecognitionError):
    """An administrator of the requesting region tried to decide for the recognising region."""

    reason = "REQUESTER_CANNOT_APPROVE"
    kind = "permission_denied"


# --- already_exists ------------------------------------------------------------------------


class AlreadyDecidedByAdmin(RecognitionError):
    """This administrator has already decided on this recognition; one person counts once."""

    reason = "ALREADY_DECIDED_BY_ADMIN"
    kind = "already_exists"


class RecognitionAlreadyExists(RecognitionError):
    """An open or in-force recognition of the same subject by the same region exists."""

    reason = "RECOGNITION_EXISTS"
    kind = "already_exists"


# --- failed_precondition -------------------------------------------------------------------


class RecognitionExpired(RecognitionError):
    """The recognition is past its expiry date; nobody decides on it any more."""

    reason = "RECOGNITION_EXPIRED"
    kind = "failed_precondition"


class InvalidStateTransition(RecognitionError):
    """The recognition's state does not allow this operation (e.g. approving a rejected one)."""

    reason = "INVALID_STATE_TRANSITION"
    kind = "failed_precondition"


class NotYetExpired(RecognitionError):
    """``expire`` was called on a recognition whose expiry date has not passed."""

    reason = "NOT_YET_EXPIRED"
    kind = "failed_precondition"


# --- not_found -----------------------------------------------------------------------------


class RecognitionNotFound(RecognitionError):
    """No recognition with that name (raised by the storage layer, defined here for one map)."""

    reason = "RECOGNITION_NOT_FOUND"
    kind = "not_found"


# --- invalid_argument ----------------------------------------------------------------------


class CommentRequired(RecognitionError):
    """A decision needs a non-blank comment."""

    reason = "COMMENT_REQUIRED"
    kind = "invalid_argument"


class ReasonRequired(RecognitionError):
    """A revocation needs a non-blank reason."""

    reason = "REASON_REQUIRED"
    kind = "invalid_argument"


class InvalidConditions(RecognitionError):
    """Vintage range, adjustment ratio or expiry date are out of range or inconsistent."""

    reason = "INVALID_CONDITIONS"
    kind = "invalid_argument"


class InvalidSubject(RecognitionError):
    """The subject's resource name or version is malformed or does not fit its kind."""

    reason = "INVALID_SUBJECT"
    kind = "invalid_argument"


class UnknownRegion(RecognitionError):
    """A region code is malformed or not one of the regions the gateway serves."""

    reason = "UNKNOWN_REGION"
    kind = "invalid_argument"


class SelfRecognition(RecognitionError):
    """A region asked itself to recognise its own subject."""

    reason = "SELF_RECOGNITION"
    kind = "invalid_argument"


class InvalidPolicy(RecognitionError):
    """The approval policy configuration is malformed."""

    reason = "INVALID_POLICY"
    kind = "invalid_argument"


class UnknownUnit(RecognitionError):
    """A unit is not one this package knows how to normalise; it is never guessed."""

    reason = "UNKNOWN_UNIT"
    kind = "invalid_argument"


class IncompatibleUnit(RecognitionError):
    """A known unit of another dimension (e.g. gCO2/km where kgCO2/kWh is needed)."""

    reason = "INCOMPATIBLE_UNIT"
    kind = "invalid_argument"


class InvalidQuantity(RecognitionError):
    """A value is not a plain non-negative decimal string, or a gram count is not a natural."""

    reason = "INVALID_QUANTITY"
    kind = "invalid_argument"


class InvalidRatio(RecognitionError):
    """An adjustment ratio is not an exact fraction in (0, 1]."""

    reason = "INVALID_RATIO"
    kind = "invalid_argument"


def all_error_classes() -> list[type[RecognitionError]]:
    """Every error class of this package, base last (for the gateway's one mapping table)."""
    found: list[type[RecognitionError]] = []
    pending: list[type[RecognitionError]] = [RecognitionError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return list(reversed(found))
