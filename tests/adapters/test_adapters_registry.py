"""The adapter registry, and adding a region (Guangdong 440000) with one module + one line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from yrd.interop.v1 import records_pb2 as pb

import adapters
from adapters import (
    NativeFormatError,
    RegionAdapter,
    ShanghaiAdapter,
    UnknownContentTypeError,
    UnknownRegionError,
    build_default_registry,
    default_registry,
)
from tests.adapters.guangdong_adapter import GuangdongAdapter

CONTENT_TYPES = {
    "application/vnd.yrd.310000+json": "310000",
    "application/vnd.yrd.320000+xml": "320000",
    "application/vnd.yrd.330000+json": "330000",
    "text/vnd.yrd.340000+csv": "340000",
}


def test_default_registry_has_the_four_regions() -> None:
    assert default_registry.regions() == ("310000", "320000", "330000", "340000")
    assert default_registry.content_types() == CONTENT_TYPES
    assert len(default_registry) == 4 and "310000" in default_registry
    for content_type, region in CONTENT_TYPES.items():
        adapter = default_registry.for_content_type(content_type)
        assert adapter is default_registry.get(region)
        assert isinstance(adapter, RegionAdapter)
        assert adapter.content_types == (content_type,)
    assert [a.serial_unit_grams for a in default_registry] == [1_000, 1_000_000, 1, 1_000]


def test_lookups_of_unknown_regions_and_content_types() -> None:
    with pytest.raises(UnknownRegionError) as region:
        default_registry.get("440000")
    assert isinstance(region.value, LookupError) and region.value.region == "440000"
    with pytest.raises(UnknownContentTypeError) as content_type:
        default_registry.for_content_type("application/json")
    assert isinstance(content_type.value, LookupError)
    assert default_registry.for_content_type("TEXT/vnd.yrd.340000+csv; charset=GB18030").region == (
        "340000"
    )


def test_registration_conflicts_are_refused() -> None:
    registry = build_default_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ShanghaiAdapter())

    class SecondReader(GuangdongAdapter):
        content_types = ("application/vnd.yrd.310000+json",)

    with pytest.raises(ValueError, match="already read by region 310000"):
        registry.register(SecondReader())

    class BadCode(GuangdongAdapter):
        region = "44"

    with pytest.raises(ValueError, match="6-digit"):
        registry.register(BadCode())
    with pytest.raises(TypeError):
        registry.register(object())  # type: ignore[arg-type]
    assert registry.regions() == ("310000", "320000", "330000", "340000")


def test_adding_guangdong_is_one_module_and_one_registration_line() -> None:
    registry = build_default_registry()
    registry.register(GuangdongAdapter())  # ← the one line

    adapter = registry.get("440000")
    assert registry.for_content_type("application/vnd.yrd.440000+json") is adapter
    assert registry.regions() == ("310000", "320000", "330000", "340000", "440000")
    assert "440000" not in default_registry and "440000" not in build_default_registry()

    issuance = pb.Issuance(
        name="regions/440000/issuances/GD-QF-1",
        region="440000",
        issuance_id="GD-QF-1",
        project="regions/440000/projects/GD-XM-1",
        vintage=2025,
        monitoring_period=pb.DateRange(
            start=pb.CalendarDate(year=2025, month=1, day=1),
            end=pb.CalendarDate(year=2025, month=3, day=31),
        ),
        quantity_grams=5_000,
        serials=pb.SerialRange(start=10_000, end=14_999),
    )
    native = adapter.from_common(issuance)
    assert adapter.to_common(adapter.content_types[0], native) == [issuance]

    # The new region's records flow into every other format, exactly: Jiangsu counts tonnes, so
    # the 5 kg block travels with its serials in kilograms (the largest unit that is exact)…
    for region in ("310000", "320000", "330000", "340000"):
        other = registry.get(region)
        back = other.to_common(
            other.content_types[0], other.from_common(issuance), accept_foreign=True
        )
        assert back == [issuance]
    # …but no other region publishes them as its own.
    shanghai = registry.get("310000")
    with pytest.raises(NativeFormatError) as refused:
        shanghai.to_common(shanghai.content_types[0], shanghai.from_common(issuance))
    assert [i.field for i in refused.value.issues] == ["origin_region"]


def test_copy_is_independent() -> None:
    registry = default_registry.copy()
    registry.register(GuangdongAdapter())
    assert "440000" in registry and "440000" not in default_registry


def test_adapters_package_never_imports_the_gateway() -> None:
    package = Path(adapters.__file__).resolve().parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "gateway" or n.startswith("gateway.") for n in names), path.name
