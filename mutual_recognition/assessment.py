"""Equivalence assessment: a methodology side by side with the recogniser's counterpart.

``assess`` picks the recognising region's methodology of the same scenario category, pairs the
parameters (by code, then by unit dimension for the ones left over), normalises units before
comparing, names every difference, suggests an ETS adjustment ratio from the grid emission factors
and writes a plain-language summary in English and Chinese. Field names follow the proto's
``EquivalenceAssessment`` and ``ParameterComparison`` so the gateway converts them one to one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from yrd.interop.v1 import records_pb2

from adapters.quantities import capacity_watts
from mutual_recognition.errors import RecognitionError
from mutual_recognition.units import (
    Dimension,
    NormalisedValue,
    format_fraction,
    normalise,
    parse_decimal,
    render_normalised,
)

__all__ = [
    "GRID_FACTOR_CODE",
    "Assessment",
    "Difference",
    "DifferenceKind",
    "MatchedBy",
    "ParameterComparison",
    "Quantity",
    "assess",
    "choose_counterpart",
]

GRID_FACTOR_CODE = "EF_grid"
"""Parameter code preferred as the grid emission factor when several electricity factors pair."""

REGION_NAMES: dict[str, tuple[str, str]] = {
    "310000": ("Shanghai", "上海"),
    "320000": ("Jiangsu", "江苏"),
    "330000": ("Zhejiang", "浙江"),
    "340000": ("Anhui", "安徽"),
}

_CATEGORY_NAMES: dict[int, tuple[str, str]] = {
    records_pb2.SCENARIO_CATEGORY_UNSPECIFIED: ("unspecified", "未指定"),
    records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV: ("distributed PV", "分布式光伏"),
    records_pb2.SCENARIO_CATEGORY_EV_CHARGING: ("EV charging", "充电设施"),
    records_pb2.SCENARIO_CATEGORY_PUBLIC_TRANSIT: ("public transit", "公共交通"),
    records_pb2.SCENARIO_CATEGORY_CYCLING_WALKING: ("cycling and walking", "骑行步行"),
    records_pb2.SCENARIO_CATEGORY_WASTE_SORTING: ("waste sorting", "垃圾分类"),
    records_pb2.SCENARIO_CATEGORY_OTHER: ("other", "其他"),
}

_NUMERIC_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*", re.ASCII)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A value and unit exactly as filed (the proto's ``ExactQuantity``)."""

    value: str
    unit: str

    def __str__(self) -> str:
        return f"{self.value} {self.unit}"


class MatchedBy(enum.StrEnum):
    """How two parameters were paired."""

    CODE = "code"
    DIMENSION = "dimension"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class ParameterComparison:
    """One parameter of each methodology side by side (either side may be missing).

    ``code`` is the subject's code (the counterpart's when only the counterpart has it);
    ``counterpart_code`` differs from it when the pair was matched by unit dimension.
    ``*_normalised`` are decimal strings in ``normalised_unit``: exact when the expansion
    terminates, else rounded to 6 places, while ``*_exact`` keep the exact fractions.
    ``differs`` is True when the values differ, when they cannot be compared, or when one side is
    missing. ``note`` says why a value could not be normalised or compared.
    """

    code: str
    subject: Quantity | None
    counterpart: Quantity | None
    subject_normalised: str
    counterpart_normalised: str
    normalised_unit: str
    differs: bool
    counterpart_code: str
    matched_by: MatchedBy
    subject_exact: Fraction | None
    counterpart_exact: Fraction | None
    subject_name: str = ""
    counterpart_name: str = ""
    subject_year: int = 0
    counterpart_year: int = 0
    dimension: Dimension | None = None
    note: str = ""

    @property
    def comparable(self) -> bool:
        """True when both sides exist and were compared exactly."""
        return (
            self.subject is not None
            and self.counterpart is not None
            and self.subject_exact is not None
            and self.counterpart_exact is not None
        )


