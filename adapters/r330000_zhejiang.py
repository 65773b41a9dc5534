"""Zhejiang (330000): JSON API response envelopes, camelCase, kilograms, 19-digit string ids.

Format: ``docs/regions.md`` (Zhejiang). Serial numbers count grams (k = 1).

Mapping choices:
- Identity: the 19-digit ids are the common ids (``methodology_id`` = ``methodologyId``,
  ``project_id`` = ``projectInfoId``, ``issuance_id`` = ``certificationId``), because issuances name
  their project and projects their methodology only by these ids. The human numbers are kept in
  ``native_ids``: ``methodologyNum`` and ``projectNum``.
- A project's ``MethodologyRef`` is ``(330000, methodologyId, version="")``: Zhejiang names one
  methodology version by its 19-digit id and never states the version. ``methodology_ref()`` returns
  the same shape for a Zhejiang methodology, so the gateway resolves a project's methodology by
  comparing ``project.methodology == adapter.methodology_ref(m)``. A project whose reference carries
  a version cannot be rendered (``from_common`` says so).
- ``methodologyVersion`` is a JSON integer: 1 → common ``"1"``, 12 → ``"12"``; a dotted common
  version such as ``"1.2"`` cannot be expressed.
- Date-times are Beijing civil time without zone. Common dates are civil dates, so each maps to its
  calendar day in Beijing: ``creditEnd`` ``2033-12-31 23:59:59`` → 2033-12-31. The usual times are
  ``00:00:00`` for starts (``validFrom``, ``gridDate``, ``creditStart``, ``periodStart``) and
  ``23:59:59`` for ends (``validTo``, ``creditEnd``, ``periodEnd``); any other time is kept
  exactly in ``native_ids`` under the field's name (e.g. ``native_ids["periodEnd"] =
  "2024-12-31 18:00:00"``) so that the record renders back to the same bytes.
- ``certifiedKg`` is rendered with exactly three decimals (whole grams): 309,180,000 g →
  ``"309180.000"``.
- Records of other regions (``originRegion`` set): the origin's ids verbatim (any identifier),
  ``methodologyNum``/``projectNum`` optional (kept in ``native_ids`` when given),
  ``methodologyVersion`` the common version as a JSON string (a project's too, absent when it names
  none), any county, ``serialUnit`` the origin's, ``certifiedKg`` with as few decimals as exact,
  date-times at the usual times (only the day is read) and ``extInfo`` for the rest
  (``adapters._foreign``).
- Identity keys of a project (``orgCreditCode``, ``latitude``, ``longitude``, ``coordSystem``,
  ``powerAccountNo``) follow ``statusCode``, read and written as ``adapters._identity`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any, ClassVar, TypeAlias, TypeVar

from yrd.interop.v1 import records_pb2

from adapters._common import (
    CommonCheck,
    Issues,
    JsonFields,
    ParameterValues,
    any_county,
    build_issuance,
    build_methodology,
    build_project,
    check_identifier,
    choice,
    county_checker,
    dump_json,
    fail,
    format_datetime,
    integer_version,
    load_json_object,
    parse_datetime,
    version_from_dotted,
)
from adapters._foreign import (
    METHODOLOGY_EXTENSION,
    SERIAL_UNITS_EN,
    extension_of,
    foreign_serial_unit,
    merge_extension,
    only_foreign,
    read_origin,
    read_serial_unit,
    serial_unit_name,
)
from adapters._identity import ZHEJIANG as IDENTITY
from adapters._identity import identity_items, read_identity
from adapters._views import (
    native_ids_supported,
    unsupported,
    view_issuance,
    view_methodology,
    view_project,
)
from adapters._zhejiang_format import (
    END_OF_DAY,
    ENVELOPE_KEYS,
    EXTENDED,
    ISSUANCE_KEYS,
    METHODOLOGY_KEYS,
    METHODOLOGY_STATUS_CODES,
    METHODOLOGY_STATUSES,
    NATIVE_IDS,
    PARAM_KEYS,
    PROJECT_KEYS,
    PROJECT_STATUS_CODES,
    PROJECT_STATUSES,
    SCENE_CODES,
    SCENES,
    START_OF_DAY,
    DateTimes,
    id_parser,
    kg_to_grams,
)
from adapters.base import AdapterBase, CommonRecord
from adapters.quantities import (
    GRAMS_PER_KG,
    capacity_in_unit,
    gram_serials_to_native,
    grams_to_decimal,
    native_serials_to_grams,
)

__all__ = ["ZhejiangAdapter"]

_E = TypeVar("_E")
_Reader: TypeAlias = Callable[["ZhejiangAdapter", JsonFields, str], CommonRecord | None]


#: The parsers of the code fields (built once, not per record).
_SCENE = choice(SCENES)
_METHODOLOGY_STATUS = choice(METHODOLOGY_STATUSES)
_PROJECT_STATUS = choice(PROJECT_STATUSES)


def _code(f: JsonFields, key: str, codes: Callable[[str], _E]) -> _E | None:
    """The JSON string code ``key`` parsed by ``codes`` (issues reported, then None)."""
    code = f.string_code(key, required=True)
    if code is None:
        return None
    try:
        return codes(code)
    except ValueError as exc:
        f.report(key, str(exc))
        return None


class ZhejiangAdapter(AdapterBase):
    """Zhejiang's JSON envelopes ⇄ common schema."""

    region = "330000"
    region_label = "Zhejiang"
    content_types = ("application/vnd.yrd.330000+json",)
    serial_unit_grams = 1
    origin_field = "dataInfo.originRegion"

    def methodology_ref(self, methodology: records_pb2.Methodology) -> records_pb2.MethodologyRef:
        """Zhejiang projects name a methodology by its 19-digit id alone (version left empty)."""
        return records_pb2.MethodologyRef(
            region=methodology.region, methodology_id=methodology.methodology_id, version=""
        )

    # -- native → common -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[CommonRecord]:
        obj = load_json_object(data, self.region, allow_bom=True)
        issues = Issues()
        envelope = JsonFields(obj, issues, allowed=ENVELOPE_KEYS)
        successful = envelope.boolean("successful")
        msg = obj.get("msg")
        if msg is not None and not isinstance(msg, str):
            envelope.report("msg", "must be a JSON string")
        if successful is False:
            text = msg.strip() if isinstance(msg, str) and msg.strip() else "(no msg)"
            fail(self.region, "successful", f"the platform reported a failure: {text}")
        kind = envelope.text("dataType", required=True)
        kinds = self._KINDS
        if kind is not None and kind not in kinds:
            envelope.report("dataType", f"{kind!r} is not one of: methodology, project, issuance")
            kind = None
        record: CommonRecord | None = None
        if kind is not None:
            keys, build = kinds[kind]
            info = envelope.child("dataInfo", keys, required=True)
            if info is not None:
                origin = read_origin(info, "originRegion", self.region)
                record = build(self, info, origin)
                ext = info.obj.get("extInfo")
                if ext is None:
                    pass
                elif origin == self.region:
                    only_foreign(info, {"extInfo": True}, self.region_label)
                elif record is not None:
                    merge_extension(info, "extInfo", ext, record, EXTENDED[type(record)])
        issues.raise_native(self.region)
        assert record is not None
        return [record]

    def _methodology(self, f: JsonFields, origin: str) -> records_pb2.Methodology | None:
        own = origin == self.region
        times = DateTimes(f, keep=own)
        methodology_id = f.parsed("methodologyId", id_parser(own), required=True)
        number = f.parsed("methodologyNum", check_identifier, required=own)
        version: int | str | None
        if own:
            version = f.integer("methodologyVersion", required=True, high=999_999_999)
        else:
            version = f.parsed("methodologyVersion", version_from_dotted, required=True)
        title = f.text("methodologyName", required=True)
        category = _code(f, "sceneType", _SCENE)
        parameters: list[ParameterValues] = []
        codes: set[str] = set()
        for _, p in f.children("params", PARAM_KEYS):
            code = p.text("paramCode", required=True)
            if code is not None and code in codes:
                p.report("paramCode", f"{code!r} appears more than once")
            codes.add(code or "")
            parameters.append(
                ParameterValues(
                    code=code or "",
                    name=p.text("paramName") or "",
                    value=p.decimal("paramValue", required=True, allow_negative=True) or "",
                    unit=p.text("paramUnit") or "",
                    source=p.text("dataSource") or "",
                    year=p.year("dataYear") or 0,
                )
            )
        valid_from = times.read("validFrom", START_OF_DAY, required=True)
        valid_to = times.read("validTo", END_OF_DAY, required=False)
        times.order("validFrom", "validTo", strict=True)
        status = _code(f, "statusCode", _METHODOLOGY_STATUS)
        if f.issues:
            return None
        assert methodology_id and version is not None and title and valid_from
        assert category is not None and status is not None and (number or not own)
        return build_methodology(
            origin,
            methodology_id,
            version=str(version),
            title=title,
            category=category,
            parameters=parameters,
            effective=(valid_from, valid_to),
            status=status,
            native_ids={**({"methodologyNum": number} if number else {}), **times.native},
        )

    def _project(self, f: JsonFields, origin: str) -> records_pb2.Project | None:
        own = origin == self.region
        times = DateTimes(f, keep=own)
        project_id = f.parsed("projectInfoId", id_parser(own), required=True)
        number = f.parsed("projectNum", check_identifier, required=own)
        methodology_id = f.parsed("methodologyId", id_parser(own), required=True)
        version = ""
        if own:
            if "methodologyVersion" in f.obj:
                only_foreign(f, {"methodologyVersion": True}, "Zhejiang")
        else:
            version = f.parsed("methodologyVersion", version_from_dotted) or ""
        title = f.text("projectName", required=True)
        owner = f.text("orgCustomerName", required=True)
        county = f.parsed(
            "areaCode",
            county_checker(self.region, "Zhejiang") if own else any_county,
            required=True,
        )
        capacity = f.decimal("installedCapacityKw", positive=True)
        grid = times.read("gridDate", START_OF_DAY, required=False)
        start = times.read("creditStart", START_OF_DAY, required=True)
        end = times.read("creditEnd", END_OF_DAY, required=True)
        times.order("creditStart", "creditEnd", strict=True)
        status = _code(f, "statusCode", _PROJECT_STATUS)
        identity = read_identity(f, IDENTITY)
        if f.issues:
            return None
        assert project_id and methodology_id and title and owner and county
        assert start and end and status is not None and (number or not own)
        return build_project(
            origin,
            project_id,
            (methodology_id, version),
            title=title,
            owner=owner,
            county=county,
            crediting=(start, end),
            status=status,
            capacity=None if capacity is None else (capacity, "kW"),
            grid_date=grid,
            native_ids={**({"projectNum": number} if number else {}), **times.native},
            identity=identity,
        )

    def _issuance(self, f: JsonFields, origin: str) -> records_pb2.Issuance | None:
        own = origin == self.region
        times = DateTimes(f, keep=own)
        unit = read_serial_unit(
            f, "serialUnit", SERIAL_UNITS_EN, 1, foreign=not own, own_label="Zhejiang"
        )
        issuance_id = f.parsed("certificationId", id_parser(own), required=True)
        project_id = f.parsed("projectInfoId", id_parser(own), required=True)
        vintage = f.year("vintageYear", required=True)
        start = times.read("periodStart", START_OF_DAY, required=True)
        end = times.read("periodEnd", END_OF_DAY, required=True)
        times.order("periodStart", "periodEnd", strict=False)
        grams = f.parsed("certifiedKg", kg_to_grams, required=True)
        serial_from = f.integer("serialFrom", required=True)
        serial_to = f.integer("serialTo", required=True)
        serials: tuple[int, int] | None = None
        if serial_from is not None and serial_to is not None and unit is not None:
            try:
                serials = native_serials_to_grams(serial_from, serial_to, unit)
            except ValueError as exc:
                f.report("serialTo", str(exc))
        if grams is not None and serials is not None and grams != serials[1] - serials[0] + 1:
            f.report(
                "certifiedKg",
                f"{f.text('certifiedKg')} kg ({grams} g) does not equal the serial range size"
                f" {serials[1] - serials[0] + 1} g",
            )
        if f.issues:
            return None
        assert issuance_id and project_id and vintage and start and end and serials
        assert grams is not None
        return build_issuance(
            origin,
            issuance_id,
            project_id=project_id,
            vintage=vintage,
            monitoring=(start, end),
            quantity_grams=grams,
            serials=serials,
            native_ids=times.native,
        )

    #: ``dataType`` → the fields of ``dataInfo`` and the reader of the record (built once).
    _KINDS: ClassVar[dict[str, tuple[frozenset[str], _Reader]]] = {
        "methodology": (METHODOLOGY_KEYS, _methodology),
        "project": (PROJECT_KEYS, _project),
        "issuance": (ISSUANCE_KEYS, _issuance),
    }

    # -- common → native -----------------------------------------------------------------------
    @staticmethod
    def _envelope(kind: str, info: dict[str, Any]) -> bytes:
        return dump_json({"successful": True, "msg": "", "dataType": kind, "dataInfo": info})

    def _foreign(self, kind: str, info: dict[str, Any], record: CommonRecord) -> bytes:
        """The envelope of a foreign record: origin first, extension last."""
        info = {"originRegion": record.region, **info}
        ext = extension_of(record, EXTENDED[type(record)])
        if ext is not None:
            info["extInfo"] = ext
        return self._envelope(kind, info)

    def _datetime(
        self,
        check: CommonCheck,
        record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
        key: str,
        field: str,
        day: date,
        usual: time,
    ) -> str:
        """The native date-time of a civil date: the kept exact time, or the usual one."""
        kept = record.native_ids.get(key) if record.region == self.region else None
        if kept is None:
            return format_datetime(datetime.combine(day, usual))
        try:
            instant = parse_datetime(kept)
        except ValueError as exc:
            check.add(f"native_ids[{key!r}]", str(exc))
            return ""
        if instant.date() != day:
            check.add(f"native_ids[{key!r}]", f"{kept!r} is not on the day of {field} ({day})")
        elif instant.time() == usual:
            check.add(
                f"native_ids[{key!r}]",
                f"holds the usual time {usual}; only other times are kept in native_ids",
            )
        return kept

    def _native_number(
        self,
        check: CommonCheck,
        record: records_pb2.Methodology | records_pb2.Project,
        key: str,
    ) -> str | None:
        number = record.native_ids.get(key) if record.region == self.region else None
        if number is None:
            check.add(f"native_ids[{key!r}]", f"is required: the Zhejiang format needs {key}")
            return None
        return check.identifier(f"native_ids[{key!r}]", number)

    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(
            check, record, self.region, NATIVE_IDS["methodology"], self.region_label
        )
        if own:
            unsupported(check, "formula", bool(record.formula), self.region_label)
            unsupported(check, "filing_document", bool(record.filing_document), self.region_label)
            unsupported(
                check,
                "eligibility",
                record.HasField("eligibility") and bool(record.eligibility.ListFields()),
                self.region_label,
            )
        view = view_methodology(
            record,
            check,
            region_label=self.region_label,
            id_parser=id_parser(own),
            extended=frozenset() if own else METHODOLOGY_EXTENSION,
        )
        info: dict[str, Any] = {}
        if own:
            number = self._native_number(check, record, "methodologyNum")
            version = integer_version(record.version)
            if view is not None and version is None:
                check.add("version", f"{record.version!r} has no Zhejiang form (an integer)")
            if view is None or issues:
                return None
            info |= {
                "methodologyId": view.methodology_id,
                "methodologyNum": number,
                "methodologyVersion": version,
            }
        elif view is None:
            return None
        else:
            info |= {"methodologyId": view.methodology_id, "methodologyVersion": view.version}
        info |= {
            "methodologyName": view.title,
            "sceneType": SCENE_CODES[view.category],
        }
        if view.parameters:
            info["params"] = [
                {
                    key: value
                    for key, value in (
                        ("paramCode", p.code),
                        ("paramName", p.name),
                        ("paramValue", p.value),
                        ("paramUnit", p.unit),
                        ("dataSource", p.source),
                        ("dataYear", p.year),
                    )
                    if value is not None
                }
                for p in view.parameters
            ]
        info["validFrom"] = self._datetime(
            check, record, "validFrom", "effective.start", view.effective_start, START_OF_DAY
        )
        if view.effective_end is not None:
            info["validTo"] = self._datetime(
                check, record, "validTo", "effective.end", view.effective_end, END_OF_DAY
            )
        info["statusCode"] = METHODOLOGY_STATUS_CODES[view.status]
        if issues:
            return None
        return (
            self._envelope("methodology", info)
            if own
            else self._foreign("methodology", info, record)
        )

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(check, record, self.region, NATIVE_IDS["project"], self.region_label)
        view = view_project(
            record,
            check,
            region=self.region,
            region_label=self.region_label,
            id_parser=id_parser(own),
            methodology_id_parser=id_parser(own),
            foreign=not own,
        )
        identity = identity_items(record, check, IDENTITY)
        info: dict[str, Any] = {}
        if own:
            number = self._native_number(check, record, "projectNum")
            if record.methodology.version:
                check.add(
                    "methodology.version",
                    "must be empty: Zhejiang projects name a methodology version by its 19-digit"
                    " methodologyId only",
                )
            if view is None or issues:
                return None
            info |= {"projectInfoId": view.project_id, "projectNum": number}
            info["methodologyId"] = view.methodology_id
        else:
            version = record.methodology.version
            if version and check.version("methodology.version", version) is None:
                return None
            if view is None or identity is None:
                return None
            info |= {"projectInfoId": view.project_id, "methodologyId": view.methodology_id}
            if version:
                info["methodologyVersion"] = version
        info |= {
            "projectName": view.title,
            "orgCustomerName": view.owner,
            "areaCode": view.county_code,
        }
        if view.capacity is not None:
            info["installedCapacityKw"] = capacity_in_unit(view.capacity, "kW")
        if view.start_date is not None:
            info["gridDate"] = self._datetime(
                check, record, "gridDate", "start_date", view.start_date, START_OF_DAY
            )
        info["creditStart"] = self._datetime(
            check,
            record,
            "creditStart",
            "crediting_period.start",
            view.crediting_start,
            START_OF_DAY,
        )
        info["creditEnd"] = self._datetime(
            check, record, "creditEnd", "crediting_period.end", view.crediting_end, END_OF_DAY
        )
        info["statusCode"] = PROJECT_STATUS_CODES[view.status]
        info.update(identity or ())
        if issues:
            return None
        return self._envelope("project", info) if own else self._foreign("project", info, record)

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, NATIVE_IDS["issuance"], self.region_label)
        own = self.own(record)
        view = view_issuance(
            record, check, id_parser=id_parser(own), project_id_parser=id_parser(own)
        )
        if view is None:
            return None
        unit = 1 if own else foreign_serial_unit(record.region, view.serial_start, view.serial_end)
        serial_from, serial_to = gram_serials_to_native(view.serial_start, view.serial_end, unit)
        info: dict[str, Any] = {
            "certificationId": view.issuance_id,
            "projectInfoId": view.project_id,
            "vintageYear": view.vintage,
            "periodStart": self._datetime(
                check,
                record,
                "periodStart",
                "monitoring_period.start",
                view.monitoring_start,
                START_OF_DAY,
            ),
            "periodEnd": self._datetime(
                check, record, "periodEnd", "monitoring_period.end", view.monitoring_end, END_OF_DAY
            ),
            "certifiedKg": grams_to_decimal(
                view.quantity_grams, GRAMS_PER_KG, min_decimals=3 if own else 0
            ),
        }
        if not own:
            info["serialUnit"] = serial_unit_name(SERIAL_UNITS_EN, unit)
        info |= {"serialFrom": serial_from, "serialTo": serial_to}
        if issues:
            return None
        return self._envelope("issuance", info) if own else self._foreign("issuance", info, record)
