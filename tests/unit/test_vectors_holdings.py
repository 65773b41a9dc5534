"""The SubmitHoldings vectors (docs/vectors/held-block-columns.json), re-derived independently of
the gateway's code as tests/unit/test_vectors.py does for the others: each stream decoded with
the generated protobuf classes, its blocks, count and grams worked out here, the canonical
encoding rebuilt from §11.4's text, and each refusal's field and block found by the rules of
§11.4 (the implementation reproducing the file is test_vectors.py's drift check)."""

from __future__ import annotations

from typing import Any

from yrd.interop.v1 import reconciliation_service_pb2, records_pb2

from tests.unit.test_vectors import load

Request = reconciliation_service_pb2.SubmitHoldingsRequest
Block = tuple[str, int, int, int]
STATES = {
    v.number for v in records_pb2.UnitBlockState.DESCRIPTOR.values if v.number != 0
}  # every defined state but UNSPECIFIED


def _stream(case: dict[str, Any]) -> list[Request]:
    messages = [Request.FromString(bytes.fromhex(h)) for h in case["input"]["stream"]]
    assert [m.WhichOneof("part") for m in messages] == case["input"]["parts"]
    return messages


def _blocks(message: Request) -> list[Block]:
    """The blocks of one batch, in order: block i of columns is starts[i]..ends[i] in states[i]."""
    if message.WhichOneof("part") == "columns":
        c = message.columns
        assert len(c.serial_starts) == len(c.serial_ends) == len(c.states)
        return [
            (c.origin_region, s, e, st)
            for s, e, st in zip(c.serial_starts, c.serial_ends, c.states, strict=True)
        ]
    return [
        (b.origin_region, b.serials.start, b.serials.end, b.state) for b in message.blocks.blocks
    ]


def _row(block: Block) -> list[str]:
    origin, start, end, state = block
    return [origin, str(start), str(end), records_pb2.UnitBlockState.Name(state)]


def _header(snapshot_time: str) -> Request:
    header = Request()
    header.header.snapshot_time.FromJsonString(snapshot_time)
    return header


def _canonical(snapshot_time: str, given: list[list[str]], batch: int) -> list[bytes]:
    """§11.4's grouping, written from the vector's description: per origin in the order given,
    a message whenever ``batch`` of one origin are pending, the rest in first-pending order."""
    out = [_header(snapshot_time)]
    pending: dict[str, list[list[str]]] = {}

    def flush(origin: str) -> None:
        rows = pending.pop(origin)
        m = Request()
        m.columns.origin_region = origin
        m.columns.serial_starts.extend(int(r[1]) for r in rows)
        m.columns.serial_ends.extend(int(r[2]) for r in rows)
        m.columns.states.extend(records_pb2.UnitBlockState.Value(r[3]) for r in rows)
        out.append(m)

    for row in given:
        pending.setdefault(row[0], []).append(row)
        if len(pending[row[0]]) == batch:
            flush(row[0])
    for origin in list(pending):
        flush(origin)
    return [m.SerializeToString() for m in out]


def test_spec_accepted_streams() -> None:
    doc = load("held-block-columns")
    assert [c["id"] for c in doc["cases"]] == ["H1", "H2", "H3", "H4", "H5"]
    for case in doc["cases"]:
        header, *batches = _stream(case)
        assert header.header.snapshot_time.ToJsonString() == doc["snapshot_time"]
        blocks = [b for m in batches for b in _blocks(m)]
        want = case["expected"]
        assert [_row(b) for b in blocks] == want["blocks"], case["id"]
        assert want["block_count"] == str(len(blocks))
        assert want["quantity_grams"] == str(sum(e - s + 1 for _, s, e, _ in blocks))
        assert int(want["quantity_grams"]) < 2**63  # an int64 on the wire
        canonical = want["canonical"]
        if canonical is not None:
            assert sorted(canonical["blocks"]) == sorted(want["blocks"])
            encoded = _canonical(doc["snapshot_time"], canonical["blocks"], canonical["batch"])
            assert [b.hex() for b in encoded] == case["input"]["stream"], case["id"]
    h1, h2, _, h4, h5 = doc["cases"]
    # The same blocks in both forms, in other bytes; columns are the smaller.
    assert h1["expected"]["blocks"] == h2["expected"]["blocks"]
    assert h1["input"]["parts"] == ["header", "columns"]
    assert h2["input"]["parts"] == ["header", "blocks"] and h2["expected"]["canonical"] is None
    assert len(h1["input"]["stream"][1]) < len(h2["input"]["stream"][1])
    serials = {int(v) for row in h4["expected"]["blocks"] for v in row[1:3]}
    assert {2**53 + 1, 2**63 - 1} <= serials
    assert h5["expected"]["blocks"] != h5["expected"]["canonical"]["blocks"]  # regrouped


def _region(text: str) -> bool:
    return len(text) == 6 and text.isascii() and text.isdigit()


COLUMN_FIELDS = (
    "columns.origin_region",
    "columns.serial_starts",
    "columns.serial_ends",
    "columns.states",
)
BLOCK_FIELDS = ("blocks.origin_region", "blocks.serials", "blocks.serials", "blocks.state")


def _first_fault(messages: list[Request]) -> tuple[str, str] | None:
    """(field, description) of the first fault by §11.4's rules; None: no field named."""
    if messages[0].WhichOneof("part") != "header":
        return None
    n, seen = 0, []
    for m in messages[1:]:
        columns = m.WhichOneof("part") == "columns"
        fields = COLUMN_FIELDS if columns else BLOCK_FIELDS
        if columns:
            c = m.columns
            if not _region(c.origin_region):  # even with no block
                return fields[0], f"block {n}"
            if not len(c.serial_starts) == len(c.serial_ends) == len(c.states):
                return "columns", f"block {n}"
        for origin, start, end, state in _blocks(m):
            where = f"block {n}"
            if not _region(origin):
                return fields[0], where
            if start < 0:
                return fields[1], where
            if end < start:
                return fields[2], where
            if state not in STATES:
                return fields[3], where
            seen.append((origin, start, end))
            n += 1
    # Overlaps are found once every block is in: the lowest origin, then the lowest serial at
    # which a block starts inside an earlier-starting one.
    reach: dict[str, int] = {}
    for origin, start, end in sorted(seen):
        if start <= reach.get(origin, -1):
            return "blocks", f"{origin}:{start}"
        reach[origin] = max(end, reach.get(origin, -1))
    raise AssertionError("no fault in a refused stream")


def test_spec_refused_streams() -> None:
    doc = load("held-block-columns")
    assert [c["id"] for c in doc["refused"]] == [f"HX{i}" for i in range(1, 10)]
    for case in doc["refused"]:
        want = case["expected"]
        assert (want["code"], want["reason"]) == ("INVALID_ARGUMENT", "SNAPSHOT_INVALID")
        fault = _first_fault(_stream(case))
        if fault is None:
            assert want["field_violations"] == [], case["id"]
            continue
        field, where = fault
        assert want["field_violations"] == [{"field": field, "description": where}], case["id"]
        if where.startswith("block "):
            assert want["message"].startswith(f"{where}: "), case["id"]
        else:
            origin, serial = where.split(":")
            assert f"blocks of {origin} overlap at serial {serial}" in want["message"]
