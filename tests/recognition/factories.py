"""Builders shared by the recognition tests: methodologies, actors, times, recognitions."""

from __future__ import annotations

from datetime import UTC, date, datetime

from yrd.interop.v1 import records_pb2

from mutual_recognition import (
    Actor,
    ApprovalPolicy,
    Conditions,
    Recognition,
    Role,
    Subject,
    request,
)

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV


def parameter(
    code: str, value: str, unit: str, *, name: str = "", year: int = 2022
) -> records_pb2.Parameter:
    return records_pb2.Parameter(
        code=code,
        name=name or code,
        quantity=records_pb2.ExactQuantity(value=value, unit=unit),
        source="test",
        year=year,
    )


def methodology(
    region: str,
    methodology_id: str,
    *params: records_pb2.Parameter,
    version: str = "1",
    category: records_pb2.ScenarioCategory.ValueType = PV,
    formula: str = "ER = EG × EF_grid",
    start: date | None = None,
    status: records_pb2.MethodologyStatus.ValueType = records_pb2.METHODOLOGY_STATUS_EFFECTIVE,
) -> records_pb2.Methodology:
    m = records_pb2.Methodology(
        name=f"regions/{region}/methodologies/{methodology_id}",
        region=region,
        methodology_id=methodology_id,
        version=version,
        title=methodology_id,
        category=category,
        formula=formula,
        parameters=list(params),
        status=status,
    )
    if start is not None:
        m.effective.start.CopyFrom(
            records_pb2.CalendarDate(year=start.year, month=start.month, day=start.day)
        )
    return m


def shanghai_pv() -> records_pb2.Methodology:
    return methodology(SH, "SHCI-M-PV-2024-01", parameter("EF_grid", "4.2", "tCO2/10^4kWh"))


def jiangsu_pv() -> records_pb2.Methodology:
    return methodology(JS, "JS-FFX-GF-001", parameter("EF_grid", "0.5978", "kgCO2/kWh"), formula="")


def anhui_pv() -> records_pb2.Methodology:
    return methodology(AH, "AH-FFX-PV-2024-02", parameter("EF_grid", "0.6782", "kgCO2/kWh"))


def admin(region: str, name: str) -> Actor:
    return Actor(region=region, role=Role.ADMIN, name=name)


def registry(region: str) -> Actor:
    return Actor(region=region, role=Role.REGISTRY)


AH_METHODOLOGY = Subject.methodology("regions/340000/methodologies/AH-FFX-PV-2024-02", "1")
AH_PROJECT = Subject.project("regions/340000/projects/AH-PV-0001")


def requested(
    *,
    recogniser: str = SH,
    quorum: int = 1,
    subject: Subject = AH_METHODOLOGY,
    conditions: Conditions | None = None,
    request_id: str = "req-1",
    now: datetime = NOW,
) -> Recognition:
    """One REQUESTED recognition of an Anhui subject by ``recogniser``."""
    (rec,) = request(
        request_id=request_id,
        subject=subject,
        actor=registry(subject.region),
        now=now,
        policy=ApprovalPolicy(approvals={recogniser: quorum}),
        recognising_regions=[recogniser],
        conditions=conditions,
    )
    return rec
