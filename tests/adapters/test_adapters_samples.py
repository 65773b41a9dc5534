"""Every sample of adapters/samples converts to the expected common values and back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from yrd.interop.v1 import records_pb2 as pb

from adapters import AdapterRegistry, AnhuiAdapter, CommonRecord
from tests.adapters.conftest import (
    DEMO_SAMPLE_NAMES,
    IDENTITY_SAMPLE_NAMES,
    SAMPLE_NAMES,
    find_samples_dir,
)

SC = pb.ScenarioCategory
MS = pb.MethodologyStatus
PS = pb.ProjectStatus


def cal(year: int, month: int, day: int) -> pb.CalendarDate:
    return pb.CalendarDate(year=year, month=month, day=day)


def span(start: tuple[int, int, int], end: tuple[int, int, int] | None) -> pb.DateRange:
    result = pb.DateRange(start=cal(*start))
    if end is not None:
        result.end.CopyFrom(cal(*end))
    return result


def parse(
    registry: AdapterRegistry, sample: Callable[[str], bytes], name: str
) -> list[CommonRecord]:
    adapter = registry.get(name[:6])
    return adapter.to_common(adapter.content_types[0], sample(name))


def test_samples_are_complete(samples_dir: Path) -> None:
    assert samples_dir == find_samples_dir()
    assert len(SAMPLE_NAMES) == 12
    for name in SAMPLE_NAMES:  # every region's methodology, project and issuance
        assert (samples_dir / name).is_file(), name
    assert {p.name for p in samples_dir.iterdir()} == {
        *SAMPLE_NAMES,
        *IDENTITY_SAMPLE_NAMES,
        *DEMO_SAMPLE_NAMES,
    }


# -- Shanghai ---------------------------------------------------------------------------------


def test_shanghai_methodology(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    [m] = parse(registry, sample_bytes, "310000-methodology.json")
    assert m == pb.Methodology(
        name="regions/310000/methodologies/SHCI-M-PV-2024-01",
        region="310000",
        methodology_id="SHCI-M-PV-2024-01",
        version="1",
        title="上海市分布式光伏发电项目碳普惠方法学",
        category=SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
        formula="ER = EG × EF_grid",
        parameters=[
            pb.Parameter(
                code="EF_grid",
                name="上海市电力排放因子",
                quantity=pb.ExactQuantity(value="4.2", unit="tCO2/10^4kWh"),
                source="沪环气〔2022〕34号",
                year=2022,
            )
        ],
        eligibility=pb.EligibilityRules(
            max_capacity=pb.ExactQuantity(value="1", unit="MW"), max_lifetime_years=25
        ),
        effective=span((2024, 3, 1), (2029, 2, 28)),
        status=MS.METHODOLOGY_STATUS_EFFECTIVE,
        filing_document="沪环气候〔2024〕45号",
    )


def test_shanghai_project(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [p] = parse(registry, sample_bytes, "310000-project.json")
    assert p == pb.Project(
        name="regions/310000/projects/SHCI-P-2024-000123",
        region="310000",
        project_id="SHCI-P-2024-000123",
        methodology=pb.MethodologyRef(
            region="310000", methodology_id="SHCI-M-PV-2024-01", version="1"
        ),
        title="浦东某园区屋顶分布式光伏",
        owner="上海某新能源科技有限公司",
        county_code="310115",
        capacity=pb.ExactQuantity(value="0.85", unit="MW"),
        start_date=cal(2023, 6, 30),
        crediting_period=span((2023, 7, 1), (2033, 6, 30)),
        status=PS.PROJECT_STATUS_REGISTERED,
    )


def test_shanghai_issuance(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [i] = parse(registry, sample_bytes, "310000-issuance.json")
    # 392.700 t is 392,700,000 g on serials [1,000,001,000, 1,392,700,999] (kg serials × 1000).
    assert i == pb.Issuance(
        name="regions/310000/issuances/SHCI-I-2025-000045",
        region="310000",
        issuance_id="SHCI-I-2025-000045",
        project="regions/310000/projects/SHCI-P-2024-000123",
        vintage=2024,
        monitoring_period=span((2024, 1, 1), (2024, 12, 31)),
        quantity_grams=392_700_000,
        serials=pb.SerialRange(start=1_000_001_000, end=1_392_700_999),
    )


# -- Jiangsu ----------------------------------------------------------------------------------


def test_jiangsu_methodology(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    [m] = parse(registry, sample_bytes, "320000-methodology.xml")
    assert m == pb.Methodology(
        name="regions/320000/methodologies/JS-FFX-GF-001",
        region="320000",
        methodology_id="JS-FFX-GF-001",
        version="1",
        title="江苏省分布式光伏发电碳普惠方法学",
        category=SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
        parameters=[
            pb.Parameter(
                code="EF_grid",
                name="江苏省电网排放因子",
                quantity=pb.ExactQuantity(value="0.5978", unit="kgCO2/kWh"),
                source="生态环境部 国家统计局 2022年电力二氧化碳排放因子",
                year=2022,
            )
        ],
        effective=span((2024, 1, 1), (2028, 12, 31)),
        status=MS.METHODOLOGY_STATUS_EFFECTIVE,
    )


def test_jiangsu_project(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [p] = parse(registry, sample_bytes, "320000-project.xml")
    assert p == pb.Project(
        name="regions/320000/projects/JS-XM-2024-0456",
        region="320000",
        project_id="JS-XM-2024-0456",
        methodology=pb.MethodologyRef(region="320000", methodology_id="JS-FFX-GF-001", version="1"),
        title="吴中区厂房屋顶分布式光伏项目",
        owner="苏州某光伏电力有限公司",
        county_code="320506",
        capacity=pb.ExactQuantity(value="800", unit="kW"),
        start_date=cal(2023, 9, 15),
        crediting_period=span((2023, 10, 1), (2033, 9, 30)),
        status=PS.PROJECT_STATUS_REGISTERED,
    )


def test_jiangsu_issuance(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [i] = parse(registry, sample_bytes, "320000-issuance.xml")
    # 502 t on tonne serials 20001..20502 → grams [20,001,000,000, 20,502,999,999].
    assert i == pb.Issuance(
        name="regions/320000/issuances/JS-QF-2025-0012",
        region="320000",
        issuance_id="JS-QF-2025-0012",
        project="regions/320000/projects/JS-XM-2024-0456",
        vintage=2024,
        monitoring_period=span((2024, 1, 1), (2024, 12, 31)),
        quantity_grams=502_000_000,
        serials=pb.SerialRange(start=20_001_000_000, end=20_502_999_999),
    )


# -- Zhejiang ---------------------------------------------------------------------------------


def test_zhejiang_methodology(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    [m] = parse(registry, sample_bytes, "330000-methodology.json")
    assert m == pb.Methodology(
        name="regions/330000/methodologies/1526163848812433408",
        region="330000",
        methodology_id="1526163848812433408",
        version="1",
        title="浙江省分布式光伏碳普惠方法学",
        category=SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
        parameters=[
            pb.Parameter(
                code="EF_grid",
                name="浙江省电力排放因子",
                quantity=pb.ExactQuantity(value="0.5153", unit="kgCO2/kWh"),
                source="生态环境部 国家统计局 2022年电力二氧化碳排放因子",
                year=2022,
            )
        ],
        # "2028-06-30 23:59:59" Beijing time is the civil date 2028-06-30.
        effective=span((2023, 7, 1), (2028, 6, 30)),
        status=MS.METHODOLOGY_STATUS_EFFECTIVE,
        native_ids={"methodologyNum": "ZJ-TPH-FF-2023-003"},
    )


def test_zhejiang_project(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [p] = parse(registry, sample_bytes, "330000-project.json")
    assert p == pb.Project(
        name="regions/330000/projects/1626163848812433999",
        region="330000",
        project_id="1626163848812433999",
        # Zhejiang names the methodology by its 19-digit id only; the version is left empty.
        methodology=pb.MethodologyRef(region="330000", methodology_id="1526163848812433408"),
        title="吴兴区工业园分布式光伏项目",
        owner="湖州某绿色能源有限公司",
        county_code="330502",
        capacity=pb.ExactQuantity(value="600", unit="kW"),
        start_date=cal(2023, 12, 20),
        crediting_period=span((2024, 1, 1), (2033, 12, 31)),
        status=PS.PROJECT_STATUS_REGISTERED,
        native_ids={"projectNum": "ZJ-XM-2024-00077"},
    )


def test_zhejiang_project_resolves_to_sample_methodology(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    [m] = parse(registry, sample_bytes, "330000-methodology.json")
    [p] = parse(registry, sample_bytes, "330000-project.json")
    assert isinstance(m, pb.Methodology) and isinstance(p, pb.Project)
    assert registry.get("330000").methodology_ref(m) == p.methodology


def test_zhejiang_issuance(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    [i] = parse(registry, sample_bytes, "330000-issuance.json")
    # 309180.000 kg = 309,180,000 g on gram serials 5000000001..5309180000 (k = 1).
    assert i == pb.Issuance(
        name="regions/330000/issuances/1726163848812434001",
        region="330000",
        issuance_id="1726163848812434001",
        project="regions/330000/projects/1626163848812433999",
        vintage=2024,
        monitoring_period=span((2024, 1, 1), (2024, 12, 31)),
        quantity_grams=309_180_000,
        serials=pb.SerialRange(start=5_000_000_001, end=5_309_180_000),
    )


# -- Anhui ------------------------------------------------------------------------------------


def test_anhui_methodologies(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    pv, travel = parse(registry, sample_bytes, "340000-methodology.csv")
    assert pv == pb.Methodology(
        name="regions/340000/methodologies/AH-FFX-PV-2024-02",
        region="340000",
        methodology_id="AH-FFX-PV-2024-02",
        version="1",
        title="安徽省分布式光伏发电碳普惠方法学",
        category=SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
        parameters=[
            pb.Parameter(
                code="EF_grid",
                name="安徽省电力排放因子",
                quantity=pb.ExactQuantity(value="0.6782", unit="kgCO2/kWh"),
                source="生态环境部 国家统计局 2022年电力二氧化碳排放因子",
                year=2022,
            )
        ],
        effective=span((2024, 4, 1), (2029, 3, 31)),
        status=MS.METHODOLOGY_STATUS_EFFECTIVE,
    )
    # Two rows (one per parameter) form one methodology; no expiry date → open-ended.
    assert travel == pb.Methodology(
        name="regions/340000/methodologies/AH-FFX-LX-2024-01",
        region="340000",
        methodology_id="AH-FFX-LX-2024-01",
        version="1",
        title="安徽省绿色出行碳普惠方法学",
        category=SC.SCENARIO_CATEGORY_CYCLING_WALKING,
        parameters=[
            pb.Parameter(
                code="EF_metro",
                name="地铁出行减排量",
                quantity=pb.ExactQuantity(value="170", unit="gCO2/人次"),
                source="合肥市轨道交通统计",
                year=2023,
            ),
            pb.Parameter(
                code="EF_bike",
                name="骑行减排量",
                quantity=pb.ExactQuantity(value="40", unit="gCO2/km"),
                source="合肥市交通运输局",
                year=2023,
            ),
        ],
        effective=span((2024, 6, 1), None),
        status=MS.METHODOLOGY_STATUS_EFFECTIVE,
    )
    assert isinstance(travel, pb.Methodology) and not travel.effective.HasField("end")


def test_anhui_projects(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    pv, scenario = parse(registry, sample_bytes, "340000-project.csv")
    assert pv == pb.Project(
        name="regions/340000/projects/AH-XM-2024-0031",
        region="340000",
        project_id="AH-XM-2024-0031",
        methodology=pb.MethodologyRef(
            region="340000", methodology_id="AH-FFX-PV-2024-02", version="1"
        ),
        title="蜀山区产业园屋顶光伏项目",
        owner="合肥某能源科技有限公司",
        county_code="340104",
        capacity=pb.ExactQuantity(value="500", unit="kW"),
        start_date=cal(2024, 2, 28),
        crediting_period=span((2024, 3, 1), (2034, 2, 28)),
        status=PS.PROJECT_STATUS_REGISTERED,
    )
    # A personal scenario: no capacity and no grid connection date.
    assert scenario == pb.Project(
        name="regions/340000/projects/AH-XM-2024-0088",
        region="340000",
        project_id="AH-XM-2024-0088",
        methodology=pb.MethodologyRef(
            region="340000", methodology_id="AH-FFX-LX-2024-01", version="1"
        ),
        title="合肥市民绿色出行碳普惠场景",
        owner="合肥市碳普惠运营中心",
        county_code="340100",
        crediting_period=span((2024, 6, 1), (2027, 5, 31)),
        status=PS.PROJECT_STATUS_REGISTERED,
    )
    assert isinstance(scenario, pb.Project)
    assert not scenario.HasField("capacity") and not scenario.HasField("start_date")


def test_anhui_issuances(registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]) -> None:
    first, second = parse(registry, sample_bytes, "340000-issuance.csv")
    # 373.01 吨 on kg serials 1..373010 → grams [1,000, 373,010,999].
    assert first == pb.Issuance(
        name="regions/340000/issuances/AH-QF-2025-0101",
        region="340000",
        issuance_id="AH-QF-2025-0101",
        project="regions/340000/projects/AH-XM-2024-0031",
        vintage=2024,
        monitoring_period=span((2024, 3, 1), (2024, 12, 31)),
        quantity_grams=373_010_000,
        serials=pb.SerialRange(start=1_000, end=373_010_999),
    )
    # 12345000 克 = 12,345 kg on kg serials 373011..385355.
    assert second == pb.Issuance(
        name="regions/340000/issuances/AH-QF-2025-0102",
        region="340000",
        issuance_id="AH-QF-2025-0102",
        project="regions/340000/projects/AH-XM-2024-0088",
        vintage=2024,
        monitoring_period=span((2024, 6, 1), (2024, 12, 31)),
        quantity_grams=12_345_000,
        serials=pb.SerialRange(start=373_011_000, end=385_355_999),
    )


# -- back to native -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_rerenders_and_parses_back_identically(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes], name: str
) -> None:
    adapter = registry.get(name[:6])
    records = adapter.to_common(adapter.content_types[0], sample_bytes(name))
    for record in records:
        rendered = adapter.from_common(record)
        assert adapter.to_common(adapter.content_types[0], rendered) == [record]


# Rendering is canonical; every sample except one is already in canonical form, byte for byte.
# (340000-issuance.csv writes 12,345 kg as "12345000,克"; the canonical rendering is "12.345,吨".)
BYTE_IDENTICAL = [n for n in SAMPLE_NAMES if n[:6] != "340000"]


@pytest.mark.parametrize("name", BYTE_IDENTICAL)
def test_single_record_samples_rerender_byte_for_byte(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes], name: str
) -> None:
    adapter = registry.get(name[:6])
    [record] = adapter.to_common(adapter.content_types[0], sample_bytes(name))
    assert adapter.from_common(record) == sample_bytes(name)


@pytest.mark.parametrize("kind", ["methodology", "project"])
def test_anhui_files_rerender_byte_for_byte(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes], kind: str
) -> None:
    adapter = registry.get("340000")
    assert isinstance(adapter, AnhuiAdapter)
    original = sample_bytes(f"340000-{kind}.csv")
    records = adapter.to_common(adapter.content_types[0], original)
    assert adapter.from_common_many(records) == original


def test_anhui_issuance_file_rerenders_equivalently(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    adapter = registry.get("340000")
    assert isinstance(adapter, AnhuiAdapter)
    records = adapter.to_common(adapter.content_types[0], sample_bytes("340000-issuance.csv"))
    rendered = adapter.from_common_many(records)
    assert adapter.to_common(adapter.content_types[0], rendered) == records
    lines = rendered.decode("gb18030").split("\r\n")
    assert lines[1].endswith(",373.01,吨,1,373010")
    assert lines[2].endswith(",12.345,吨,373011,385355")


def test_anhui_from_common_of_one_record_is_a_one_row_gb18030_file(
    registry: AdapterRegistry, sample_bytes: Callable[[str], bytes]
) -> None:
    adapter = registry.get("340000")
    first, _ = adapter.to_common(adapter.content_types[0], sample_bytes("340000-project.csv"))
    rendered = adapter.from_common(first)
    text = rendered.decode("gb18030")
    assert text.count("\r\n") == 2  # header + one row
    assert text.startswith("记录类型,项目编号,")
    with pytest.raises(UnicodeDecodeError):
        rendered.decode("utf-8")
