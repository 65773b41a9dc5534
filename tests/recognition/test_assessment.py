"""Equivalence assessment: counterpart choice, parameters side by side, ratio, summary."""

from __future__ import annotations

import dataclasses
from datetime import date
from fractions import Fraction

from yrd.interop.v1 import recognition_pb2, records_pb2

from mutual_recognition import Assessment, DifferenceKind, MatchedBy, assess, choose_counterpart
from tests.recognition.factories import (
    AH,
    JS,
    SH,
    ZJ,
    anhui_pv,
    jiangsu_pv,
    methodology,
    parameter,
    shanghai_pv,
)


def kinds(a: Assessment) -> list[DifferenceKind]:
    return [d.kind for d in a.differences]


def test_shanghai_recognising_jiangsu_grid_factors_side_by_side() -> None:
    a = assess(jiangsu_pv(), [shanghai_pv()], recognising_region=SH)

    assert a.counterpart == "regions/310000/methodologies/SHCI-M-PV-2024-01"
    assert a.same_category is True
    assert a.recognising_region == SH
    (ef,) = a.parameters
    assert ef.code == ef.counterpart_code == "EF_grid"
    assert ef.matched_by is MatchedBy.CODE
    assert (ef.subject.value, ef.subject.unit) == ("0.5978", "kgCO2/kWh")  # type: ignore[union-attr]
    assert (ef.counterpart.value, ef.counterpart.unit) == ("4.2", "tCO2/10^4kWh")  # type: ignore[union-attr]
    assert (ef.subject_normalised, ef.counterpart_normalised) == ("0.5978", "0.42")
    assert ef.normalised_unit == "kgCO2/kWh"
    assert (ef.subject_exact, ef.counterpart_exact) == (Fraction("0.5978"), Fraction("0.42"))
    assert ef.differs is True
    # 0.42 / 0.5978, exactly; Fraction keeps it in lowest terms (300/427).
    assert a.suggested_ratio == Fraction(2100, 2989)
    assert a.suggested_ratio_text == "300/427"
    assert a.ratio_capped is False
    assert DifferenceKind.PARAMETER_VALUE in kinds(a)
    value_diff = next(d for d in a.differences if d.kind is DifferenceKind.PARAMETER_VALUE)
    assert value_diff.code == "EF_grid"
    assert "0.5978 kgCO2/kWh" in value_diff.message
    assert "0.42 kgCO2/kWh (filed as 4.2 tCO2/10^4kWh)" in value_diff.message
    # Jiangsu files no formula: named as a difference.
    assert a.same_formula is False
    assert DifferenceKind.FORMULA in kinds(a)
    for text in ("Jiangsu", "Shanghai", "0.5978", "0.42", "300/427", "0.702576"):
        assert text in a.summary_en
    for text in ("江苏", "上海", "分布式光伏", "300/427"):
        assert text in a.summary_zh
    assert a.summary == f"{a.summary_en}\n{a.summary_zh}"


def test_anhui_against_shanghai() -> None:
    a = assess(anhui_pv(), [shanghai_pv()], recognising_region=SH)
    assert a.suggested_ratio == Fraction("0.42") / Fraction("0.6782") == Fraction(2100, 3391)
    (ef,) = a.parameters
    assert (ef.subject_normalised, ef.counterpart_normalised) == ("0.6782", "0.42")
    assert "0.619286" in a.summary_en  # 2100/3391 rounded for the reader


def test_ratio_is_capped_at_one_when_the_recogniser_factor_is_higher() -> None:
    # Anhui recognising Shanghai: 0.6782 / 0.42 > 1, but a recogniser never credits more.
    a = assess(shanghai_pv(), [anhui_pv()], recognising_region=AH)
    assert a.suggested_ratio == 1
    assert a.ratio_capped is True
    assert "capped" in a.ratio_basis
    assert "never credits more" in a.summary_en


def test_no_counterpart() -> None:
    transit = methodology(
        AH,
        "AH-FFX-LX-2024-01",
        parameter("EF_metro", "170", "gCO2/人次"),
        category=records_pb2.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    )
    a = assess(shanghai_pv(), [transit], recognising_region=AH)
    assert a.counterpart == ""
    assert a.counterpart_version == ""
    assert a.same_category is False
    assert a.same_formula is None
    assert a.suggested_ratio is None
    assert a.suggested_ratio_text == ""
    assert kinds(a) == [DifferenceKind.NO_COUNTERPART]
    (ef,) = a.parameters  # the subject's parameters are still shown, normalised
    assert ef.counterpart is None
    assert ef.matched_by is MatchedBy.UNMATCHED
    assert (ef.subject_normalised, ef.counterpart_normalised) == ("0.42", "")
    assert ef.differs is True and not ef.comparable
    assert "Anhui (340000) has no methodology of the same category" in a.summary_en
    assert "安徽（340000）没有同类" in a.summary_zh
    assert assess(shanghai_pv(), []).recognising_region == ""


