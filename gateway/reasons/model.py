"""What the reason catalogue declares about each reason. Pure Python, no gRPC."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Retry(enum.StrEnum):
    """Whether sending again can help."""

    SAME = "same"
    """Send the very same bytes again: the outcome was unknown (a signed request takes effect
    once however often it is sent)."""
    FIX = "fix"
    """Only a corrected request can succeed."""
    LATER = "later"
    """The same request may succeed once the state changes (another party acts, time passes)."""
    RESYNC = "resync"
    """Re-sign from the gateway's chain head (``ListSigningKeys``)."""
    NO = "no"
    """Never: the refusal is final."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One ``ErrorInfo.reason`` (for Publish also ``EnvelopeResult.reason``).

    ``rpcs`` holds RPC method names and group names (:data:`GROUPS`); empty means the reason is
    declared (a class carries it) but no RPC sends it today. ``check`` is the numbered transfer
    check the refusal carries in ``metadata["check"]``; ``in_band`` is true when Publish reports
    it in ``EnvelopeResult`` rather than as the call's status.
    """

    name: str
    code: str
    """The gRPC status code name (``google.rpc.Code``), e.g. ``FAILED_PRECONDITION``."""
    meaning: str
    rpcs: tuple[str, ...]
    retry: Retry | None
    """None exactly when no RPC sends it."""
    retry_note: str = ""
    check: int | None = None
    check_note: str = ""
    in_band: bool = False
    domain: str = "gateway"
    """Where the error class lives: ``gateway`` (gateway/errors.py) or ``recognition``
    (mutual_recognition/errors.py, mapped by gateway/errors.py)."""

    @property
    def sent(self) -> bool:
        """Whether some RPC can return it."""
        return bool(self.rpcs)


@dataclass(frozen=True, slots=True)
class AnswerReason:
    """A ``CheckRecognizedResponse.reason``: an answer with status OK, not an error."""

    name: str
    recognised: bool
    meaning: str


ANSWER_RPCS = ("AcceptTransfer", "RejectTransfer", "CancelTransfer")
DECIDE_RPCS = ("ApproveRecognition", "RejectRecognition")
PUBLISH_RPCS = ("Publish", "PublishEnvelope")
SIGNED_RPCS = (
    *PUBLISH_RPCS,
    "ProposeTransfer",
    *ANSWER_RPCS,
    "Retire",
    "RequestRecognition",
    *DECIDE_RPCS,
    "RevokeRecognition",
    "ResolveDuplicateCase",
)
GROUPS: dict[str, tuple[str, ...]] = {
    "Answer": ANSWER_RPCS,
    "Decide": DECIDE_RPCS,
    "Publish": PUBLISH_RPCS,
    "Signed": SIGNED_RPCS,
}
"""Group names usable in ``Reason.rpcs``; ``*`` means every RPC."""
