"""Regional adapters: each region's native records ⇄ the common schema ``yrd.interop.v1``.

``default_registry`` holds one adapter per region. Adding a region (Guangdong 440000, say) is one
new module ``adapters/r440000_guangdong.py`` implementing ``RegionAdapter`` and one registration
line in ``build_default_registry`` below.
"""

from __future__ import annotations

from adapters.base import AdapterBase, CommonRecord, RegionAdapter
from adapters.errors import (
    AdapterError,
    FieldIssue,
    NativeFormatError,
    NotExpressibleError,
    UnknownContentTypeError,
    UnknownRegionError,
)
from adapters.r310000_shanghai import ShanghaiAdapter
from adapters.r320000_jiangsu import JiangsuAdapter
from adapters.r330000_zhejiang import ZhejiangAdapter
from adapters.r340000_anhui import AnhuiAdapter
from adapters.registry import AdapterRegistry

__all__ = [
    "AdapterBase",
    "AdapterError",
    "AdapterRegistry",
    "AnhuiAdapter",
    "CommonRecord",
    "FieldIssue",
    "JiangsuAdapter",
    "NativeFormatError",
    "NotExpressibleError",
    "RegionAdapter",
    "ShanghaiAdapter",
    "UnknownContentTypeError",
    "UnknownRegionError",
    "ZhejiangAdapter",
    "build_default_registry",
    "default_registry",
]


def build_default_registry() -> AdapterRegistry:
    """A new registry with the adapter of every region (one line per region)."""
    registry = AdapterRegistry()
    registry.register(ShanghaiAdapter())
    registry.register(JiangsuAdapter())
    registry.register(ZhejiangAdapter())
    registry.register(AnhuiAdapter())
    return registry


#: The registry the gateway uses.
default_registry: AdapterRegistry = build_default_registry()