def test_counterparts_of_other_regions_and_the_subjects_own_are_ignored() -> None:
    zhejiang = methodology(ZJ, "ZJ-TPH-FF-2023-003", parameter("EF_grid", "0.5153", "kgCO2/kWh"))
    own = methodology(JS, "JS-OTHER", parameter("EF_grid", "0.5978", "kgCO2/kWh"))
    a = assess(jiangsu_pv(), [zhejiang, own, shanghai_pv()], recognising_region=SH)
    assert a.counterpart.startswith("regions/310000/")
    b = assess(jiangsu_pv(), [own])
    assert b.counterpart == ""


def test_choice_among_several_counterparts() -> None:
    old = methodology(
        SH,
        "SH-PV-OLD",
        parameter("EF_grid", "7.9", "tCO2/10^4kWh"),
        start=date(2018, 1, 1),
        version="3",
    )
    new = methodology(
        SH,
        "SH-PV-NEW",
        parameter("EF_grid", "4.2", "tCO2/10^4kWh"),
        start=date(2024, 3, 1),
        version="1",
    )
    v2 = methodology(
        SH,
        "SH-PV-NEW",
        parameter("EF_grid", "4.2", "tCO2/10^4kWh"),
        start=date(2024, 3, 1),
        version="1.10",
    )
    v1_9 = methodology(
        SH,
        "SH-PV-NEW",
        parameter("EF_grid", "4.2", "tCO2/10^4kWh"),
        start=date(2024, 3, 1),
        version="1.9",
    )
    withdrawn = methodology(
        SH,
        "SH-PV-WD",
        parameter("EF_grid", "4.2", "tCO2/10^4kWh"),
        start=date(2025, 1, 1),
        status=records_pb2.METHODOLOGY_STATUS_WITHDRAWN,
    )
    subject = jiangsu_pv()
    # Newest effective start wins over a higher version.
    assert choose_counterpart(subject, [old, new]) is new
    # Same start: highest version, compared numerically (1.10 > 1.9 > 1).
    assert choose_counterpart(subject, [new, v2, v1_9]) is v2
    # A withdrawn methodology only when nothing else is left.
    assert choose_counterpart(subject, [withdrawn, old]) is old
    assert choose_counterpart(subject, [withdrawn]) is withdrawn


def test_parameters_with_different_codes_pair_by_dimension() -> None:
    ah = methodology(
        AH,
        "AH-PV",
        parameter("EF_power", "0.6782", "kgCO2/kWh"),
        parameter("EF_bike", "40", "gCO2/km"),
    )
    sh = methodology(SH, "SH-PV", parameter("EF_grid", "0.42", "tCO2/MWh"))
    a = assess(ah, [sh])
    ef, bike = a.parameters
    assert (ef.code, ef.counterpart_code, ef.matched_by) == (
        "EF_power",
        "EF_grid",
        MatchedBy.DIMENSION,
    )
    assert a.suggested_ratio == Fraction(2100, 3391)
    assert bike.counterpart is None
    assert (bike.subject_normalised, bike.normalised_unit) == ("0.04", "kgCO2/km")
    assert DifferenceKind.PARAMETER_ONLY_IN_SUBJECT in kinds(a)
    assert any("EF_power/EF_grid" in d.message for d in a.differences)


def test_unknown_unit_is_named_not_guessed_and_gives_no_ratio() -> None:
    odd = methodology(JS, "JS-PV", parameter("EF_grid", "0.5978", "kg/kWh"))
    a = assess(odd, [shanghai_pv()])
    (ef,) = a.parameters
    assert not ef.comparable and ef.differs
    assert (ef.subject_normalised, ef.counterpart_normalised) == ("", "")
    assert "unknown unit 'kg/kWh'" in ef.note
    assert DifferenceKind.PARAMETER_NOT_COMPARABLE in kinds(a)
    assert a.suggested_ratio is None
    assert "No ETS adjustment ratio is suggested" in a.summary_en


def test_same_unknown_unit_on_both_sides_compares_values_as_filed() -> None:
    s = methodology(
        JS,
        "JS-W",
        parameter("K", "3", "次/户"),
        category=records_pb2.SCENARIO_CATEGORY_WASTE_SORTING,
        formula="ER = K",
    )
    c = methodology(
        SH,
        "SH-W",
        parameter("K", "3.0", "次/户"),
        category=records_pb2.SCENARIO_CATEGORY_WASTE_SORTING,
        formula="ER  =  K",
    )
    a = assess(s, [c])
    (k,) = a.parameters
    assert k.comparable and not k.differs
    assert k.normalised_unit == "次/户"
    assert a.same_formula is True  # whitespace is not a difference
    assert a.differences == ()
    assert a.suggested_ratio is None  # no grid factor in a waste-sorting methodology
    assert "No differences found." in a.summary_en


