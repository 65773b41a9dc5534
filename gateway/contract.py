"""Facts the client and the gateway share: the content types of signed bodies, transfer decisions
and outcomes, block and transfer states and their protobuf values, and resource names.

Imports only the generated code and the standard library, so the SDK can use it without the
server (``gateway.client`` builds its requests from here; the services and ``gateway.rpc`` read and
answer them from here).
"""

from __future__ import annotations

import re

from yrd.interop.v1 import duplicates_pb2, records_pb2, transfer_pb2, transfer_service_pb2

# -- the protocol -------------------------------------------------------------------------------

PROTOCOL_PACKAGE = "yrd.interop.v1"
"""The proto package; a breaking change is a new package."""
PROTOCOL_VERSION = "1.4.1"
"""Semantic version of docs/protocol.md within the package (1.1.0 added GatewayInfoService,
1.2.0 StatusService, max_sign_time_skew, the validation layer, GetRetirement and
ListRetirements; 1.3.0 the identity keys of projects, held units (UNIT_BLOCK_STATE_HELD) and
DuplicateService; 1.4.0 holdings streamed as columns, HeldBlockColumns; 1.4.1 a snapshot's
registry blocks stored as runs, ledger blocks tiling a registry block held alike)."""
MAX_REQUEST_ID_CHARS = 120
"""Longest ``transfer_id`` / ``retirement_id`` (code points; no ``/``)."""

# -- content types of signed bodies ------------------------------------------------------------

PROPOSAL_TYPE = "application/vnd.yrd.transfer-proposal+proto"
"""A ``TransferProposal`` (ProposeTransfer)."""
ANSWER_TYPE = "application/vnd.yrd.transfer-answer+proto"
"""A ``TransferAnswer`` (AcceptTransfer, RejectTransfer, CancelTransfer)."""
RETIREMENT_TYPE = "application/vnd.yrd.retirement-order+proto"
"""A ``RetirementOrder`` (Retire)."""
APPLICATION_TYPE = "application/vnd.yrd.recognition-application+proto"
"""A ``RecognitionApplication`` (RequestRecognition)."""
VERDICT_TYPE = "application/vnd.yrd.recognition-verdict+proto"
"""A ``RecognitionVerdict`` (ApproveRecognition, RejectRecognition)."""
REVOCATION_TYPE = "application/vnd.yrd.recognition-revocation+proto"
"""A ``RecognitionRevocation`` (RevokeRecognition)."""
CASE_VERDICT_TYPE = "application/vnd.yrd.case-verdict+proto"
"""A ``CaseVerdict`` (ResolveDuplicateCase)."""

# -- unit blocks: stored state names ⇄ protobuf ------------------------------------------------

ACTIVE, RESERVED, RETIRED, CANCELLED = "active", "reserved", "retired", "cancelled"
HELD = "held"
"""Units of an issuance a duplicate case holds: neither transferred nor retired until resolved."""

BLOCK_STATE_PROTO: dict[str, records_pb2.UnitBlockState.ValueType] = {
    ACTIVE: records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    RESERVED: records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER,
    RETIRED: records_pb2.UNIT_BLOCK_STATE_RETIRED,
    CANCELLED: records_pb2.UNIT_BLOCK_STATE_CANCELLED,
    HELD: records_pb2.UNIT_BLOCK_STATE_HELD,
}
"""The protobuf state of a block, by its stored state name."""
BLOCK_STATE_OF: dict[int, str] = {v: k for k, v in BLOCK_STATE_PROTO.items()}
"""The stored state name of a protobuf block state (UNSPECIFIED is absent)."""

# -- transfers: stored state names ⇄ protobuf, decisions ---------------------------------------

PROPOSED, COMPLETED, REJECTED, CANCELLED_T, EXPIRED = (
    "PROPOSED",
    "COMPLETED",
    "REJECTED",
    "CANCELLED",
    "EXPIRED",
)

TRANSFER_STATE_PROTO: dict[str, transfer_pb2.TransferState.ValueType] = {
    PROPOSED: transfer_pb2.TRANSFER_STATE_PROPOSED,
    COMPLETED: transfer_pb2.TRANSFER_STATE_COMPLETED,
    REJECTED: transfer_pb2.TRANSFER_STATE_REJECTED,
    CANCELLED_T: transfer_pb2.TRANSFER_STATE_CANCELLED,
    EXPIRED: transfer_pb2.TRANSFER_STATE_EXPIRED,
}
"""The protobuf state of a transfer, by its stored state name."""
TRANSFER_STATE_OF: dict[int, str] = {v: k for k, v in TRANSFER_STATE_PROTO.items()}
"""The stored state name of a protobuf transfer state (UNSPECIFIED is absent)."""

