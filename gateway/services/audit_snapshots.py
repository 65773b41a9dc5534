"""``audit verify``: a reconciliation snapshot's stored rows against the audit log (its blocks,
totals and listed transfers; the snapshot's own row is compared with the other replayed tables).
See docs/protocol.md §8.3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.security.audit_chain import blocks_digest, totals_digest
from gateway.services.audit_findings import Tampered, compare
from gateway.services.audit_replay import Replay, coalesce
from gateway.storage.audit_store import StoredRows

Totals = tuple[str, str, int, int]
"""(origin, state, registry grams, ledger grams)."""


class SnapshotRows:
    """``snapshot_blocks``, ``snapshot_totals`` and ``snapshot_transfers`` against a replay."""

    def __init__(self, rows: StoredRows, replay: Replay) -> None:
        self.rows = rows
        self.replay = replay
        self.compared = 0
        self.rule1_totals: dict[int, dict[tuple[str, str], list[int]]] = {}
        """Per snapshot stored under rule 1: its blocks' grams per (origin, state), per side."""

    def check(self) -> int:
        """Raise ``Tampered`` at the first bad row; returns the number of rows compared."""
        self._blocks()
        self._totals()
        self._transfers()
        return self.compared

    def _blocks(self) -> None:
        """Each side's stored blocks against what its entry commits to: under rule 2 their
        count and digest; under rule 1 the registry's count and grams, and the ledger's serials
        (however split) against the replayed ledger. Rule 1's totals are summed on the way."""
        sides = self.replay.snapshot_sides
        seen: set[tuple[Any, ...]] = set()
        for (sid, side), rows in _grouped(self.rows.stream("snapshot_blocks"), "side"):
            key = f"snapshot_id={sid} side={side}"
            want = sides.get((sid, side))
            if want is None:
                raise Tampered("snapshot_blocks", key, "stored but made by no audit entry")
            seen.add((sid, side))
            plain = [
                (r["origin_region"], r["serial_start"], r["serial_end"], r["state"]) for r in rows
            ]
            got: dict[str, Any] = {
                "rows": len(plain),
                "quantity_grams": sum(e - s + 1 for _, s, e, _ in plain),
            }
            if "digest" in want:
                got["digest"] = blocks_digest(plain)
            else:  # rule 1's ledger side: the same serials however split into blocks
                got["coalesced"] = blocks_digest(coalesce(plain))
            compare("snapshot_blocks", key, want, got)
            if sid in self.replay.snapshot_totals and self.replay.snapshot_totals[sid] is None:
                sums = self.rule1_totals.setdefault(sid, {})
                for origin, start, end, state in plain:
                    pair = sums.setdefault((origin, state), [0, 0])
                    pair[1 if side == "ledger" else 0] += end - start + 1
            self.compared += len(plain)
        for (sid, side), want in sorted(sides.items()):
            if (sid, side) not in seen and want.get("rows", 1):
                raise Tampered(
                    "snapshot_blocks",
                    f"snapshot_id={sid} side={side}",
                    "missing: the audit log made them",
                )

    def _totals(self) -> None:
        """Each snapshot's totals: under rule 2 by the digest its entry commits to; under rule 1
        the sums of its (verified) blocks, as migration 0008 made them."""
        seen: set[int] = set()
        for (sid,), rows in _grouped(self.rows.stream("snapshot_totals")):
            seen.add(sid)
            self._totals_of(
                sid,
                [
                    (r["origin_region"], r["state"], r["registry_grams"], r["ledger_grams"])
                    for r in rows
                ],
            )
            self.compared += len(rows)
        for sid in sorted(set(self.replay.snapshot_totals) - seen):
            self._totals_of(sid, [])

    def _totals_of(self, sid: int, rows: list[Totals]) -> None:
        key = f"snapshot_id={sid}"
        if sid not in self.replay.snapshot_totals:
            raise Tampered("snapshot_totals", key, "stored but made by no audit entry")
        digest = self.replay.snapshot_totals[sid]
        if digest is not None:
            compare("snapshot_totals", key, {"digest": digest}, {"digest": totals_digest(rows)})
            return
        sums = self.rule1_totals.get(sid, {})
        want = sorted((o, st, r, led) for (o, st), (r, led) in sums.items())
        if sorted(rows) != want:
            origin, state, _, _ = sorted(set(rows) ^ set(want))[0]
            raise Tampered(
                "snapshot_totals",
                key,
                f"{origin} {state}: the totals are not the sums of the snapshot's blocks",
            )

    def _transfers(self) -> None:
        want = set(self.replay.snapshot_transfers)
        for row in self.rows.stream("snapshot_transfers"):
            key = (row["snapshot_id"], row["transfer_name"])
            if key not in want:
                raise Tampered(
                    "snapshot_transfers",
                    f"snapshot_id={key[0]} transfer_name={key[1]}",
                    "stored but made by no audit entry",
                )
            want.discard(key)
            self.compared += 1
        if want:
            sid, name = min(want)
            raise Tampered(
                "snapshot_transfers",
                f"snapshot_id={sid} transfer_name={name}",
                "missing: the audit log made it",
            )


def _grouped(
    rows: Iterator[dict[str, Any]], *by: str
) -> Iterator[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    """Consecutive rows of one snapshot (and of equal ``by`` columns): (their key, the rows)."""
    group: list[dict[str, Any]] = []
    current: tuple[Any, ...] | None = None
    for row in rows:
        key = (row["snapshot_id"], *(row[c] for c in by))
        if current is not None and key != current:
            yield current, group
            group = []
        current = key
        group.append(row)
    if current is not None:
        yield current, group