def test_identical_grid_factors_in_different_units_suggest_ratio_one() -> None:
    s = methodology(ZJ, "ZJ-PV", parameter("EF_grid", "0.5153", "kgCO2/kWh"))
    c = methodology(SH, "SH-PV", parameter("EF_grid", "5.153", "tCO2/万kWh"))
    a = assess(s, [c])
    (ef,) = a.parameters
    assert not ef.differs
    assert a.suggested_ratio == 1 and not a.ratio_capped
    assert a.differences == ()


def test_year_and_eligibility_differences_are_named() -> None:
    s = methodology(AH, "AH-PV", parameter("EF_grid", "0.6782", "kgCO2/kWh", year=2022))
    c = methodology(SH, "SH-PV", parameter("EF_grid", "4.2", "tCO2/10^4kWh", year=2021))
    s.eligibility.max_capacity.CopyFrom(records_pb2.ExactQuantity(value="1000", unit="kW"))
    c.eligibility.max_capacity.CopyFrom(records_pb2.ExactQuantity(value="6", unit="MW"))
    s.eligibility.max_lifetime_years = 25
    a = assess(s, [c])
    assert DifferenceKind.PARAMETER_YEAR in kinds(a)
    assert DifferenceKind.MAX_CAPACITY in kinds(a)
    assert DifferenceKind.MAX_LIFETIME in kinds(a)
    cap = next(d for d in a.differences if d.kind is DifferenceKind.MAX_CAPACITY)
    assert cap.message == "maximum capacity: 1000 kW vs 6 MW"
    assert cap.message_zh == "装机容量上限：1000 kW 对 6 MW"
    c.eligibility.max_capacity.CopyFrom(records_pb2.ExactQuantity(value="1", unit="MW"))
    assert DifferenceKind.MAX_CAPACITY not in kinds(assess(s, [c]))  # 1000 kW = 1 MW


def test_non_terminating_normalised_value_is_rounded_and_kept_exact() -> None:
    s = methodology(JS, "JS-PV", parameter("EF_grid", "1", "kgCO2/3kWh"))
    a = assess(s, [shanghai_pv()])
    (ef,) = a.parameters
    assert ef.subject_exact == Fraction(1, 3)
    assert ef.subject_normalised == "0.333333"
    # 0.42 / (1/3) = 1.26 > 1: capped.
    assert a.suggested_ratio == 1 and a.ratio_capped
    assert "= 1.26, capped at 1" in a.ratio_basis


def test_assessment_converts_to_the_proto_field_by_field() -> None:
    a = assess(jiangsu_pv(), [shanghai_pv()], recognising_region=SH)
    proto_fields = {f.name for f in recognition_pb2.ParameterComparison.DESCRIPTOR.fields}
    ours = {f.name for f in dataclasses.fields(a.parameters[0])}
    assert proto_fields <= ours
    assert {f.name for f in recognition_pb2.EquivalenceAssessment.DESCRIPTOR.fields} <= (
        {f.name for f in dataclasses.fields(a)} | {"summary"}
    )
    ratio = a.suggested_ratio
    assert ratio is not None
    msg = recognition_pb2.EquivalenceAssessment(
        counterpart=a.counterpart,
        same_category=a.same_category,
        parameters=[
            recognition_pb2.ParameterComparison(
                code=p.code,
                subject=None
                if p.subject is None
                else records_pb2.ExactQuantity(value=p.subject.value, unit=p.subject.unit),
                counterpart=None
                if p.counterpart is None
                else records_pb2.ExactQuantity(value=p.counterpart.value, unit=p.counterpart.unit),
                subject_normalised=p.subject_normalised,
                counterpart_normalised=p.counterpart_normalised,
                normalised_unit=p.normalised_unit,
                differs=p.differs,
            )
            for p in a.parameters
        ],
        suggested_ratio=recognition_pb2.Fraction(
            numerator=ratio.numerator, denominator=ratio.denominator
        ),
        summary=a.summary,
    )
    assert msg.parameters[0].counterpart_normalised == "0.42"
    assert Fraction(msg.suggested_ratio.numerator, msg.suggested_ratio.denominator) == Fraction(
        2100, 2989
    )


def test_assess_does_not_touch_its_inputs() -> None:
    s, c = jiangsu_pv(), shanghai_pv()
    before = (s.SerializeToString(deterministic=True), c.SerializeToString(deterministic=True))
    assess(s, [c])
    assert (
        s.SerializeToString(deterministic=True),
        c.SerializeToString(deterministic=True),
    ) == before
