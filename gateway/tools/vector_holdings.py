"""Vectors for holdings streamed to ``ReconciliationService.SubmitHoldings`` (docs/protocol.md
§11.4), ``HeldBlockColumns`` above all: stream messages as protobuf bytes, the blocks they mean
and what the gateway answers, computed by the gateway's own code — each message decoded from its
bytes, checked by the validation layer (``gateway.validation``), given to ``SnapshotBuilder.take``
as the servicer gives it, and the snapshot stored by ``ReconciliationService.store_snapshot`` in a
migrated SQLite database in a temporary directory (the overlap check runs in SQL there). A refusal
is recorded as ``gateway.rpc.status`` maps it to the wire."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from google.rpc import error_details_pb2
from structlog.testing import capture_logs
from yrd.interop.v1 import reconciliation_service_pb2, records_pb2

from gateway import errors
from gateway.client.reconciliation import HeldTuple, holdings_requests
from gateway.contract import BLOCK_STATE_PROTO
from gateway.rpc.status import status_proto
from gateway.services.reconciliation import ReconciliationService
from gateway.services.snapshots import SnapshotBuilder
from gateway.storage.db import Database
from gateway.tools.vector_cases import GATEWAY_SEED, Json, document, example_key
from gateway.validation import applies_to
from gateway.validation import check as validate

Request = reconciliation_service_pb2.SubmitHoldingsRequest
REGION = "310000"
"""The submitting registry (Shanghai's, as in every vector)."""
SNAPSHOT_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
CLOCK = SNAPSHOT_TIME + dt.timedelta(hours=1)
"""The gateway's clock while the vectors are stored (after the snapshot time)."""

A, T, R, C, H = (
    records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER,
    records_pb2.UNIT_BLOCK_STATE_RETIRED,
    records_pb2.UNIT_BLOCK_STATE_CANCELLED,
    records_pb2.UNIT_BLOCK_STATE_HELD,
)
SH, JS = "310000", "320000"

_PLAIN: list[HeldTuple] = [(SH, 1000, 1999, A), (SH, 5000, 5999, A), (SH, 10_000, 10_499, A)]
_MIXED: list[HeldTuple] = [(SH, 1000 * i, 1000 * i + 999, s) for i, s in enumerate((A, T, R, C, H))]
_LARGE: list[HeldTuple] = [
    (JS, 2**53 + 1, 2**53 + 1, A),  # the first integer a binary64 double cannot hold
    (JS, 2**53 + 3, 2**63 - 1, R),  # the largest serial an int64 holds
]
_ORIGINS: list[HeldTuple] = [
    (SH, 100, 199, A),
    (JS, 100, 149, A),
    (SH, 300, 399, R),
    (SH, 500, 599, A),
    (JS, 200, 249, H),
]
"""Two origins interleaved: the canonical stream regroups them per origin."""

# (id, description, blocks in the order a client is given them, batch, form)
_VALID: list[tuple[str, str, list[HeldTuple], int, str]] = [
    ("H1", "one origin, three active blocks, as one HeldBlockColumns", _PLAIN, 10_000, "columns"),
    (
        "H2",
        "the blocks of H1 as one HeldBlockBatch (pre-1.4.0 form): other bytes, the same blocks",
        _PLAIN,
        10_000,
        "blocks",
    ),
    ("H3", "one block in each of the five states, one batch of columns", _MIXED, 10_000, "columns"),
    (
        "H4",
        "serials beyond 2^53 (2^53+1, and 2^63-1 as an end): int64, never a double",
        _LARGE,
        10_000,
        "columns",
    ),
    (
        "H5",
        "two origins interleaved, batch 2: per origin in the order given, a message whenever 2 of"
        " one origin are pending, the rest at the end in the order their origin was first pending",
        _ORIGINS,
        2,
        "columns",
    ),
]


def _columns(
    origin: str, starts: Sequence[int], ends: Sequence[int], states: Sequence[int]
) -> Request:
    return Request(
        columns=reconciliation_service_pb2.HeldBlockColumns(
            origin_region=origin,
            serial_starts=starts,
            serial_ends=ends,
            states=states,  # type: ignore[arg-type]
        )
    )


def _batch(blocks: Sequence[HeldTuple]) -> Request:
    request = Request()
    for origin, start, end, state in blocks:
        block = request.blocks.blocks.add(origin_region=origin, state=state)
        block.serials.start, block.serials.end = start, end
    return request


def _header() -> Request:
    return next(holdings_requests(SNAPSHOT_TIME, []))


_GOOD = _columns(SH, [1000, 2000], [1999, 2999], [A, A])
"""Blocks 0 and 1 of a refused stream, before the batch at fault."""

# (id, description, the stream's messages)
_REFUSED: list[tuple[str, str, list[Request]]] = [
    (
        "HX1",
        "columns of different lengths (two starts and ends, one state)",
        [_header(), _columns(SH, [0, 10], [9, 19], [A])],
    ),
    (
        "HX2",
        "an origin that is not six digits, in a batch with no blocks, after two good blocks",
        [_header(), _GOOD, _columns("31000", [], [], [])],
    ),
    (
        "HX3",
        "a negative start (block 3: the second of the batch after two good blocks)",
        [_header(), _GOOD, _columns(SH, [5000, -1], [5009, 5019], [A, A])],
    ),
    (
        "HX4",
        "an end before its start",
        [_header(), _GOOD, _columns(SH, [5000, 5020], [5009, 5019], [A, A])],
    ),
    (
        "HX5",
        "a state left unset (0, UNIT_BLOCK_STATE_UNSPECIFIED)",
        [_header(), _GOOD, _columns(SH, [5000, 5010], [5009, 5019], [A, 0])],
    ),
    (
        "HX6",
        "a state the protocol does not define (99)",
        [_header(), _GOOD, _columns(SH, [5000, 5010], [5009, 5019], [99, A])],
    ),
    (
        "HX7",
        "blocks of one origin overlapping across two batches (found when stored, in SQL)",
        [_header(), _GOOD, _columns(SH, [2500], [3499], [A])],
    ),
    (
        "HX8",
        "numbering runs across forms: two HeldBlock blocks, then columns whose second block (3)"
        " ends before it starts",
        [
            _header(),
            _batch([(JS, 0, 9, A), (JS, 10, 19, A)]),
            _columns(SH, [0, 20], [9, 19], [A, A]),
        ],
    ),
    (
        "HX9",
        "columns before the header",
        [_columns(SH, [0], [9], [A]), _header()],
    ),
]

_STATE_NAME = {
    name: records_pb2.UnitBlockState.Name(value) for name, value in BLOCK_STATE_PROTO.items()
}


def _hexes(stream: Sequence[Request]) -> list[str]:
    return [m.SerializeToString().hex() for m in stream]


def _row(origin: str, start: int, end: int, state: str) -> list[str]:
    """A block as the vectors write it: int64 values as decimal strings (JSON numbers are
    doubles to many readers), the state by its protobuf name."""
    return [origin, str(start), str(end), _STATE_NAME[state]]


def _given(block: HeldTuple) -> list[str]:
    origin, start, end, state = block
    return [origin, str(start), str(end), records_pb2.UnitBlockState.Name(_state(state))]


def _state(value: int) -> records_pb2.UnitBlockState.ValueType:
    return records_pb2.UnitBlockState.ValueType(value)


def _refusal(err: errors.DomainError) -> Json:
    status = status_proto(err)
    info = error_details_pb2.ErrorInfo()
    violations: list[Json] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [
                {"field": v.field, "description": v.description} for v in bad.field_violations
            ]
    return {
        "code": err.code.name,
        "reason": info.reason,
        "message": status.message,
        "field_violations": violations,
    }


def _submit(service: ReconciliationService, stream: list[str]) -> Json:
    """What the gateway answers to the stream of hex messages: the blocks the stream means (in
    the order sent; the gateway stores them joined into runs), count and grams, or the refusal."""
    with SnapshotBuilder(join=False) as snapshot:
        try:
            for data in stream:
                request = Request.FromString(bytes.fromhex(data))
                if applies_to(request):
                    validate(request)
                snapshot.take(request)
            blocks = [_row(*row) for chunk in snapshot.rows() for row in chunk]
            summary = service.store_snapshot(REGION, snapshot, submitted_by="vectors")
        except errors.DomainError as err:
            return {"refused": _refusal(err)}
    return {
        "blocks": blocks,
        "block_count": str(summary.block_count),
        "quantity_grams": str(summary.quantity_grams),
    }


def _parts(stream: Sequence[Request]) -> list[str]:
    return [m.WhichOneof("part") or "" for m in stream]


@contextmanager
def _gateway() -> Iterator[ReconciliationService]:
    """A gateway's reconciliation service on a fresh migrated SQLite database (temporary)."""
    # Captured, not printed: the stored snapshots' log lines are no part of a vector.
    with tempfile.TemporaryDirectory(prefix="yrd-vectors-") as folder, capture_logs():
        db = Database.from_url(f"sqlite:///{Path(folder) / 'vectors.sqlite3'}")
        try:
            db.upgrade()
            private, _ = example_key(GATEWAY_SEED)
            yield ReconciliationService(db, private, clock=lambda: CLOCK)
        finally:
            db.dispose()


def holdings_vectors() -> Json:
    """Valid streams (H1…: blocks, count, grams; ``canonical`` when the stream is what a client
    sends for the blocks as given) and refused ones (R1…: the status the gateway answers)."""
    with _gateway() as service:
        valid = []
        for case_id, description, given, batch, form in _VALID:
            stream = list(
                holdings_requests(SNAPSHOT_TIME, given, batch=batch, columns=form == "columns")
            )
            hexes = _hexes(stream)
            answer = _submit(service, hexes)
            assert "refused" not in answer, (case_id, answer)
            canonical = None
            if form == "columns":
                canonical = {"blocks": [_given(b) for b in given], "batch": batch}
            valid.append(
                {
                    "id": case_id,
                    "description": description,
                    "input": {"stream": hexes, "parts": _parts(stream)},
                    "expected": {**answer, "canonical": canonical},
                }
            )
        refused = []
        for case_id, description, stream in _REFUSED:
            hexes = _hexes(stream)
            answer = _submit(service, hexes)
            assert "refused" in answer, (case_id, answer)
            refused.append(
                {
                    "id": case_id,
                    "description": description,
                    "input": {"stream": hexes, "parts": _parts(stream)},
                    "expected": answer["refused"],
                }
            )
    return document(
        "held-block-columns",
        "docs/protocol.md §11.4 (SubmitHoldings: HeldBlockBatch and, since 1.4.0,"
        " HeldBlockColumns)",
        "SubmitHoldingsRequest streams of registry 310000 as hex protobuf messages (input.stream,"
        " header first; input.parts names each message's oneof member). cases: accepted streams,"
        " with the blocks [origin_region, start, end, state] in the order the gateway numbers"
        " them (block 0 first), and the block_count and quantity_grams it answers; canonical,"
        " when not null, gives the blocks in the order a client was given them and the batch"
        " size, and the stream is exactly what a client sends for them (the header, then per"
        " origin HeldBlockColumns of the blocks in the order given, one whenever batch of that"
        " origin are pending, the rest at the end in the order their origin was first pending;"
        " proto3 encoding, repeated fields packed, defaults omitted). refused: streams the gateway"
        " refuses, with the gRPC code, ErrorInfo reason, status message and BadRequest field"
        " violations. int64 values are decimal strings.",
        {},
        snapshot_time=SNAPSHOT_TIME.isoformat().replace("+00:00", "Z"),
        region=REGION,
        cases=valid,
        refused=refused,
    )
