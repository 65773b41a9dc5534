"""The environment `make test` runs in is exactly uv.lock's, and the index cannot move it.

`make install` syncs the runtime dependencies and the `tools` and `dev` groups from the committed
lock with `uv sync --locked` (exact: anything else is removed). These tests read the lock through
uv's own export and compare it with what is installed, however it got there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.prefix) / "bin" / "uv"
PROJECT = "yrd-gateway"


@pytest.fixture(scope="module")
def uv() -> Path:
    """The uv installed from the lock into this environment (make's bootstrap puts it there)."""
    if not UV.exists():
        reason = f"{UV} missing: this environment was not installed by make from uv.lock"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return UV


def _uv(uv: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": sys.prefix, "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(
        [str(uv), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def locked_versions(uv: Path) -> dict[str, str]:
    """Name → version of every package the lock gives this interpreter (runtime, tools, dev)."""
    result = _uv(
        uv,
        "export",
        "--locked",
        "--offline",
        "--group",
        "dev",
        "--no-emit-project",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--format",
        "requirements.txt",
    )
    assert result.returncode == 0, result.stderr
    versions: dict[str, str] = {}
    for line in result.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip():
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = requirement.strip().partition("==")
        versions[canonicalize_name(name)] = version
    return versions


def installed_versions() -> dict[str, str]:
    """Name → version of every distribution importable in this environment's site-packages."""
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=[p for p in sys.path if "site-packages" in p]):
        found[canonicalize_name(dist.metadata["Name"])] = dist.version
    return found


def test_installed_versions_are_exactly_the_lock(uv: Path) -> None:
    locked = locked_versions(uv)
    installed = installed_versions()
    installed.pop(PROJECT, None)  # the project's own editable install
    # Tooling the lock holds too: make's bootstrap installs uv from it, pip/setuptools/wheel too.
    for tool in ("uv", "pip", "setuptools", "wheel", "types-protobuf", "mypy", "ruff"):
        assert tool in locked, f"{tool} is not in uv.lock"
    assert installed == locked, {
        "not in the lock": sorted(set(installed) - set(locked)),
        "missing": sorted(set(locked) - set(installed)),
        "other version": {
            n: (installed[n], locked[n])
            for n in installed.keys() & locked.keys()
            if installed[n] != locked[n]
        },
    }


def test_uv_reports_the_environment_in_sync(uv: Path) -> None:
    result = _uv(uv, "sync", "--locked", "--offline", "--check", "--group", "dev")
    assert result.returncode == 0, result.stderr


def _fake_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal valid wheel: a release of `name` newer than anything on the index."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            f"{dist}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        whl.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def test_a_newer_release_changes_nothing_until_make_lock(uv: Path, tmp_path: Path) -> None:
    """With a newer types-protobuf offered beside the index, the lock still satisfies
    pyproject.toml and a locked sync would change nothing: only `make lock` (uv lock --upgrade)
    moves a version."""
    index = tmp_path / "index"
    index.mkdir()
    _fake_wheel(index, "types-protobuf", "99.0.0")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, project / name)
    before = (project / "uv.lock").read_text()

    check = _uv(uv, "lock", "--check", "--offline", "--find-links", str(index), cwd=project)
    assert check.returncode == 0, check.stderr
    sync = _uv(
        uv,
        "sync",
        "--locked",
        "--offline",
        "--check",
        "--group",
        "dev",
        "--no-install-project",
        "--inexact",
        "--find-links",
        str(index),
        cwd=project,
    )
    assert sync.returncode == 0, sync.stderr
    assert (project / "uv.lock").read_text() == before


def test_lock_check_names_the_fix_when_pyproject_and_lock_disagree(tmp_path: Path) -> None:
    """`make lock-check` (first step of every install) fails with what to do."""
    if not UV.exists():
        pytest.skip(f"{UV} missing")
    for name in ("pyproject.toml", "uv.lock", "README.md", "Makefile"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=13"', '"rich>=13.1"'))
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / "bin").mkdir()
    (venv / "bin" / "uv").symlink_to(UV)
    stamp = subprocess.run(
        ["sha256sum", str(tmp_path / "uv.lock")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout[:16]
    (venv / f".uv-{stamp}").touch()
    (venv / "bin" / "python").symlink_to(sys.executable)
    result = subprocess.run(
        ["make", "--no-print-directory", "lock-check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "UV_OFFLINE": "1"},
    )
    assert result.returncode != 0
    assert "pyproject.toml and uv.lock disagree; run 'make lock'" in result.stderr
