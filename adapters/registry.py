"""A registry of regional adapters, keyed by region code and by content type."""

from __future__ import annotations

from collections.abc import Iterator

from adapters.base import RegionAdapter, media_type
from adapters.errors import UnknownContentTypeError, UnknownRegionError

__all__ = ["AdapterRegistry"]


class AdapterRegistry:
    """Maps region codes and content types to adapters.

    Each region has one adapter and each content type belongs to one region; registering a second
    adapter for a region or a content type already taken raises ``ValueError``.
    """

    def __init__(self, adapters: tuple[RegionAdapter, ...] = ()) -> None:
        self._by_region: dict[str, RegionAdapter] = {}
        self._by_content_type: dict[str, RegionAdapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: RegionAdapter) -> RegionAdapter:
        """Add ``adapter``; returns it so the call can be used as a one-line registration."""
        if not isinstance(adapter, RegionAdapter):
            raise TypeError(f"{type(adapter).__name__} does not implement RegionAdapter")
        region = adapter.region
        if not (len(region) == 6 and region.isascii() and region.isdigit()):
            raise ValueError(f"region {region!r} is not a 6-digit GB/T 2260 code")
        if region in self._by_region:
            raise ValueError(f"an adapter for region {region} is already registered")
        if not adapter.content_types:
            raise ValueError(f"the adapter for region {region} declares no content type")
        types = [media_type(ct) for ct in adapter.content_types]
        for content_type in types:
            if content_type in self._by_content_type:
                other = self._by_content_type[content_type].region
                raise ValueError(f"content type {content_type} is already read by region {other}")
            if content_type != adapter.content_types[types.index(content_type)]:
                raise ValueError(
                    f"content type {content_type!r} must be lower-case without parameters"
                )
        self._by_region[region] = adapter
        for content_type in types:
            self._by_content_type[content_type] = adapter
        return adapter

    def get(self, region: str) -> RegionAdapter:
        """The adapter of ``region``; ``UnknownRegionError`` when none is registered."""
        try:
            return self._by_region[region]
        except KeyError:
            raise UnknownRegionError(region) from None

    def for_content_type(self, content_type: str) -> RegionAdapter:
        """The adapter reading ``content_type`` (parameters such as ``; charset=`` are ignored)."""
        try:
            return self._by_content_type[media_type(content_type)]
        except KeyError:
            raise UnknownContentTypeError(content_type) from None

    def regions(self) -> tuple[str, ...]:
        """Registered region codes, sorted."""
        return tuple(sorted(self._by_region))

    def content_types(self) -> dict[str, str]:
        """Every registered content type with the region that reads it."""
        return {ct: adapter.region for ct, adapter in sorted(self._by_content_type.items())}

    def copy(self) -> AdapterRegistry:
        """An independent registry with the same adapters (to add one without side effects)."""
        return AdapterRegistry(tuple(self))

    def __contains__(self, region: object) -> bool:
        return region in self._by_region

    def __iter__(self) -> Iterator[RegionAdapter]:
        return iter(self._by_region[region] for region in self.regions())

    def __len__(self) -> int:
        return len(self._by_region)
