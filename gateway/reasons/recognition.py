"""Catalogue, part 3: the recognition domain's reasons (mutual_recognition/errors.py, mapped by
gateway/errors.py; their code follows their ``kind``) and CheckRecognized's answer reasons."""

from __future__ import annotations

from gateway.reasons.model import AnswerReason, Reason, Retry

REASONS: tuple[Reason, ...] = (
    Reason(
        "NOT_AN_ADMINISTRATOR",
        "PERMISSION_DENIED",
        "Only an administrator decides or revokes.",
        rpcs=("Decide", "RevokeRecognition"),
        retry=Retry.NO,
        domain="recognition",
    ),
    Reason(
        "REQUESTER_CANNOT_APPROVE",
        "PERMISSION_DENIED",
        "An administrator of the requesting region tried to decide for the recogniser.",
        rpcs=("Decide", "RevokeRecognition"),
        retry=Retry.NO,
        domain="recognition",
    ),
    Reason(
        "ALREADY_DECIDED_BY_ADMIN",
        "ALREADY_EXISTS",
        "This administrator already decided on this recognition (one person counts once).",
        rpcs=("Decide",),
        retry=Retry.NO,
        domain="recognition",
    ),
    Reason(
        "RECOGNITION_EXISTS",
        "ALREADY_EXISTS",
        (
            "An open or in-force recognition of the same subject by an asked region exists "
            "(metadata `recognition`)."
        ),
        rpcs=("RequestRecognition",),
        retry=Retry.LATER,
        domain="recognition",
    ),
    Reason(
        "RECOGNITION_EXPIRED",
        "FAILED_PRECONDITION",
        "The recognition (or the undecided request) is past its expiry date.",
        rpcs=("Decide", "RevokeRecognition"),
        retry=Retry.NO,
        domain="recognition",
    ),
    Reason(
        "INVALID_STATE_TRANSITION",
        "FAILED_PRECONDITION",
        (
            "The state does not allow it (deciding a non-REQUESTED one, e.g. quorum reached; "
            "revoking a non-APPROVED one)."
        ),
        rpcs=("Decide", "RevokeRecognition"),
        retry=Retry.NO,
        domain="recognition",
    ),
    Reason(
        "RECOGNITION_NOT_FOUND",
        "NOT_FOUND",
        "No recognition with that name.",
        rpcs=("GetRecognition", "Decide", "RevokeRecognition"),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "VERDICT_MISMATCH",
        "INVALID_ARGUMENT",
        (
            "A recognition verdict's signed `verdict` is not what the RPC does (`APPROVE` on "
            "ApproveRecognition, `REJECT` on RejectRecognition), or is unset or unknown "
            "(metadata `verdict`: the signed value's enum name, or its number)."
        ),
        rpcs=("Decide",),
        retry=Retry.FIX,
    ),
    Reason(
        "COMMENT_REQUIRED",
        "INVALID_ARGUMENT",
        "A decision needs a non-blank comment.",
        rpcs=("Decide",),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "REASON_REQUIRED",
        "INVALID_ARGUMENT",
        "A revocation needs a non-blank reason.",
        rpcs=("RevokeRecognition",),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "INVALID_CONDITIONS",
        "INVALID_ARGUMENT",
        (
            "Vintage years out of 1900–9999 or reversed, ratio not in (0, 1], expiry date already "
            "past."
        ),
        rpcs=("RequestRecognition",),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "INVALID_SUBJECT",
        "INVALID_ARGUMENT",
        (
            "The subject name is malformed, does not fit its kind, or a methodology lacks its "
            "version."
        ),
        rpcs=("RequestRecognition",),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "UNKNOWN_REGION",
        "INVALID_ARGUMENT",
        "A region code is malformed or not served.",
        rpcs=("RequestRecognition", "CheckRecognized"),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "SELF_RECOGNITION",
        "INVALID_ARGUMENT",
        "A region asked itself (or there is no other region).",
        rpcs=("RequestRecognition",),
        retry=Retry.FIX,
        domain="recognition",
    ),
    Reason(
        "INVALID_POLICY",
        "INVALID_ARGUMENT",
        (
            "Defined; raised only when the approval policy configuration is built (at start), "
            "never on an RPC."
        ),
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "UNKNOWN_UNIT",
        "INVALID_ARGUMENT",
        (
            'Defined; the assessment reports unknown units as "not comparable" instead, so never '
            "sent."
        ),
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "INCOMPATIBLE_UNIT",
        "INVALID_ARGUMENT",
        "Defined; not reached from any RPC today.",
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "INVALID_QUANTITY",
        "INVALID_ARGUMENT",
        "Defined; not reached from any RPC today.",
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "INVALID_RATIO",
        "INVALID_ARGUMENT",
        "Defined; not reached from any RPC today.",
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "NOT_YET_EXPIRED",
        "FAILED_PRECONDITION",
        "Defined for the domain's `expire()`; no RPC calls it.",
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
    Reason(
        "RECOGNITION_ERROR",
        "FAILED_PRECONDITION",
        "Base class; also the fallback mapping for an unknown domain reason. Never expected.",
        rpcs=(),
        retry=None,
        domain="recognition",
    ),
)

ANSWERS: tuple[AnswerReason, ...] = (
    AnswerReason(
        "ORIGIN_REGION",
        True,
        "The units are the region's own (reason left empty on the wire when recognised).",
    ),
    AnswerReason(
        "RECOGNISED",
        True,
        "An approved recognition in force covers them (reason left empty on the wire).",
    ),
    AnswerReason(
        "NOT_RECOGNISED",
        False,
        (
            "No recognition of the project or of its methodology version by that region (or"
            " unknown project)."
        ),
    ),
    AnswerReason(
        "RECOGNITION_PENDING", False, "The newest relevant recognition is still requested."
    ),
    AnswerReason("RECOGNITION_REJECTED", False, "The newest relevant recognition was rejected."),
    AnswerReason("RECOGNITION_REVOKED", False, "The newest relevant recognition was revoked."),
    AnswerReason(
        "RECOGNITION_EXPIRED",
        False,
        "The newest relevant recognition expired (or expired undecided).",
    ),
    AnswerReason(
        "VINTAGE_OUTSIDE_RECOGNITION", False, "The recognition does not cover that vintage."
    ),
    AnswerReason(
        "DELTA_WIDE_INCOMPLETE",
        False,
        "An all-or-nothing delta-wide recognition whose group is not wholly in force.",
    ),
    AnswerReason(
        "PROJECT_REJECTED",
        False,
        "The region rejected this project (blocks a methodology-level recognition).",
    ),
    AnswerReason(
        "PROJECT_REVOKED",
        False,
        "The region revoked its recognition of this project (blocks likewise).",
    ),
)