class DifferenceKind(enum.StrEnum):
    """What kind of difference an assessment names."""

    NO_COUNTERPART = "NO_COUNTERPART"
    FORMULA = "FORMULA"
    PARAMETER_VALUE = "PARAMETER_VALUE"
    PARAMETER_NOT_COMPARABLE = "PARAMETER_NOT_COMPARABLE"
    PARAMETER_YEAR = "PARAMETER_YEAR"
    PARAMETER_ONLY_IN_SUBJECT = "PARAMETER_ONLY_IN_SUBJECT"
    PARAMETER_ONLY_IN_COUNTERPART = "PARAMETER_ONLY_IN_COUNTERPART"
    MAX_CAPACITY = "MAX_CAPACITY"
    MAX_LIFETIME = "MAX_LIFETIME"


@dataclass(frozen=True, slots=True)
class Difference:
    """One named difference, with a message in English and in Chinese."""

    kind: DifferenceKind
    code: str
    message: str
    message_zh: str = ""


@dataclass(frozen=True, slots=True)
class Assessment:
    """The result of ``assess``; ``counterpart`` is empty when the recogniser has none.

    ``suggested_ratio`` is counterpart grid factor ÷ subject grid factor, capped at 1
    (``ratio_capped`` says whether the cap applied); None when there is no pair of grid factors
    to compare. ``ratio_basis`` explains it in English.
    """

    subject: str
    subject_version: str
    subject_region: str
    recognising_region: str
    counterpart: str
    counterpart_version: str
    same_category: bool
    same_formula: bool | None
    parameters: tuple[ParameterComparison, ...]
    differences: tuple[Difference, ...]
    suggested_ratio: Fraction | None
    ratio_capped: bool
    ratio_basis: str
    summary_en: str
    summary_zh: str

    @property
    def summary(self) -> str:
        """The plain-language summary, English then Chinese (the proto's ``summary``)."""
        return f"{self.summary_en}\n{self.summary_zh}"

    @property
    def suggested_ratio_text(self) -> str:
        """The ratio as exact text (``format_fraction``), empty when none is suggested."""
        return "" if self.suggested_ratio is None else format_fraction(self.suggested_ratio)


# --- choosing the counterpart --------------------------------------------------------------


def _version_key(version: str) -> tuple[int, tuple[int, ...], str]:
    if _NUMERIC_VERSION.fullmatch(version):
        return (1, tuple(int(part) for part in version.split(".")), version)
    return (0, (), version)


def _start_key(m: records_pb2.Methodology) -> tuple[int, int, int]:
    if m.HasField("effective") and m.effective.HasField("start"):
        s = m.effective.start
        return (s.year, s.month, s.day)
    return (0, 0, 0)


def _counterpart_key(
    m: records_pb2.Methodology,
) -> tuple[bool, tuple[int, int, int], tuple[int, tuple[int, ...], str], str]:
    return (
        m.status != records_pb2.METHODOLOGY_STATUS_WITHDRAWN,
        _start_key(m),
        _version_key(m.version),
        m.name,
    )


def choose_counterpart(
    subject: records_pb2.Methodology,
    counterparts: Sequence[records_pb2.Methodology],
    *,
    recognising_region: str | None = None,
) -> records_pb2.Methodology | None:
    """The recogniser's methodology to compare ``subject`` with, or None.

    Candidates: same scenario category (never UNSPECIFIED), of ``recognising_region`` when given,
    else of any region but the subject's. Among several: not withdrawn first, then the latest
    effective start date, then the highest version (numeric when both are dotted numbers), then
    the greatest resource name (only to be deterministic).
    """
    if subject.category == records_pb2.SCENARIO_CATEGORY_UNSPECIFIED:
        return None
    candidates = [
        m
        for m in counterparts
        if m.category == subject.category
        and m.region != subject.region
        and (recognising_region is None or m.region == recognising_region)
    ]
    return max(candidates, key=_counterpart_key, default=None)


# --- comparing parameters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Side:
    param: records_pb2.Parameter
    normalised: NormalisedValue | None
    problem: str

    @property
    def quantity(self) -> Quantity:
        return Quantity(self.param.quantity.value, self.param.quantity.unit)

    @property
    def dimension(self) -> Dimension | None:
        return None if self.normalised is None else self.normalised.dimension


def _side(param: records_pb2.Parameter) -> _Side:
    try:
        return _Side(param, normalise(param.quantity.value, param.quantity.unit), "")
    except RecognitionError as exc:
        return _Side(param, None, exc.message)


