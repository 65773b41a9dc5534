"""Fixtures for the adapter tests.

The sample files are the ones of ``../shared/regions/samples`` (the shared specs beside the
repository). A copy lives in ``tests/adapters/samples`` so the tests never depend on ``shared/``
being present; the copy is preferred, then the copy shipped in the package (``adapters/samples``,
used by the gateway's demo), then the shared folder. ``test_samples_are_the_shared_ones`` checks
that the copies have not drifted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import AdapterRegistry, build_default_registry

HERE = Path(__file__).resolve().parent
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_NAMES = tuple(
    f"{region}-{kind}.{ext}"
    for region, ext in (
        ("310000", "json"),
        ("320000", "xml"),
        ("330000", "json"),
        ("340000", "csv"),
    )
    for kind in ("methodology", "project", "issuance")
)


def find_samples_dir() -> Path:
    """The first complete samples folder: the package copy, else ``<repo>/../shared``."""
    candidates = (
        REPO_ROOT / "adapters" / "samples",
        REPO_ROOT / ".." / "shared" / "regions" / "samples",
    )
    for candidate in candidates:
        if all((candidate / name).is_file() for name in SAMPLE_NAMES):
            return candidate.resolve()
    raise FileNotFoundError(f"no complete samples folder among {candidates}")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return find_samples_dir()


@pytest.fixture(scope="session")
def sample_bytes(samples_dir: Path) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (samples_dir / name).read_bytes()

    return read


@pytest.fixture
def registry() -> AdapterRegistry:
    return build_default_registry()
