"""A holdings snapshot as it streams in: its parts checked (the header, blocks as messages or as
columns) and its blocks spooled in bounded memory until ``ReconciliationService.store_snapshot``
stores it (docs/protocol.md §11.4).

The rows spooled are the registry's runs: a block that continues the previous block of its origin
in the stream (the next serial, the same state) is joined to it. A registry that keeps its units in
finer blocks than the ledger then still holds the ledger's blocks identically, and the comparison
keeps none of them; the serials and grams held in each state, and any overlap, are unchanged."""

from __future__ import annotations

import datetime as dt
import re
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, islice, repeat
from operator import add, and_, eq, le, not_, sub
from typing import cast

from yrd.interop.v1 import reconciliation_service_pb2

from gateway import errors
from gateway.contract import BLOCK_STATE_OF, parse_transfer_name
from gateway.storage.bulk import RowSpool
from gateway.storage.reconciliation_store import Block

MAX_SNAPSHOT_BLOCKS = 10_000_000
MAX_SNAPSHOT_GRAMS = 2**63 - 1
"""The most grams a snapshot may hold in all (what its stored totals, 64-bit integers, hold)."""
REGION_CODE = re.compile(r"[0-9]{6}")
"""A region code (matched whole: `$` would let a final newline through)."""
_COLUMN_PATHS = (
    "columns.origin_region",
    "columns.serial_starts",
    "columns.serial_ends",
    "columns.states",
)
"""The fields ``add_columns`` names a fault by."""


