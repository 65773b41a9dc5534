"""The rows a snapshot stores are the registry's runs: each block that continues the previous
block of its origin in the stream (the next serial, the same state) joined to it, whatever the
batches and forms the blocks came in; what the snapshot counts is unchanged."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2

from gateway.contract import BLOCK_STATE_OF
from gateway.services.snapshots import SnapshotBuilder

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ORIGINS = ("310000", "320000", "340000")
STATES = (
    records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    records_pb2.UNIT_BLOCK_STATE_RETIRED,
    records_pb2.UNIT_BLOCK_STATE_HELD,
)
Sent = tuple[str, int, int, int]


def joined(blocks: list[Sent]) -> Counter[tuple[str, int, int, str]]:
    """The model: per origin, a block joins the run before it when it starts at that run's end
    + 1 in the same state."""
    runs: dict[str, list[tuple[str, int, int, str]]] = {}
    for origin, start, end, state in blocks:
        name = BLOCK_STATE_OF[state]
        mine = runs.setdefault(origin, [])
        if mine and mine[-1][2] + 1 == start and mine[-1][3] == name:
            mine[-1] = (origin, mine[-1][1], end, name)
        else:
            mine.append((origin, start, end, name))
    return Counter(run for origin_runs in runs.values() for run in origin_runs)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Sent], list[tuple[bool, int]]]:
    """Blocks of a few origins, mostly each after the previous one of its origin (often right
    after it, often in the same state), sometimes elsewhere; then the stream's cut into
    messages, each columns (one origin) or a HeldBlockBatch, of a drawn size."""
    blocks: list[Sent] = []
    nxt = dict.fromkeys(ORIGINS, 0)
    for _ in range(draw(st.integers(0, 40))):
        origin = draw(st.sampled_from(ORIGINS))
        start = draw(
            st.one_of(
                st.just(nxt[origin]),
                st.integers(nxt[origin], nxt[origin] + 3),
                st.integers(0, 200),  # out of order (apart or not: the builder only spools)
            )
        )
        end = start + draw(st.integers(0, 4))
        blocks.append((origin, start, end, draw(st.sampled_from(STATES))))
        nxt[origin] = max(nxt[origin], end + 1)
    cuts = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 6)), max_size=60))
    return blocks, cuts


def _feed(builder: SnapshotBuilder, blocks: list[Sent], cuts: list[tuple[bool, int]]) -> None:
    """Send ``blocks`` in stream order: columns take the longest prefix of one origin (at most
    the drawn size), batches the drawn number of blocks."""
    builder.header(NOW, [])
    i, plan = 0, iter(cuts)
    while i < len(blocks):
        as_columns, size = next(plan, (False, len(blocks)))
        if as_columns:
            origin = blocks[i][0]
            part = []
            while i < len(blocks) and blocks[i][0] == origin and len(part) < size:
                part.append(blocks[i])
                i += 1
            builder.add_columns(
                origin, [b[1] for b in part], [b[2] for b in part], [b[3] for b in part]
            )
        else:
            builder.add(blocks[i : i + size])
            i += size


@settings(max_examples=300, deadline=None, derandomize=True)
@given(stream=streams())
def test_stored_rows_are_the_runs_however_the_blocks_came(
    stream: tuple[list[Sent], list[tuple[bool, int]]],
) -> None:
    blocks, cuts = stream
    with SnapshotBuilder() as builder, SnapshotBuilder(join=False) as plain:
        _feed(builder, blocks, cuts)
        _feed(plain, blocks, cuts)
        stored = [row for piece in builder.rows() for row in piece]
        assert Counter(stored) == joined(blocks)
        # Without joining: the blocks as given, in their order.
        as_given = [row for piece in plain.rows() for row in piece]
        assert as_given == [(o, s, e, BLOCK_STATE_OF[st]) for o, s, e, st in blocks]
        # What the snapshot counts is the blocks sent, joined or not.
        grams = sum(e - s + 1 for _, s, e, _ in blocks)
        assert builder.block_count == plain.block_count == len(blocks)
        assert builder.quantity_grams == plain.quantity_grams == grams
        assert builder.totals == plain.totals
        assert builder.in_order == plain.in_order


def test_a_block_joins_across_messages_and_forms_but_not_across_a_state_or_a_gap() -> None:
    active, retired = STATES[0], STATES[1]
    with SnapshotBuilder() as builder:
        builder.header(NOW, [])
        builder.add_columns("310000", [0, 10], [9, 19], [active, active])
        builder.add([("310000", 20, 29, active), ("320000", 0, 4, active)])
        builder.add_columns("310000", [30, 40, 50], [39, 49, 59], [active, retired, retired])
        builder.add_columns("310000", [61], [70], [retired])  # a gap: 60 is not held
        builder.add([("320000", 5, 9, retired)])  # another state
        assert sorted(row for piece in builder.rows() for row in piece) == [
            ("310000", 0, 39, "active"),
            ("310000", 40, 59, "retired"),
            ("310000", 61, 70, "retired"),
            ("320000", 0, 4, "active"),
            ("320000", 5, 9, "retired"),
        ]
        assert builder.block_count == 9
