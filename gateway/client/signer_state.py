"""A registry's signer chain head, kept on disk across CLI runs (beside its signing key)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.client.signer import EnvelopeSigner
from gateway.security.pki import IdentityFiles


def state_path(files: IdentityFiles) -> Path:
    return files.directory / "signer-state.json"


def load_state(files: IdentityFiles, signer: EnvelopeSigner) -> bool:
    """Restore the chain head saved for this key; False when there is none (or for another key)."""
    path = state_path(files)
    if not path.exists():
        return False
    data = json.loads(path.read_text())
    if data.get("key_id") != signer.key_id:
        return False
    signer.rewind(int(data["sequence"]), bytes.fromhex(data["previous_hash"]))
    return True


def save_state(files: IdentityFiles, signer: EnvelopeSigner) -> None:
    """Write the chain head atomically (a crash leaves the old file or the new one)."""
    sequence, previous = signer.head()
    path = state_path(files)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"key_id": signer.key_id, "sequence": sequence, "previous_hash": previous.hex()})
    )
    os.replace(tmp, path)