class SnapshotBuilder:
    """Collects and checks a snapshot's parts as they stream in (before any database work). The
    blocks are kept as plain rows in a :class:`RowSpool`: bounded memory whatever their number;
    ``rows()`` reads them back. ``close()`` (or storing the snapshot) frees the spool.

    With ``join`` (the default) the rows are the registry's runs (the module's docstring);
    without it, the blocks as given."""

    def __init__(self, *, join: bool = True) -> None:
        self.snapshot_time: dt.datetime | None = None
        self.transfer_names: set[str] = set()
        self.quantity_grams = 0
        self.totals: dict[tuple[str, str], int] = {}
        """Grams per (origin, state)."""
        self.spool = RowSpool()
        self.join = join
        self.block_count = 0
        """Blocks received (each block, whether or not it was joined to the one before it)."""
        self.in_order = True
        """Whether each origin's blocks came in serial order, each after the previous one's
        end: then no two overlap, and storing the snapshot need not check that in SQL."""
        self._origins: dict[str, str] = {}
        """Origins seen valid, each mapped to one shared string."""
        self._reach: dict[str, int] = {}
        self._open: dict[str, tuple[int, int, str]] = {}
        """Per origin, its last run (start, end, state) while a block may still join it."""
        self.started = time.perf_counter()
        """When the snapshot began to arrive (the receive phase runs from here to storing)."""

    def header(self, snapshot_time: dt.datetime, transfer_names: Iterable[str]) -> None:
        if self.snapshot_time is not None:
            raise errors.SnapshotInvalid("the snapshot header comes once, first")
        self.snapshot_time = snapshot_time
        for name in transfer_names:
            if parse_transfer_name(name) is None:
                raise errors.SnapshotInvalid(
                    f"{name!r} is not a transfer name (regions/{{source}}/transfers/{{id}})",
                    field_errors={"header.completed_transfer_ids": name[:200]},
                )
            self.transfer_names.add(name)

    def take(self, request: reconciliation_service_pb2.SubmitHoldingsRequest) -> None:
        """One message of the SubmitHoldings stream: the header, a ``HeldBlockBatch`` or a
        ``HeldBlockColumns`` (docs/protocol.md §11.4)."""
        part = request.WhichOneof("part")
        if part == "header":
            if not request.header.HasField("snapshot_time"):
                raise errors.SnapshotInvalid(
                    "the header needs the snapshot time",
                    field_errors={"header.snapshot_time": "required"},
                )
            try:
                taken = request.header.snapshot_time.ToDatetime(dt.UTC)
            except (ValueError, OverflowError) as exc:  # nanos or seconds out of range
                raise errors.SnapshotInvalid(
                    "the snapshot time is not a valid timestamp",
                    field_errors={"header.snapshot_time": "invalid"},
                ) from exc
            self.header(taken, request.header.completed_transfer_ids)
        elif part == "columns":
            c = request.columns
            self.add_columns(c.origin_region, c.serial_starts, c.serial_ends, c.states)
        elif part == "blocks":
            self.add(
                [
                    (b.origin_region, (r := b.serials).start, r.end, b.state)
                    for b in request.blocks.blocks
                ]
            )
        else:
            raise errors.SnapshotInvalid("a stream message carries a header, blocks or columns")

    def add(self, blocks: Iterable[tuple[str, int, int, int]]) -> None:
        """Add (origin, start, end, proto state) tuples."""
        if self.snapshot_time is None:
            raise errors.SnapshotInvalid("the snapshot header must come first")
        given = blocks if isinstance(blocks, list) else list(blocks)
        origins, states = self._origins, BLOCK_STATE_OF
        try:
            # The common case at a row's cost: known origins, ordered serials, a set state. Any
            # miss falls back to the checks block by block, which say what is wrong where.
            rows = [(origins[o], s, e, states[st]) for o, s, e, st in given if 0 <= s <= e]
        except KeyError:
            rows = []
        if len(rows) != len(given):
            rows = self._checked(given)
        grams = sum([r[2] for r in rows]) - sum([r[1] for r in rows]) + len(rows)
        self._count_grams(grams, ((r[1], r[2]) for r in rows), "blocks.serials")
        reach, totals, in_order = self._reach, self.totals, self.in_order
        for origin, start, end, state in rows:
            if in_order:
                if start <= reach.get(origin, -1):
                    in_order = False
                else:
                    reach[origin] = end
            key = (origin, state)
            totals[key] = totals.get(key, 0) + end - start + 1
        self.in_order = in_order
        self.block_count += len(rows)
        if self.block_count > MAX_SNAPSHOT_BLOCKS:
            raise errors.SnapshotInvalid(f"a snapshot holds at most {MAX_SNAPSHOT_BLOCKS} blocks")
        if not self.join:
            self.spool.extend(rows)
            return
        spooled, runs = [], self._open
        for origin, start, end, state in rows:
            last = runs.get(origin)
            if last is not None:
                if last[1] + 1 == start and last[2] == state:
                    runs[origin] = (last[0], end, state)
                    continue
                spooled.append((origin, *last))
            runs[origin] = (start, end, state)
        self.spool.extend(spooled)

    def add_columns(
        self, origin: str, starts: Sequence[int], ends: Sequence[int], states: Sequence[int]
    ) -> None:
        """Add one origin's blocks given as columns (``HeldBlockColumns``: block i is
        ``starts[i]..ends[i]`` in proto state ``states[i]``), checked a column at a time: the
        checks of ``add`` without a Python object per block until the rows are written. A fault
        is named by the first block at fault, as ``add`` names it."""
        if self.snapshot_time is None:
            raise errors.SnapshotInvalid("the snapshot header must come first")
        # Slices: the quickest way to a list from a protobuf repeated field (a list from a list).
        s, e, st = cast("list[int]", starts[:]), cast("list[int]", ends[:]), states[:]
        n = len(s)
        name = self._origins.get(origin)
        if name is None:  # checked even when no block follows
            name = self._origin(origin, f"block {self.block_count}", _COLUMN_PATHS[0])
        if len(e) != n or len(st) != n:
            raise errors.SnapshotInvalid(
                f"block {self.block_count}: a batch's columns differ in length (serial_starts "
                f"{n}, serial_ends {len(e)}, states {len(st)})",
                field_errors={"columns": f"block {self.block_count}"},
            )
        if not n:
            return
        if self.block_count + n > MAX_SNAPSHOT_BLOCKS:
            raise errors.SnapshotInvalid(f"a snapshot holds at most {MAX_SNAPSHOT_BLOCKS} blocks")
        present = set(st)
        # The least step from a block's end to the next one's start: above 0, each block starts
        # after the one before it; above 1, none starts right after it (none joins it).
        step = min(map(sub, islice(s, 1, None), e)) if n > 1 else 2
        ordered = all(map(le, s, e))
        lowest = s[0] if ordered and step > 0 else min(s)  # in order, the first start is least
        if lowest < 0 or not ordered or present - BLOCK_STATE_OF.keys():
            # Not the common case: the block-by-block checks find and name the first fault.
            self._checked(list(zip(repeat(origin), s, e, st)), _COLUMN_PATHS)
        grams = sum(e) - sum(s) + n
        self._count_grams(grams, zip(s, e, strict=True), _COLUMN_PATHS[2])
        totals = self.totals
        state: str | list[str]
        if len(present) == 1:
            state = BLOCK_STATE_OF[st[0]]
            totals[(name, state)] = totals.get((name, state), 0) + grams
        else:
            state = list(map(BLOCK_STATE_OF.__getitem__, st))
            # The most common state's grams are what the others leave.
            common, rest = max(present, key=st.count), grams
            for value in present - {common}:
                chosen = list(map(value.__eq__, st))
                part = sum(compress(e, chosen)) - sum(compress(s, chosen)) + sum(chosen)
                key = (name, BLOCK_STATE_OF[value])
                totals[key] = totals.get(key, 0) + part
                rest -= part
            key = (name, BLOCK_STATE_OF[common])
            totals[key] = totals.get(key, 0) + rest
        if self.in_order:
            # In order: after the origin's previous block, each start after the previous end.
            if s[0] > self._reach.get(name, -1) and step > 0:
                self._reach[name] = e[-1]
            else:
                self.in_order = False
        self.block_count += n
        if self.join:
            self._join_columns(name, s, e, st, state, step > 1)
        else:
            self.spool.extend_columns(n, name, array("q", s), array("q", e), state)

    def _join_columns(
        self,
        origin: str,
        s: list[int],
        e: list[int],
        st: Sequence[int],
        state: str | list[str],
        apart: bool,
    ) -> None:
        """Spool a checked batch of ``origin``'s blocks as runs, a column at a time: the batch's
        last run stays open (a block of the next batch may continue it). ``apart``: no block
        starts right after the one before it."""
        # joins[i]: block i + 1 continues block i (the next serial; the same state).
        joins = (
            [] if apart else list(map(eq, map(add, e, repeat(1, len(s) - 1)), islice(s, 1, None)))
        )
        if isinstance(state, list) and any(joins):
            joins = list(map(and_, joins, map(eq, st, islice(st, 1, None))))
        if any(joins):
            starting = [True, *map(not_, joins)]  # block i starts a run
            s = list(compress(s, starting))
            e = list(compress(e, [*starting[1:], True]))  # block i ends one
            if isinstance(state, list):
                state = list(compress(state, starting))
        first, last = (state, state) if isinstance(state, str) else (state[0], state[-1])
        run = self._open.get(origin)
        if run is not None:
            if run[1] + 1 == s[0] and run[2] == first:
                s[0] = run[0]
            else:
                self.spool.extend([(origin, *run)])
        self._open[origin] = (s[-1], e[-1], last)
        if len(s) > 1:
            starts, ends = array("q", s), array("q", e)
            starts.pop()
            ends.pop()
            self.spool.extend_columns(
                len(starts), origin, starts, ends, state if isinstance(state, str) else state[:-1]
            )

    def rows(self) -> Iterator[Iterable[Block]]:
        """The spooled rows, a piece at a time (each read once): after the last part has been
        taken, the open runs closed."""
        if self._open:
            self.spool.extend([(origin, *run) for origin, run in self._open.items()])
            self._open.clear()
        return self.spool.chunks()

    def _count_grams(self, grams: int, spans: Iterable[tuple[int, int]], path: str) -> None:
        """Count a batch's ``grams`` (its blocks' (start, end) in ``spans``, read only on
        refusal); a snapshot holding more than ``MAX_SNAPSHOT_GRAMS`` in all is refused, naming
        the block that crosses the limit."""
        total = self.quantity_grams + grams
        if total > MAX_SNAPSHOT_GRAMS:
            running, at = self.quantity_grams, 0
            for at, (start, end) in enumerate(spans):  # noqa: B007
                running += end - start + 1
                if running > MAX_SNAPSHOT_GRAMS:
                    break
            where = f"block {self.block_count + at}"
            raise errors.SnapshotInvalid(
                f"{where}: the snapshot's blocks would hold more than {MAX_SNAPSHOT_GRAMS} grams",
                field_errors={path: where},
            )
        self.quantity_grams = total

    def _checked(
        self,
        blocks: list[tuple[str, int, int, int]],
        paths: tuple[str, str, str, str] = (
            "blocks.origin_region",
            "blocks.serials",
            "blocks.serials",
            "blocks.state",
        ),
    ) -> list[Block]:
        """The blocks checked one by one (the first fault raised, named by its block); ``paths``:
        the fields of an origin, a start, an end and a state."""
        rows: list[Block] = []
        origin_path, start_path, end_path, state_path = paths
        for origin, start, end, state in blocks:
            where = f"block {self.block_count + len(rows)}"
            if origin not in self._origins:
                self._origin(origin, where, origin_path)
            if not 0 <= start <= end:
                raise errors.SnapshotInvalid(
                    f"{where}: serials need 0 <= start <= end",
                    field_errors={start_path if start < 0 else end_path: where},
                )
            if state not in BLOCK_STATE_OF:
                problem = "the state must be set" if state == 0 else f"unknown state {state}"
                raise errors.SnapshotInvalid(
                    f"{where}: {problem}", field_errors={state_path: where}
                )
            rows.append((self._origins[origin], start, end, BLOCK_STATE_OF[state]))
        return rows

    def _origin(self, origin: str, where: str, path: str) -> str:
        """A new origin checked, then kept (one shared string per origin)."""
        if not REGION_CODE.fullmatch(origin):
            raise errors.SnapshotInvalid(
                f"{where}: origin must be a six-digit region code", field_errors={path: where}
            )
        return self._origins.setdefault(origin, origin)

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> SnapshotBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
