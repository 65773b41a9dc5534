"""The gateway's own Ed25519 keys over time: which key signed tree heads and reports when.

``gateway/signing-keys.json`` in the PKI directory lists every gateway signing key with its
validity, oldest first::

    {"keys": [{"key_id": "…", "public_key": "<64 hex>", "valid_from": "2025-01-01T00:00:00Z",
               "valid_until": null}]}

``record_key`` appends a new key and closes the previous one (``valid_until`` = the new key's
``valid_from``); ``yrdgw pki`` calls it whenever it makes a gateway signing key. ``history``
answers the keys with the one in use first, then the earlier ones, newest first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.security.signing import key_id_of

HISTORY_FILE = "signing-keys.json"


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """One gateway signing key; ``valid_until`` is None for the key in use."""

    key_id: str
    public_key: bytes
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    current: bool


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def _text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _load(gateway_dir: Path) -> list[dict[str, Any]]:
    path = gateway_dir / HISTORY_FILE
    if not path.exists():
        return []
    keys = json.loads(path.read_text(encoding="utf-8")).get("keys", [])
    return [k for k in keys if isinstance(k, dict)]


def record_key(gateway_dir: Path, public_key: bytes, made_at: dt.datetime) -> None:
    """Append ``public_key`` as the gateway's current key; close every open earlier entry."""
    entries = _load(gateway_dir)
    for entry in entries:
        if entry.get("valid_until") is None:
            entry["valid_until"] = _text(made_at)
    entries.append(
        {
            "key_id": key_id_of(public_key),
            "public_key": public_key.hex(),
            "valid_from": _text(made_at),
            "valid_until": None,
        }
    )
    path = gateway_dir / HISTORY_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"keys": entries}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def history(gateway_dir: Path, current_public_key: bytes) -> list[GatewayKey]:
    """The key in use first (validity from the file when listed there), then the earlier keys
    of the file, newest first."""
    current_id = key_id_of(current_public_key)
    current = GatewayKey(current_id, current_public_key, None, None, True)
    earlier: list[GatewayKey] = []
    for entry in _load(gateway_dir):
        public = bytes.fromhex(str(entry.get("public_key", "")))
        if len(public) != 32:
            continue
        if public == current_public_key:
            current = GatewayKey(current_id, public, _time(entry.get("valid_from")), None, True)
        else:
            earlier.append(
                GatewayKey(
                    key_id_of(public),
                    public,
                    _time(entry.get("valid_from")),
                    _time(entry.get("valid_until")),
                    False,
                )
            )
    earlier.sort(key=lambda k: k.valid_from or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
    return [current, *earlier]