def _as_filed_value(side: _Side) -> Fraction | None:
    try:
        return parse_decimal(side.param.quantity.value)
    except RecognitionError:
        return None


def _compare(s: _Side | None, c: _Side | None, matched_by: MatchedBy) -> ParameterComparison:
    s_exact: Fraction | None = None
    c_exact: Fraction | None = None
    unit = ""
    dimension: Dimension | None = None
    note = ""
    if s is not None and c is not None:
        if s.normalised is not None and c.normalised is not None:
            if s.normalised.dimension is c.normalised.dimension:
                s_exact, c_exact = s.normalised.value, c.normalised.value
                unit, dimension = s.normalised.unit, s.normalised.dimension
            else:
                note = (
                    f"{s.param.quantity.unit} and {c.param.quantity.unit} measure different things"
                )
        elif s.param.quantity.unit == c.param.quantity.unit:
            # The same unit as filed, unknown to the normaliser: compare the values as filed.
            s_value, c_value = _as_filed_value(s), _as_filed_value(c)
            if s_value is not None and c_value is not None:
                s_exact, c_exact, unit = s_value, c_value, s.param.quantity.unit
            else:
                note = s.problem if s_value is None else c.problem
        else:
            note = "; ".join(p for p in (s.problem, c.problem) if p)
    else:
        side = s if s is not None else c
        assert side is not None
        if side.normalised is not None:
            unit, dimension = side.normalised.unit, side.normalised.dimension
            if s is not None:
                s_exact = side.normalised.value
            else:
                c_exact = side.normalised.value
        note = side.problem or (
            "only in the subject methodology" if c is None else "only in the counterpart"
        )
    comparable = s_exact is not None and c_exact is not None
    return ParameterComparison(
        code=s.param.code if s is not None else "" if c is None else c.param.code,
        subject=None if s is None else s.quantity,
        counterpart=None if c is None else c.quantity,
        subject_normalised="" if s_exact is None else render_normalised(s_exact),
        counterpart_normalised="" if c_exact is None else render_normalised(c_exact),
        normalised_unit=unit,
        differs=not comparable or s_exact != c_exact,
        counterpart_code="" if c is None else c.param.code,
        matched_by=matched_by,
        subject_exact=s_exact,
        counterpart_exact=c_exact,
        subject_name="" if s is None else s.param.name,
        counterpart_name="" if c is None else c.param.name,
        subject_year=0 if s is None else s.param.year,
        counterpart_year=0 if c is None else c.param.year,
        dimension=dimension,
        note=note,
    )


def _pair(
    subject: Sequence[records_pb2.Parameter], counterpart: Sequence[records_pb2.Parameter]
) -> list[ParameterComparison]:
    s_sides = [_side(p) for p in subject]
    c_sides = [_side(p) for p in counterpart]
    pairs: dict[int, tuple[int, MatchedBy]] = {}
    taken: set[int] = set()
    # 1. Same code (first unpaired counterpart parameter with that code).
    for i, s in enumerate(s_sides):
        for j, c in enumerate(c_sides):
            if j not in taken and c.param.code == s.param.code:
                pairs[i] = (j, MatchedBy.CODE)
                taken.add(j)
                break
    # 2. Codes differ: pair by dimension where exactly one is left on each side.
    for dimension in Dimension:
        left_s = [i for i, s in enumerate(s_sides) if i not in pairs and s.dimension is dimension]
        left_c = [j for j, c in enumerate(c_sides) if j not in taken and c.dimension is dimension]
        if len(left_s) == 1 and len(left_c) == 1:
            pairs[left_s[0]] = (left_c[0], MatchedBy.DIMENSION)
            taken.add(left_c[0])
    out: list[ParameterComparison] = []
    for i, s in enumerate(s_sides):
        if i in pairs:
            j, how = pairs[i]
            out.append(_compare(s, c_sides[j], how))
        else:
            out.append(_compare(s, None, MatchedBy.UNMATCHED))
    out.extend(
        _compare(None, c, MatchedBy.UNMATCHED) for j, c in enumerate(c_sides) if j not in taken
    )
    return out


def _shown(q: Quantity | None, normalised: str, unit: str, filed_as: str) -> str:
    if q is None:
        return "—"
    if not normalised or (q.value == normalised and q.unit == unit):
        return str(q)
    return filed_as.format(value=f"{normalised} {unit}", filed=q)


