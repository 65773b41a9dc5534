"""The four regions' sample documents (``adapters/samples``, described in docs/regions.md)."""

from __future__ import annotations

from importlib import resources

from adapters import default_registry

KINDS = ("methodology", "project", "issuance")
_EXT = {"310000": "json", "320000": "xml", "330000": "json", "340000": "csv"}


def sample_documents(region: str) -> list[tuple[str, bytes]]:
    """(content type, bytes) of a region's sample methodology, project and issuance."""
    content_type = default_registry.get(region).content_types[0]
    folder = resources.files("adapters") / "samples"
    return [
        (content_type, (folder / f"{region}-{kind}.{_EXT[region]}").read_bytes()) for kind in KINDS
    ]
