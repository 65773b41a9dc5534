"""Print a pip requirement, with every hash uv.lock records, for one package of the lock.

Used by the Makefile to install uv itself from the lock before uv can read it:
``python3 .ci/lock_requirement.py uv.lock uv`` prints ``uv==X.Y.Z --hash=sha256:... ...``.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import sys
import tomllib


def requirement(lock_path: str, name: str) -> str:
    """The pinned, hashed requirement line for ``name`` in the lock at ``lock_path``."""
    with open(lock_path, "rb") as fh:
        lock = tomllib.load(fh)
    for package in lock.get("package", []):
        if package["name"] == name:
            artifacts = [*package.get("wheels", [])]
            if "sdist" in package:
                artifacts.append(package["sdist"])
            hashes = sorted({a["hash"] for a in artifacts if "hash" in a})
            if not hashes:
                raise SystemExit(f"{lock_path}: {name} has no hashes; run 'make lock'")
            return " ".join([f"{name}=={package['version']}", *(f"--hash={h}" for h in hashes)])
    raise SystemExit(f"{lock_path}: no package {name!r}; add it to pyproject.toml and run 'make lock'")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: lock_requirement.py LOCK NAME")
    print(requirement(sys.argv[1], sys.argv[2]))