_FILED_EN = "{value} (filed as {filed})"
_FILED_ZH = "{value}（填报值 {filed}）"


def _parameter_differences(comparisons: Sequence[ParameterComparison]) -> list[Difference]:
    found: list[Difference] = []
    for p in comparisons:
        label = p.code if p.counterpart_code in ("", p.code) else f"{p.code}/{p.counterpart_code}"
        unit = p.normalised_unit
        s_en = _shown(p.subject, p.subject_normalised, unit, _FILED_EN)
        c_en = _shown(p.counterpart, p.counterpart_normalised, unit, _FILED_EN)
        s_zh = _shown(p.subject, p.subject_normalised, unit, _FILED_ZH)
        c_zh = _shown(p.counterpart, p.counterpart_normalised, unit, _FILED_ZH)
        if p.counterpart is None:
            found.append(
                Difference(
                    DifferenceKind.PARAMETER_ONLY_IN_SUBJECT,
                    p.code,
                    f"{label} = {s_en} has no counterpart parameter",
                    f"{label} = {s_zh}，认可方方法学无对应参数",
                )
            )
        elif p.subject is None:
            found.append(
                Difference(
                    DifferenceKind.PARAMETER_ONLY_IN_COUNTERPART,
                    p.code,
                    f"{label} = {c_en} exists only in the counterpart",
                    f"{label} = {c_zh} 仅见于认可方方法学",
                )
            )
        elif not p.comparable:
            found.append(
                Difference(
                    DifferenceKind.PARAMETER_NOT_COMPARABLE,
                    p.code,
                    f"{label}: {p.subject} vs {p.counterpart} cannot be compared ({p.note})",
                    f"{label}：{p.subject} 与 {p.counterpart} 无法比较（{p.note}）",
                )
            )
        elif p.differs:
            found.append(
                Difference(
                    DifferenceKind.PARAMETER_VALUE,
                    p.code,
                    f"{label}: {s_en} vs {c_en}",
                    f"{label}：{s_zh} 对 {c_zh}",
                )
            )
        if (
            p.subject is not None
            and p.counterpart is not None
            and p.subject_year
            and p.counterpart_year
            and p.subject_year != p.counterpart_year
        ):
            found.append(
                Difference(
                    DifferenceKind.PARAMETER_YEAR,
                    p.code,
                    f"{label}: values of {p.subject_year} vs {p.counterpart_year}",
                    f"{label}：数据年份 {p.subject_year} 对 {p.counterpart_year}",
                )
            )
    return found


def _eligibility_differences(
    s: records_pb2.Methodology, c: records_pb2.Methodology
) -> list[Difference]:
    found: list[Difference] = []
    s_cap = s.eligibility.max_capacity if s.eligibility.HasField("max_capacity") else None
    c_cap = c.eligibility.max_capacity if c.eligibility.HasField("max_capacity") else None
    if s_cap is not None or c_cap is not None:
        if s_cap is None or c_cap is None:
            same = False
        else:
            try:
                same = capacity_watts(s_cap) == capacity_watts(c_cap)
            except ValueError:
                same = s_cap.value == c_cap.value and s_cap.unit == c_cap.unit
        if not same:
            s_en = "none" if s_cap is None else f"{s_cap.value} {s_cap.unit}"
            c_en = "none" if c_cap is None else f"{c_cap.value} {c_cap.unit}"
            s_zh = "无" if s_cap is None else f"{s_cap.value} {s_cap.unit}"
            c_zh = "无" if c_cap is None else f"{c_cap.value} {c_cap.unit}"
            found.append(
                Difference(
                    DifferenceKind.MAX_CAPACITY,
                    "",
                    f"maximum capacity: {s_en} vs {c_en}",
                    f"装机容量上限：{s_zh} 对 {c_zh}",
                )
            )
    s_life, c_life = s.eligibility.max_lifetime_years, c.eligibility.max_lifetime_years
    if s_life != c_life:
        found.append(
            Difference(
                DifferenceKind.MAX_LIFETIME,
                "",
                f"maximum lifetime: {s_life or 'none'} vs {c_life or 'none'} years",
                f"最长运行年限：{s_life or '无'} 对 {c_life or '无'} 年",
            )
        )
    return found


