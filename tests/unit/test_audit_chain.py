"""The audit hash chain detects changed, removed and reordered entries; tree heads verify."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.security.audit_chain import (
    GENESIS,
    EntryFields,
    SortedRowsDigest,
    blocks_digest,
    canonical_json,
    entry_hash,
    sign_tree_head,
    verify_chain,
    verify_tree_head,
)
from gateway.security.signing import raw_public_key

T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def _chain(n: int) -> list[tuple[EntryFields, bytes]]:
    out: list[tuple[EntryFields, bytes]] = []
    previous = GENESIS
    for i in range(1, n + 1):
        fields = EntryFields(
            i, "k", f"s/{i}", "310000", "registry", canonical_json({"i": i}), previous, T0
        )
        previous = entry_hash(fields)
        out.append((fields, previous))
    return out


def test_intact_chain_verifies() -> None:
    chain = _chain(5)
    result = verify_chain(chain)
    assert result.ok and result.entries == 5 and result.head_hash == chain[-1][1]


def test_changed_detail_is_detected() -> None:
    chain = _chain(5)
    fields, digest = chain[2]
    chain[2] = (dataclasses.replace(fields, detail=canonical_json({"i": 99})), digest)
    result = verify_chain(chain)
    assert not result.ok and result.entries == 2 and "entry 3 hash" in result.problem


def test_removed_entry_is_detected() -> None:
    chain = _chain(5)
    del chain[1]
    assert not verify_chain(chain).ok


def test_reordered_entries_are_detected() -> None:
    chain = _chain(4)
    chain[1], chain[2] = chain[2], chain[1]
    assert not verify_chain(chain).ok


def test_canonical_json_is_deterministic_and_keeps_chinese() -> None:
    assert canonical_json({"b": 1, "a": "上海"}) == '{"a":"上海","b":1}'.encode()


def test_tree_head_signature() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    head = _chain(3)[-1][1]
    sig = sign_tree_head(key, 3, head, T0)
    assert verify_tree_head(raw_public_key(key), 3, head, T0, sig)
    assert not verify_tree_head(raw_public_key(key), 4, head, T0, sig)
    assert not verify_tree_head(raw_public_key(key), 3, GENESIS, T0, sig)


def test_a_digest_of_rows_fed_in_order_is_the_digest_of_the_sorted_rows() -> None:
    rows = [("320000", 5, 9, "active"), ("310000", 10, 19, "retired"), ("310000", 0, 9, "held")]
    streamed = SortedRowsDigest()
    for row in sorted(rows):
        streamed.add(row)
    assert (streamed.count, streamed.hexdigest()) == (3, blocks_digest(rows))
    empty = SortedRowsDigest()
    assert (empty.count, empty.hexdigest()) == (0, blocks_digest([]))
    backwards = SortedRowsDigest()
    backwards.add(rows[0])
    with pytest.raises(ValueError, match="out of order"):
        backwards.add(rows[1])
