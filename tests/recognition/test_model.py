"""Values that cannot be built wrong: subjects, conditions, actors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from mutual_recognition import (
    Actor,
    Conditions,
    InvalidConditions,
    InvalidSubject,
    Role,
    Subject,
    SubjectKind,
)


def test_subjects() -> None:
    m = Subject.methodology("regions/340000/methodologies/AH-FFX-PV-2024-02", "1")
    assert (m.kind, m.region, str(m)) == (
        SubjectKind.METHODOLOGY,
        "340000",
        "regions/340000/methodologies/AH-FFX-PV-2024-02@1",
    )
    p = Subject.project("regions/310000/projects/SH-P-1")
    assert (p.kind, p.region, p.version) == (SubjectKind.PROJECT, "310000", None)


@pytest.mark.parametrize(
    ("kind", "name", "version"),
    [
        (SubjectKind.METHODOLOGY, "regions/340000/projects/P-1", "1"),  # a project's name
        (SubjectKind.METHODOLOGY, "regions/340000/methodologies/M-1", None),  # no version
        (SubjectKind.METHODOLOGY, "regions/340000/methodologies/M-1", "  "),
        (SubjectKind.PROJECT, "regions/340000/projects/P-1", "1"),  # a project takes none
        (SubjectKind.PROJECT, "regions/anhui/projects/P-1", None),
        (SubjectKind.PROJECT, "regions/340000/projects/a/b", None),
        (SubjectKind.PROJECT, "projects/P-1", None),
    ],
)
def test_malformed_subjects_are_refused(kind: SubjectKind, name: str, version: str | None) -> None:
    with pytest.raises(InvalidSubject):
        Subject(kind, name, version)


def test_conditions_and_expiry_in_china_standard_time() -> None:
    c = Conditions(
        vintage_from=2023,
        vintage_to=2023,
        ets_adjustment_ratio=Fraction(1),
        expire_date=date(2026, 12, 31),
    )
    assert c.covers_vintage(2023) and not c.covers_vintage(2024)
    assert c.expires_at == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert Conditions().expires_at is None
    assert Conditions().covers_vintage(1990)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vintage_from": 2025, "vintage_to": 2024},
        {"vintage_from": 24},
        {"vintage_to": True},
        {"ets_adjustment_ratio": Fraction(0)},
        {"ets_adjustment_ratio": Fraction(5, 4)},
        {"ets_adjustment_ratio": 0.7},
        {"expire_date": datetime(2026, 1, 1, tzinfo=UTC)},
    ],
)
def test_malformed_conditions_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidConditions):
        Conditions(**kwargs)  # type: ignore[arg-type]


def test_actor_labels() -> None:
    assert str(Actor.admin("310000", "alice")) == "310000/admin/alice"
    assert str(Actor.registry("340000")) == "340000/registry"
    assert str(Actor(region=None, role=Role.GATEWAY)) == "gateway"