def _normal_text(text: str) -> str:
    return " ".join(text.split())


# --- the suggested ratio -------------------------------------------------------------------


def _grid_pair(comparisons: Sequence[ParameterComparison]) -> ParameterComparison | str:
    """The pair of grid emission factors the ratio is computed from, or why there is none."""
    grid = [
        p
        for p in comparisons
        if p.comparable and p.dimension is Dimension.ELECTRICITY and p.counterpart is not None
    ]
    if not grid:
        return "no pair of grid emission factors (per kWh) to compare"
    if len(grid) > 1:
        preferred = [
            p
            for p in grid
            if GRID_FACTOR_CODE.lower() in (p.code.lower(), p.counterpart_code.lower())
        ]
        if len(preferred) != 1:
            codes = ", ".join(p.code for p in grid)
            return f"several electricity factors ({codes}) and no single {GRID_FACTOR_CODE}"
        grid = preferred
    if grid[0].subject_exact == 0:
        return f"{grid[0].code} of the subject is 0; no ratio"
    return grid[0]


def _ratio(pair: ParameterComparison | str) -> tuple[Fraction | None, bool, str]:
    if isinstance(pair, str):
        return None, False, pair
    p = pair
    assert p.subject_exact is not None and p.counterpart_exact is not None
    ratio = p.counterpart_exact / p.subject_exact
    basis = (
        f"{p.code}: counterpart {p.counterpart_normalised} ÷ subject {p.subject_normalised}"
        f" {p.normalised_unit} = {format_fraction(ratio)}"
    )
    if ratio > 1:
        return Fraction(1), True, basis + ", capped at 1 (a recogniser never credits more)"
    return ratio, False, basis


# --- summary -------------------------------------------------------------------------------


def _region_en(code: str) -> str:
    return f"{REGION_NAMES[code][0]} ({code})" if code in REGION_NAMES else code


def _region_zh(code: str) -> str:
    return f"{REGION_NAMES[code][1]}（{code}）" if code in REGION_NAMES else code


def _approx(ratio: Fraction) -> str:
    exact = format_fraction(ratio)
    return exact if "/" not in exact else f"{exact} (≈ {render_normalised(ratio)})"


def _summaries(
    subject: records_pb2.Methodology,
    counterpart: records_pb2.Methodology | None,
    recogniser: str,
    comparisons: Sequence[ParameterComparison],
    differences: Sequence[Difference],
    ratio: Fraction | None,
    capped: bool,
    pair: ParameterComparison | str,
) -> tuple[str, str]:
    cat_en, cat_zh = _CATEGORY_NAMES.get(subject.category, ("unknown", "未知"))
    who_en = f"{_region_en(subject.region)} methodology {subject.name} version {subject.version}"
    who_zh = f"{_region_zh(subject.region)}方法学 {subject.name}（版本 {subject.version}）"
    if counterpart is None:
        target_en = _region_en(recogniser) if recogniser else "the recognising region"
        target_zh = _region_zh(recogniser) if recogniser else "认可方"
        return (
            f"{who_en}: {target_en} has no methodology of the same category ({cat_en}); nothing"
            " to compare, no adjustment ratio suggested; the administrators judge it on its own.",
            f"{who_zh}：{target_zh}没有同类（{cat_zh}）方法学，无从对比，不建议调整系数，"
            "由认可方管理员单独审查。",
        )
    paired = [p for p in comparisons if p.subject is not None and p.counterpart is not None]
    differing = [p for p in paired if p.differs]
    en = [
        f"{who_en} compared with {_region_en(counterpart.region)} methodology"
        f" {counterpart.name} version {counterpart.version} (same category: {cat_en})."
    ]
    zh = [
        f"{who_zh}与{_region_zh(counterpart.region)}方法学 {counterpart.name}"
        f"（版本 {counterpart.version}）对比，同属{cat_zh}类。"
    ]
    en.append(f"{len(paired)} parameter(s) side by side, {len(differing)} differ(s).")
    zh.append(f"对比参数 {len(paired)} 项，其中 {len(differing)} 项不同。")
    if differences:
        en.append("Differences: " + "; ".join(d.message for d in differences) + ".")
        zh.append("差异：" + "；".join(d.message_zh or d.message for d in differences) + "。")
    else:
        en.append("No differences found.")
        zh.append("未发现差异。")
    if ratio is None or isinstance(pair, str):
        en.append(f"No ETS adjustment ratio is suggested ({pair}).")
        zh.append("不建议 ETS 抵消调整系数。")
    else:
        s_f, c_f = pair.subject_normalised, pair.counterpart_normalised
        unit = pair.normalised_unit
        if capped:
            en.append(
                f"Suggested ETS adjustment ratio 1: the recogniser's grid factor {c_f} {unit} is"
                f" higher than the subject's {s_f} {unit}, and a recogniser never credits more"
                " than was issued."
            )
            zh.append(
                f"建议 ETS 抵消调整系数为 1：认可方电网排放因子 {c_f} {unit} 高于本方法学的"
                f" {s_f} {unit}，而抵消量不得超过签发量。"
            )
        else:
            en.append(
                f"Suggested ETS adjustment ratio {_approx(ratio)} = {c_f} ÷ {s_f} (the"
                " recogniser's grid factor over the subject's)."
            )
            zh.append(
                f"建议 ETS 抵消调整系数 {_approx(ratio)} = {c_f} ÷ {s_f}"
                "（认可方电网排放因子 ÷ 本方法学电网排放因子）。"
            )
    return " ".join(en), "".join(zh)


