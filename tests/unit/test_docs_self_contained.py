"""The project's documents and code comments point only inside the repository: nothing names
the founders' folder beside it (absent from a user's clone), and every relative Markdown link of
README.md and docs/ stays within the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEXT_ROOTS = ("README.md", "docs", "gateway", "adapters", "mutual_recognition", "tests", "proto")
SUFFIXES = {".md", ".py", ".proto", ".toml", ".cfg", ".ini"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def text_files() -> list[Path]:
    files: list[Path] = []
    for root in TEXT_ROOTS:
        path = REPO / root
        candidates = [path] if path.is_file() else path.rglob("*")
        files += [p for p in candidates if p.is_file() and p.suffix in SUFFIXES]
    return sorted(files)


def test_nothing_points_at_the_shared_folder() -> None:
    shared = "shared" + "/"  # spelled so that this file does not match itself
    needles = ("../" + shared, shared + "DESIGN", shared + "regions")
    offenders = [
        str(p.relative_to(REPO))
        for p in text_files()
        if any(n in p.read_text(encoding="utf-8", errors="replace") for n in needles)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "document",
    [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_relative_links_stay_in_the_repository(document: Path) -> None:
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # an absolute URL or an anchor
        resolved = (document.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(REPO), f"{document.name} links outside: {target}"


def test_readme_links_the_specification_first() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = LINK.findall(readme)
    assert links[0] == "docs/protocol.md"
    integrators = readme.split("## For integrators", 1)[1].split("\n## ", 1)[0]
    for expected in (
        "docs/protocol.md",
        "docs/reasons.md",
        "docs/vectors/",
        "docs/schema/",
        "docs/data-dictionary.md",
        "clients/node/",
    ):
        assert f"]({expected})" in integrators, expected
