"""Facts the client and the gateway share: the content types of signed bodies, transfer decisions
and outcomes, block and transfer states and their protobuf values, and resource names.

Imports only the generated code and the standard library, so the SDK can use it without the
server (``gateway.client`` builds its requests from here; the services and ``gateway.rpc`` read and
answer them from here).
"""

from __future__ import annotations

import re

from yrd.interop.v1 import records_pb2, transfer_pb2, transfer_service_pb2

# -- the protocol -------------------------------------------------------------------------------

PROTOCOL_PACKAGE = "yrd.interop.v1"
"""The proto package; a breaking change is a new package."""
PROTOCOL_VERSION = "1.2.0"
"""Semantic version of docs/protocol.md within the package (1.1.0 added GatewayInfoService,
1.2.0 StatusService, max_sign_time_skew, the validation layer, GetRetirement and
ListRetirements)."""
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
