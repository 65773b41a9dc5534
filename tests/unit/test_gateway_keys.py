"""The gateway's signing keys over time: signing-keys.json records each new key and closes the
previous one; the key in use comes first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.security.gateway_keys import history, record_key
from gateway.security.signing import key_id_of

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_without_a_file_the_key_in_use_has_no_known_validity(tmp_path: Path) -> None:
    [key] = history(tmp_path, b"\x01" * 32)
    assert (key.key_id, key.current, key.valid_from, key.valid_until) == (
        key_id_of(b"\x01" * 32),
        True,
        None,
        None,
    )


def test_rotations_close_each_previous_key(tmp_path: Path) -> None:
    for n in range(3):
        record_key(tmp_path, bytes([n + 1]) * 32, T0 + dt.timedelta(days=n))
    keys = history(tmp_path, b"\x03" * 32)
    assert [k.public_key[0] for k in keys] == [3, 2, 1]
    assert [k.current for k in keys] == [True, False, False]
    assert keys[0].valid_from == T0 + dt.timedelta(days=2) and keys[0].valid_until is None
    assert keys[1].valid_until == keys[0].valid_from
    assert keys[2].valid_until == keys[1].valid_from == T0 + dt.timedelta(days=1)
    # A process still signing with an older key lists that one as current.
    older = history(tmp_path, b"\x02" * 32)
    assert [(k.public_key[0], k.current) for k in older] == [(2, True), (3, False), (1, False)]