DECISION: dict[str, transfer_service_pb2.TransferDecision.ValueType] = {
    COMPLETED: transfer_service_pb2.TRANSFER_DECISION_ACCEPT,
    REJECTED: transfer_service_pb2.TRANSFER_DECISION_REJECT,
    CANCELLED_T: transfer_service_pb2.TRANSFER_DECISION_CANCEL,
}
"""The signed decision each answer RPC requires, by the state it resolves a transfer to."""
ANSWER_OUTCOME = {"accept": COMPLETED, "reject": REJECTED, "cancel": CANCELLED_T}
"""The state each answer (by its method's name) resolves a transfer to."""


def answer_payload(transfer: str, outcome: str, reason: str = "") -> bytes:
    """The signed body of an answer resolving ``transfer`` to ``outcome`` (COMPLETED, REJECTED
    or CANCELLED)."""
    return transfer_service_pb2.TransferAnswer(
        transfer=transfer, reason=reason, decision=DECISION[outcome]
    ).SerializeToString()


# -- resource names ----------------------------------------------------------------------------

RECOGNITIONS = "recognitions/"
RECONCILIATIONS = "reconciliations/"
_TRANSFER_NAME = re.compile(r"^regions/([0-9]{6})/transfers/([^/]{1,120})$")


def transfer_name(source: str, transfer_id: str) -> str:
    """``regions/{source}/transfers/{transfer_id}``."""
    return f"regions/{source}/transfers/{transfer_id}"


def parse_transfer_name(name: str) -> tuple[str, str] | None:
    """(source region, transfer id) of a transfer name; None when ``name`` is not one."""
    match = _TRANSFER_NAME.match(name)
    return (match[1], match[2]) if match else None


def retirement_name(holder: str, retirement_id: str) -> str:
    """``regions/{holder}/retirements/{retirement_id}``."""
    return f"regions/{holder}/retirements/{retirement_id}"


def block_name(origin: str, block_id: int) -> str:
    """``regions/{origin}/blocks/{block_id}``."""
    return f"regions/{origin}/blocks/{block_id}"


def snapshot_name(region: str, snapshot_id: int) -> str:
    """``regions/{region}/snapshots/{snapshot_id}``."""
    return f"regions/{region}/snapshots/{snapshot_id}"


def key_name(region: str, key_id: str) -> str:
    """``regions/{region}/keys/{key_id}`` (the audit subject of a signing key)."""
    return f"regions/{region}/keys/{key_id}"


def methodology_name(region: str, methodology_id: str) -> str:
    """``regions/{region}/methodologies/{methodology_id}``."""
    return f"regions/{region}/methodologies/{methodology_id}"


def recognition_name(recognition_id: str) -> str:
    """``recognitions/{id}``."""
    return RECOGNITIONS + recognition_id


def recognition_id(name: str) -> str:
    """The id of a recognition name (``recognitions/{id}`` → ``{id}``)."""
    return name.removeprefix(RECOGNITIONS)


def is_recognition_name(name: str) -> bool:
    """Whether ``name`` names a recognition (not a project or methodology, say)."""
    return name.startswith(RECOGNITIONS)


def reconciliation_name(report_id: int | str) -> str:
    """``reconciliations/{id}``."""
    return f"{RECONCILIATIONS}{report_id}"


def is_reconciliation_name(name: str) -> bool:
    """Whether ``name`` names a reconciliation report (not a bare id)."""
    return name.startswith(RECONCILIATIONS)


# -- duplicate cases: resource names, stored names ⇄ protobuf -----------------------------------

DUPLICATE_CASES = "duplicateCases/"
DUPLICATE_CASE_NAME = re.compile(r"duplicateCases/([A-Za-z0-9][A-Za-z0-9_-]{0,39})", re.ASCII)
"""A duplicate case name (``fullmatch``; group 1: the case id)."""
EXTERNAL_PROJECT_NAME = re.compile(r"schemes/([A-Z0-9]{1,20})/projects/([^/\s]{1,80})", re.ASCII)
"""An external project name (``fullmatch``; groups: scheme, scheme project id)."""
PROJECT_NAME = re.compile(r"regions/([0-9]{6})/projects/([^/\s]{1,128})", re.ASCII)
"""A region's project name (``fullmatch``; groups: region, project id)."""


def duplicate_case_name(case_id: str) -> str:
    """``duplicateCases/{case_id}``."""
    return DUPLICATE_CASES + case_id


