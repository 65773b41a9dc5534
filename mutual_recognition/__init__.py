"""Mutual recognition domain (requests, assessment, approval policy, revocation).

Pure Python: no gRPC, no database, no I/O. The gateway's service layer stores the values and
calls these functions; every function returns new frozen values or raises a ``RecognitionError``
(``reason`` + ``kind``) and changes nothing.

- ``model``: ``Recognition`` and its parts, ``Actor``.
- ``policy``: ``ApprovalPolicy``.
- ``lifecycle``: ``request``, ``approve``, ``reject``, ``revoke``, ``expire``, ``effective_state``.
- ``assessment``: ``assess`` (equivalence of two methodologies); ``units``: exact normalisation.
- ``check``: ``is_recognised``; ``credit``: ``ets_offset_credit``; ``offsets``: ``EtsOffsetPolicy``.
"""

from mutual_recognition.assessment import (
    Assessment,
    Difference,
    DifferenceKind,
    MatchedBy,
    ParameterComparison,
    Quantity,
    assess,
    choose_counterpart,
)
from mutual_recognition.check import Verdict, group_complete, is_recognised
from mutual_recognition.credit import OffsetCredit, ets_offset_credit
from mutual_recognition.errors import (
    AlreadyDecidedByAdmin,
    CommentRequired,
    IncompatibleUnit,
    InvalidConditions,
    InvalidPolicy,
    InvalidQuantity,
    InvalidRatio,
    InvalidStateTransition,
    InvalidSubject,
    NotAnAdministrator,
    NotYetExpired,
    ReasonRequired,
    RecognitionAlreadyExists,
    RecognitionError,
    RecognitionExpired,
    RecognitionNotFound,
    RequesterCannotApprove,
    RoleNotAllowed,
    SelfRecognition,
    UnknownRegion,
    UnknownUnit,
    WrongRegion,
    all_error_classes,
)
from mutual_recognition.lifecycle import (
    approve,
    effective_state,
    expire,
    in_force,
    is_open,
    reject,
    remaining_approvals,
    request,
    revoke,
)
from mutual_recognition.model import (
    DELTA_REGIONS,
    DELTA_TZ,
    Actor,
    Conditions,
    Decision,
    DecisionVerdict,
    Recognition,
    RecognitionState,
    Role,
    Subject,
    SubjectKind,
)
from mutual_recognition.offsets import EtsOffsetPolicy
from mutual_recognition.policy import ApprovalPolicy
from mutual_recognition.units import (
    Dimension,
    format_fraction,
    normalise,
    normalise_emission_factor,
    render_normalised,
)

__all__ = [
    "DELTA_REGIONS",
    "DELTA_TZ",
    "Actor",
    "AlreadyDecidedByAdmin",
    "ApprovalPolicy",
    "Assessment",
    "CommentRequired",
    "Conditions",
    "Decision",
    "DecisionVerdict",
    "Difference",
    "DifferenceKind",
    "Dimension",
    "EtsOffsetPolicy",
    "IncompatibleUnit",
    "InvalidConditions",
    "InvalidPolicy",
    "InvalidQuantity",
    "InvalidRatio",
    "InvalidStateTransition",
    "InvalidSubject",
    "MatchedBy",
    "NotAnAdministrator",
    "NotYetExpired",
    "OffsetCredit",
    "ParameterComparison",
    "Quantity",
    "ReasonRequired",
    "Recognition",
    "RecognitionAlreadyExists",
    "RecognitionError",
    "RecognitionExpired",
    "RecognitionNotFound",
    "RecognitionState",
    "RequesterCannotApprove",
    "Role",
    "RoleNotAllowed",
    "SelfRecognition",
    "Subject",
    "SubjectKind",
    "UnknownRegion",
    "UnknownUnit",
    "Verdict",
    "WrongRegion",
    "all_error_classes",
    "approve",
    "assess",
    "choose_counterpart",
    "effective_state",
    "ets_offset_credit",
    "expire",
    "format_fraction",
    "group_complete",
    "in_force",
    "is_open",
    "is_recognised",
    "normalise",
    "normalise_emission_factor",
    "reject",
    "remaining_approvals",
    "render_normalised",
    "request",
    "revoke",
]