def assess(
    subject: records_pb2.Methodology,
    counterparts: Sequence[records_pb2.Methodology],
    *,
    recognising_region: str | None = None,
) -> Assessment:
    """Compare ``subject`` with the recogniser's methodology of the same category, if any.

    ``counterparts`` are the recognising region's methodologies (others are ignored when
    ``recognising_region`` is given). Never raises for an unknown unit in a parameter: such a
    parameter is reported as not comparable (``PARAMETER_NOT_COMPARABLE``), never guessed.
    """
    counterpart = choose_counterpart(subject, counterparts, recognising_region=recognising_region)
    recogniser = recognising_region or ("" if counterpart is None else counterpart.region)
    comparisons = tuple(
        _pair(subject.parameters, [] if counterpart is None else counterpart.parameters)
    )
    differences: list[Difference] = []
    same_formula: bool | None = None
    if counterpart is None:
        differences.append(
            Difference(
                DifferenceKind.NO_COUNTERPART,
                "",
                f"{_region_en(recogniser) if recogniser else 'the recogniser'} has no methodology"
                " of the same category",
                f"{_region_zh(recogniser) if recogniser else '认可方'}没有同类方法学",
            )
        )
        pair: ParameterComparison | str = "no counterpart methodology"
    else:
        same_formula = _normal_text(subject.formula) == _normal_text(counterpart.formula)
        if not same_formula:
            s_f = _normal_text(subject.formula) or "(none given)"
            c_f = _normal_text(counterpart.formula) or "(none given)"
            s_f_zh = (
                f"“{_normal_text(subject.formula)}”" if subject.formula.strip() else "（未填报）"
            )
            c_f_zh = (
                f"“{_normal_text(counterpart.formula)}”"
                if counterpart.formula.strip()
                else "（未填报）"
            )
            differences.append(
                Difference(
                    DifferenceKind.FORMULA,
                    "",
                    f"formula {s_f!r} vs {c_f!r}",
                    f"计算公式 {s_f_zh} 对 {c_f_zh}",
                )
            )
        differences.extend(_parameter_differences(comparisons))
        differences.extend(_eligibility_differences(subject, counterpart))
        pair = _grid_pair(comparisons)
    ratio, capped, basis = _ratio(pair)
    summary_en, summary_zh = _summaries(
        subject, counterpart, recogniser, comparisons, differences, ratio, capped, pair
    )
    return Assessment(
        subject=subject.name,
        subject_version=subject.version,
        subject_region=subject.region,
        recognising_region=recogniser,
        counterpart="" if counterpart is None else counterpart.name,
        counterpart_version="" if counterpart is None else counterpart.version,
        same_category=counterpart is not None,
        same_formula=same_formula,
        parameters=comparisons,
        differences=tuple(differences),
        suggested_ratio=ratio,
        ratio_capped=capped,
        ratio_basis=basis,
        summary_en=summary_en,
        summary_zh=summary_zh,
    )
