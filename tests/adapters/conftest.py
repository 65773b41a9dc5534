"""Fixtures for the adapter tests.

The sample files are the ones shipped in the package (``adapters/samples``, used by the gateway's
demo and described in ``docs/regions.md``); ``test_samples_are_complete`` checks that every
region's three samples are there, with the samples carrying identity keys.
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
#: Each region's sample project with identity keys (the shared samples have none).
IDENTITY_SAMPLE_NAMES = (
    "310000-project-identity.json",
    "320000-project-identity.xml",
    "330000-project-identity.json",
    "340000-project-identity.csv",
)
#: One rooftop PV plant filed in Qingpu (Shanghai) and in Wujiang (Jiangsu): the demo's duplicate.
DEMO_SAMPLE_NAMES = ("demo-qingpu-310000-project.json", "demo-wujiang-320000-project.xml")


def find_samples_dir() -> Path:
    """The samples folder shipped in the package (``adapters/samples``)."""
    return (REPO_ROOT / "adapters" / "samples").resolve()


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