def parse_duplicate_case_name(name: str) -> str | None:
    """The case id of a duplicate case name; None when ``name`` is not one."""
    match = DUPLICATE_CASE_NAME.fullmatch(name)
    return match[1] if match else None


def project_name(region: str, project_id: str) -> str:
    """``regions/{region}/projects/{project_id}``."""
    return f"regions/{region}/projects/{project_id}"


def external_project_name(scheme: str, scheme_project_id: str) -> str:
    """``schemes/{scheme}/projects/{scheme_project_id}`` (a project of another scheme)."""
    return f"schemes/{scheme}/projects/{scheme_project_id}"


def parse_external_project_name(name: str) -> tuple[str, str] | None:
    """(scheme, scheme project id) of an external project name; None when it is not one."""
    match = EXTERNAL_PROJECT_NAME.fullmatch(name)
    return (match[1], match[2]) if match else None


def subject_region(subject: str) -> str | None:
    """The region of a region's project name (a duplicate case's subject); None for an external
    project (or anything else)."""
    match = PROJECT_NAME.fullmatch(subject)
    return match[1] if match else None


CASE_OPEN, CASE_DISTINCT, CASE_DUPLICATE = "OPEN", "DISTINCT", "DUPLICATE"

CASE_STATE_PROTO: dict[str, duplicates_pb2.DuplicateCaseState.ValueType] = {
    CASE_OPEN: duplicates_pb2.DUPLICATE_CASE_STATE_OPEN,
    CASE_DISTINCT: duplicates_pb2.DUPLICATE_CASE_STATE_DISTINCT,
    CASE_DUPLICATE: duplicates_pb2.DUPLICATE_CASE_STATE_DUPLICATE,
}
"""The protobuf state of a duplicate case, by its stored state name."""
CASE_STATE_OF: dict[int, str] = {v: k for k, v in CASE_STATE_PROTO.items()}
"""The stored state name of a protobuf case state (UNSPECIFIED is absent)."""

CASE_RESOLUTION_PROTO: dict[str, duplicates_pb2.CaseResolution.ValueType] = {
    CASE_DISTINCT: duplicates_pb2.CASE_RESOLUTION_DISTINCT,
    CASE_DUPLICATE: duplicates_pb2.CASE_RESOLUTION_DUPLICATE,
}
"""The protobuf resolution, by its stored name (a resolved case's state is its resolution)."""
CASE_RESOLUTION_OF: dict[int, str] = {v: k for k, v in CASE_RESOLUTION_PROTO.items()}
"""The stored name of a protobuf resolution (UNSPECIFIED is absent)."""

MATCH_STRENGTH_PROTO: dict[str, duplicates_pb2.MatchStrength.ValueType] = {
    duplicates_pb2.MatchStrength.Name(v): v
    for v in duplicates_pb2.MatchStrength.values()
    if v != duplicates_pb2.MATCH_STRENGTH_UNSPECIFIED
}
"""The protobuf match strength, by its stored name (the enum name, ``MATCH_STRENGTH_CERTAIN``)."""
MATCH_STRENGTH_OF: dict[int, str] = {v: k for k, v in MATCH_STRENGTH_PROTO.items()}
"""The stored name of a protobuf match strength (UNSPECIFIED is absent)."""

DUPLICATE_RULE_PROTO: dict[str, duplicates_pb2.DuplicateRule.ValueType] = {
    duplicates_pb2.DuplicateRule.Name(v): v
    for v in duplicates_pb2.DuplicateRule.values()
    if v != duplicates_pb2.DUPLICATE_RULE_UNSPECIFIED
}
"""The protobuf rule, by its stored name (the enum name, ``DUPLICATE_RULE_SAME_GRID_ACCOUNT``)."""
DUPLICATE_RULE_OF: dict[int, str] = {v: k for k, v in DUPLICATE_RULE_PROTO.items()}
"""The stored name of a protobuf rule (UNSPECIFIED is absent)."""

HOLD_HELD, HOLD_RELEASED, HOLD_CANCELLED = "held", "released", "cancelled"

HOLD_OUTCOME_PROTO: dict[str, duplicates_pb2.HoldOutcome.ValueType] = {
    HOLD_HELD: duplicates_pb2.HOLD_OUTCOME_HELD,
    HOLD_RELEASED: duplicates_pb2.HOLD_OUTCOME_RELEASED,
    HOLD_CANCELLED: duplicates_pb2.HOLD_OUTCOME_CANCELLED,
}
"""The protobuf outcome of a case's hold, by its stored name."""
