"""What the proto descriptors do not say, for ``gateway.tools.jsonschema``: which messages get a
schema file, which fields the specification requires (``docs/protocol.md``), value patterns, and
the data dictionary's Chinese meanings, units and native fields per region.

English meanings come from the ``.proto`` comments; everything here is keyed by proto names, and
the generator fails when a field of a documented message has no entry (or an entry names no field).
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: Schema files (``docs/schema/<stem>.schema.json``) and the message each describes, in the order
#: the data dictionary lists them. The signed bodies are named after their content types (§7.2).
ROOTS: dict[str, str] = {
    "methodology": "Methodology",
    "project": "Project",
    "issuance": "Issuance",
    "unit-block": "UnitBlock",
    "record": "Record",
    "transfer-proposal": "TransferProposal",
    "transfer-answer": "TransferAnswer",
    "retirement-order": "RetirementOrder",
    "recognition-application": "RecognitionApplication",
    "recognition-verdict": "RecognitionVerdict",
    "recognition-revocation": "RecognitionRevocation",
}

#: Fields (or oneofs: exactly one member) a valid message carries. proto3 JSON omits a field at its
#: default (0, "", UNSPECIFIED), so only fields whose valid values are never the default are listed.
REQUIRED: dict[str, tuple[str, ...]] = {
    "CalendarDate": ("year", "month", "day"),
    "DateRange": ("start",),
    "ExactQuantity": ("value",),
    "Parameter": ("code", "quantity"),
    "Methodology": (
        "name", "region", "methodology_id", "version", "title", "category", "effective", "status",
    ),
    "MethodologyRef": ("region", "methodology_id"),
    "Project": (
        "name", "region", "project_id", "methodology", "title", "owner", "county_code",
        "crediting_period", "status",
    ),
    "Issuance": (
        "name", "region", "issuance_id", "project", "vintage", "monitoring_period",
        "quantity_grams", "serials",
    ),
    "UnitBlock": (
        "name", "origin_region", "issuance", "project", "vintage", "serials", "holder_region",
        "state",
    ),
    "Record": ("kind",),
    "UnitSelection": ("selection",),
    "SerialRanges": ("origin_region", "ranges"),
    "QuantityFromProject": ("project", "vintage", "quantity_grams"),
    "TransferProposal": ("transfer_id", "destination_region", "units", "purpose"),
    "TransferAnswer": ("transfer", "decision"),
    "RetirementOrder": ("retirement_id", "units", "purpose", "beneficiary"),
    "RecognitionApplication": ("subject",),
    "Fraction": ("denominator",),
    "RecognitionVerdict": ("recognition", "verdict", "comment"),
    "RecognitionRevocation": ("recognition", "reason"),
}  # fmt: skip

_REGION = {"pattern": "^[0-9]{6}$"}
_ID = {"pattern": "^[^\\s/?#%\\\\]{1,128}$"}
_CLIENT_ID = {"minLength": 1, "maxLength": 120, "pattern": "^[^/]+$"}
_POSITIVE_GRAMS = {"pattern": "^[1-9][0-9]{0,18}$"}
_DECIMAL = {"pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
_YEAR = {"minimum": 1, "maximum": 9999}


def _name(collection: str, region: str = "regions/[0-9]{6}/") -> dict[str, str]:
    return {"pattern": f"^{region}{collection}/[^/\\s]{{1,128}}$"}


#: Extra JSON Schema keywords for single fields (rules of docs/protocol.md §3, §4 and §7.2).
FIELD_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("CalendarDate", "year"): _YEAR,
    ("CalendarDate", "month"): {"minimum": 1, "maximum": 12},
    ("CalendarDate", "day"): {"minimum": 1, "maximum": 31},
    ("ExactQuantity", "value"): _DECIMAL,
    ("Methodology", "name"): _name("methodologies"),
    ("Methodology", "region"): _REGION,
    ("Methodology", "methodology_id"): _ID,
    ("Methodology", "document_sha256"): {"pattern": "^[0-9a-f]{64}$"},
    ("MethodologyRef", "region"): _REGION,
    ("MethodologyRef", "methodology_id"): _ID,
    ("Project", "name"): _name("projects"),
    ("Project", "region"): _REGION,
    ("Project", "project_id"): _ID,
    ("Project", "county_code"): _REGION,
    # Identity keys (mutual_recognition/identity.py): the credit code's alphabet and shape (its
    # check character is beyond a pattern), coordinates within range with at most 6 decimals.
    ("ProjectIdentity", "owner_credit_code"): {
        "pattern": "^[0-9A-HJ-NP-RT-UW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RT-UW-Y]{10}$"
    },
    ("ProjectIdentity", "grid_account"): {"pattern": "^[0-9]{10,20}$"},
    ("SiteLocation", "latitude"): {
        "pattern": "^-?((0|[1-9]|[1-8][0-9])(\\.[0-9]{1,6})?|90(\\.0{1,6})?)$"
    },
    ("SiteLocation", "longitude"): {
        "pattern": "^-?((0|[1-9][0-9]?|1[0-7][0-9])(\\.[0-9]{1,6})?|180(\\.0{1,6})?)$"
    },
    ("SerialRange", "start"): {"pattern": "^(0|[1-9][0-9]{0,18})$"},
    ("SerialRange", "end"): {"pattern": "^(0|[1-9][0-9]{0,18})$"},
    ("Issuance", "name"): _name("issuances"),
    ("Issuance", "region"): _REGION,
    ("Issuance", "issuance_id"): _ID,
    ("Issuance", "project"): _name("projects"),
    ("Issuance", "vintage"): _YEAR,
    ("Issuance", "quantity_grams"): _POSITIVE_GRAMS,
    ("UnitBlock", "name"): {"pattern": "^regions/[0-9]{6}/blocks/[0-9]{1,19}$"},
    ("UnitBlock", "origin_region"): _REGION,
    ("UnitBlock", "issuance"): _name("issuances"),
    ("UnitBlock", "project"): _name("projects"),
    ("UnitBlock", "vintage"): _YEAR,
    ("UnitBlock", "holder_region"): _REGION,
    ("Record", "envelope_hash"): {"pattern": "^[0-9a-f]{64}$"},
    ("SerialRanges", "origin_region"): _REGION,
    ("SerialRanges", "ranges"): {"minItems": 1},
    ("QuantityFromProject", "project"): _name("projects"),
    ("QuantityFromProject", "vintage"): _YEAR,
    ("QuantityFromProject", "quantity_grams"): _POSITIVE_GRAMS,
    ("TransferProposal", "transfer_id"): _CLIENT_ID,
    ("TransferProposal", "destination_region"): _REGION,
    ("TransferProposal", "purpose"): {
        "enum": ["TRANSFER_PURPOSE_TRANSFER", "TRANSFER_PURPOSE_ETS_OFFSET"]
    },
    ("TransferAnswer", "transfer"): _name("transfers"),
    ("RetirementOrder", "retirement_id"): _CLIENT_ID,
    ("RetirementOrder", "purpose"): {
        "enum": [
            "TRANSFER_PURPOSE_ETS_OFFSET", "TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY",
            "TRANSFER_PURPOSE_CHARITABLE",
        ]
    },
    ("RetirementOrder", "beneficiary"): {"pattern": "\\S"},
    ("RetirementOrder", "compliance_year"): {"minimum": 2000, "maximum": 9999},
    ("RetirementOrder", "declared_obligation_grams"): _POSITIVE_GRAMS,
    ("RecognitionApplication", "subject"): {
        "pattern": "^regions/[0-9]{6}/(methodologies|projects)/[^/\\s]{1,128}$"
    },
    ("RecognitionApplication", "recognising_regions"): {"items": _REGION},
    ("RecognitionConditions", "vintage_from"): {"minimum": 0, "maximum": 9999},
    ("RecognitionConditions", "vintage_to"): {"minimum": 0, "maximum": 9999},
    ("Fraction", "denominator"): _POSITIVE_GRAMS,
    ("RecognitionVerdict", "recognition"): _name("recognitions", region=""),
    ("RecognitionVerdict", "comment"): {"pattern": "\\S"},
    ("RecognitionRevocation", "recognition"): _name("recognitions", region=""),
    ("RecognitionRevocation", "reason"): {"pattern": "\\S"},
}  # fmt: skip

#: Rules across fields of one message (JSON Schema keywords added to its ``allOf``).
MESSAGE_RULES: dict[str, list[dict[str, Any]]] = {
    # §7.2: a reason is required to reject or cancel.
    "TransferAnswer": [
        {
            "if": {
                "properties": {
                    "decision": {"enum": ["TRANSFER_DECISION_REJECT", "TRANSFER_DECISION_CANCEL"]}
                },
                "required": ["decision"],
            },
            "then": {"required": ["reason"], "properties": {"reason": {"pattern": "\\S"}}},
        }
    ],
    # §7.2: an ETS offset names the compliance year and the declared obligation.
    "RetirementOrder": [
        {
            "if": {
                "properties": {"purpose": {"const": "TRANSFER_PURPOSE_ETS_OFFSET"}},
                "required": ["purpose"],
            },
            "then": {"required": ["complianceYear", "declaredObligationGrams"]},
        }
    ],
    # §7.2: a methodology is recognised by version.
    "RecognitionApplication": [
        {
            "if": {
                "properties": {"subject": {"pattern": "/methodologies/"}},
                "required": ["subject"],
            },
            "then": {"required": ["version"]},
        }
    ],
}


class Term(NamedTuple):
    """The data dictionary's entry for one field."""

    zh: str
    unit: str = ""
    #: Native field in Shanghai, Jiangsu, Zhejiang and Anhui documents ("" when not carried).
    native: tuple[str, str, str, str] | None = None


_DATE = (
    "civil date (SH `YYYY-MM-DD`, JS `YYYYMMDD`, ZJ Beijing `YYYY-MM-DD HH:mm:ss`, AH `YYYY/M/D`)"
)

#: Chinese meanings, units and native fields of every field of the documented messages.
TERMS: dict[str, dict[str, Term]] = {
    "CalendarDate": {
        "year": Term("年", "year"),
        "month": Term("月（1–12）", "month"),
        "day": Term("日（1–31）", "day"),
    },
    "DateRange": {
        "start": Term("起始日（含）", _DATE),
        "end": Term("截止日（含）；缺省表示不设截止", _DATE),
    },
    "ExactQuantity": {
        "value": Term("十进制字符串形式的数值，按备案原样保存，不用浮点数"),
        "unit": Term("备案时的单位，如 kgCO2/kWh、tCO2/10^4kWh、kW、MW"),
    },
    "Parameter": {
        "code": Term("参数代码，如 EF_grid", "", ("`parameters[].code`", "`CS/DM`", "`params[].paramCode`", "`参数代码`")),
        "name": Term("参数名称（备案地区语言）", "", ("`parameters[].name_zh`", "`CS/MC`", "`params[].paramName`", "`参数名称`")),
        "quantity": Term("参数值及单位（原样）", "as filed", ("`value` + `unit`", "`CS/Z` + `CS/DW`", "`paramValue` + `paramUnit`", "`参数值` + `参数单位`")),
        "source": Term("数据来源，如政策文号", "", ("`parameters[].source`", "`CS/LY`", "`params[].dataSource`", "`参数来源`")),
        "year": Term("数值所属年度；未给出为 0", "year", ("`parameters[].year`", "`CS/ND`", "`params[].dataYear`", "`参数年度`")),
    },
    "EligibilityRules": {
        "max_capacity": Term("最大装机容量（精确值）", "as filed (MW)", ("`eligibility.max_capacity_mw`", "", "", "")),
        "max_lifetime_years": Term("自并网起最长运行年限；未设为 0", "years", ("`eligibility.max_lifetime_years`", "", "", "")),
    },
    "Methodology": {
        "name": Term("全局资源名 regions/{地区}/methodologies/{方法学编号}", "", ("derived", "derived", "derived", "derived")),
        "region": Term("备案地区代码（GB/T 2260）", "", ("publisher", "publisher", "publisher", "publisher")),
        "methodology_id": Term("地区自有的方法学编号", "", ("`methodology_no`", "`FFXBH`", "`methodologyId` (19 digits)", "`方法学编号`")),
        "version": Term("规范化版本号（1.0、V01、1 均为 1）", "", ("`version` (`1.0`)", "`BBH` (`V01`)", "`methodologyVersion` (integer)", "`版本`")),
        "title": Term("方法学名称", "", ("`name_zh`", "`FFXMC`", "`methodologyName`", "`方法学名称`")),
        "category": Term("场景类别", "", ("`category`", "`CJLB` (`01`–`05`, `99`)", "`sceneType`", "`场景类别`")),
        "formula": Term("基准线与计算公式说明", "", ("`formula`", "", "", "")),
        "parameters": Term("参数，如电网排放因子", "", ("`parameters[]`", "`CS` (repeated)", "`params[]`", "one row per parameter")),
        "crediting_period_rule": Term("计入期规则（文字）", "", ("", "", "", "")),
        "eligibility": Term("适用条件限值", "", ("`eligibility`", "", "", "")),
        "effective": Term("生效期间", _DATE, ("`effective_date`, `expiry_date`", "`SXRQ`, `SXJZRQ`", "`validFrom`, `validTo`", "`生效日期`, `失效日期`")),
        "status": Term("备案状态", "", ("`status`", "`ZT` (`1`/`2`/`9`)", "`statusCode` (`01`/`02`/`09`)", "`状态`")),
        "filing_document": Term("备案文号", "", ("`filing_doc_no`", "", "", "")),
        "document_sha256": Term("备案文件的 SHA-256（十六进制）；未提供为空", "", ("", "", "", "")),
        "native_ids": Term("地区使用的其他标识（键为字段名）", "", ("", "", "`methodologyNum`; unusual `validFrom`/`validTo` times", "")),
    },
    "MethodologyRef": {
        "region": Term("方法学所属地区代码"),
        "methodology_id": Term("方法学编号", "", ("`methodology_no`", "`FFXBH`", "`methodologyId`", "`方法学编号`")),
        "version": Term("规范化版本号；浙江为空（以 19 位编号指定版本）", "", ("`methodology_version`", "`BBH`", "", "`方法学版本`")),
    },
    "Project": {
        "name": Term("全局资源名 regions/{地区}/projects/{项目编号}", "", ("derived", "derived", "derived", "derived")),
        "region": Term("登记地区代码", "", ("publisher", "publisher", "publisher", "publisher")),
        "project_id": Term("地区自有的项目编号", "", ("`project_no`", "`XMBH`", "`projectInfoId` (19 digits)", "`项目编号`")),
        "methodology": Term("所用方法学（地区、编号、版本）", "", ("`methodology_no`, `methodology_version`", "`FFXBH`, `BBH`", "`methodologyId`", "`方法学编号`, `方法学版本`")),
        "title": Term("项目名称", "", ("`project_name`", "`XMMC`", "`projectName`", "`项目名称`")),
        "owner": Term("业主名称", "", ("`owner_name`", "`YZMC`", "`orgCustomerName`", "`业主名称`")),
        "county_code": Term("所在地六位行政区划代码（GB/T 2260）", "", ("`district_code`", "`XZQH`", "`areaCode`", "`行政区划代码`")),
        "capacity": Term("装机容量（精确值，适用时，如光伏）", "as filed: MW (SH), kW (JS, ZJ, AH)", ("`capacity_mw`", "`ZJRL`", "`installedCapacityKw`", "`装机容量(千瓦)`")),
        "start_date": Term("并网或投运日期", _DATE, ("`grid_connection_date`", "`BWRQ`", "`gridDate`", "`并网日期`")),
        "crediting_period": Term("计入期", _DATE, ("`crediting_start`, `crediting_end`", "`JRQKS`, `JRQJS`", "`creditStart`, `creditEnd`", "`计入期开始`, `计入期结束`")),
        "status": Term("登记状态", "", ("`status`", "`ZT` (`1`/`2`/`3`)", "`statusCode` (`02`/`05`/`09`)", "`状态`")),
        "native_ids": Term("地区使用的其他标识（键为字段名）", "", ("", "", "`projectNum`; unusual `gridDate`/`creditStart`/`creditEnd` times", "")),
        "identity": Term("识别同一项目重复登记的标识（可选）", "", ("see ProjectIdentity", "see ProjectIdentity", "see ProjectIdentity", "see ProjectIdentity")),
    },
    "ProjectIdentity": {
        "owner_credit_code": Term("业主统一社会信用代码（GB 32100-2015，18位，校验码已验证）", "", ("`owner_credit_code`", "`YZXYDM`", "`orgCreditCode`", "`业主统一社会信用代码`")),
        "site": Term("场址坐标（按申报原样保存）", "", ("`site_lat`, `site_lon`, `site_datum`", "`WD`, `JD`, `ZBX`", "`latitude`, `longitude`, `coordSystem`", "`纬度`, `经度`, `坐标系`")),
        "grid_account": Term("电网户号（10–20位数字，保留前导零）", "", ("`grid_account_no`", "`DWHH`", "`powerAccountNo`", "`电网户号`")),
    },
    "SiteLocation": {
        "latitude": Term("纬度（十进制度，至多6位小数）", "degrees"),
        "longitude": Term("经度（十进制度，至多6位小数）", "degrees"),
        "datum": Term("坐标系：WGS84（默认）、GCJ02、BD09", ""),
    },
    "SerialRange": {
        "start": Term("起始序列号", "serial (1 serial = 1 g CO2e)"),
        "end": Term("截止序列号（含），不小于起始", "serial (1 serial = 1 g CO2e)"),
    },
    "Issuance": {
        "name": Term("全局资源名 regions/{地区}/issuances/{签发编号}", "", ("derived", "derived", "derived", "derived")),
        "region": Term("签发地区代码", "", ("publisher", "publisher", "publisher", "publisher")),
        "issuance_id": Term("地区自有的签发编号", "", ("`issuance_no`", "`QFBH`", "`certificationId` (19 digits)", "`签发编号`")),
        "project": Term("所属项目的资源名", "", ("`project_no`", "`XMBH`", "`projectInfoId`", "`项目编号`")),
        "vintage": Term("减排量所属年份（年份）", "year", ("`vintage`", "`ND`", "`vintageYear`", "`年份`")),
        "monitoring_period": Term("监测期", _DATE, ("`monitoring_start`, `monitoring_end`", "`JCKS`, `JCJS`", "`periodStart`, `periodEnd`", "`监测期开始`, `监测期结束`")),
        "quantity_grams": Term("签发量，等于序列号区间的大小", "g CO2e", ("`reduction_tco2e` (t)", "`JPL` (whole t)", "`certifiedKg` (kg)", "`减排量` × `单位` (吨/千克/克)")),
        "serials": Term("生成的序列号区间（克）", "gram serials", ("`serial_start`, `serial_end` (kg)", "`XLHQS`, `XLHZZ` (t)", "`serialFrom`, `serialTo` (g)", "`序列号起`, `序列号止` (kg)")),
        "native_ids": Term("地区使用的其他标识（键为字段名）", "", ("", "", "unusual `periodStart`/`periodEnd` times", "")),
    },
    "UnitBlock": {
        "name": Term("全局资源名 regions/{签发地区}/blocks/{编号}"),
        "origin_region": Term("签发该批减排量的地区"),
        "issuance": Term("产生该批减排量的签发资源名"),
        "project": Term("项目资源名"),
        "vintage": Term("年份", "year"),
        "serials": Term("覆盖的序列号区间（克）", "gram serials"),
        "holder_region": Term("当前持有地区"),
        "state": Term("账本状态"),
        "reserved_by": Term("预留该区块的转移或注销编号（转移中时）"),
        "parent": Term("拆分来源区块的资源名（如有）"),
    },
    "Record": {
        "methodology": Term("方法学"),
        "project": Term("项目"),
        "issuance": Term("签发"),
        "accepted_time": Term("网关接收该记录的时间", "RFC 3339 UTC"),
        "envelope_hash": Term("承载该记录的信封哈希（SHA-256 十六进制）"),
    },
    "UnitSelection": {
        "ranges": Term("明确的序列号区间（克），同一签发地区"),
        "quantity": Term("从某项目某年份中取出的数量"),
    },
    "SerialRanges": {
        "origin_region": Term("签发地区"),
        "ranges": Term("序列号区间（克，含两端）", "gram serials"),
    },
    "QuantityFromProject": {
        "project": Term("项目资源名"),
        "vintage": Term("年份", "year"),
        "quantity_grams": Term("数量，正整数", "g CO2e"),
    },
    "TransferProposal": {
        "transfer_id": Term("客户端选定的转移编号，即幂等键（1–120 字符，不含 /）"),
        "destination_region": Term("转入地区"),
        "units": Term("转移的减排量"),
        "purpose": Term("用途：普通转移或 ETS 抵消"),
    },
    "TransferAnswer": {
        "transfer": Term("转移的资源名"),
        "reason": Term("理由；拒绝或撤销时必填"),
        "decision": Term("答复：接受、拒绝或撤销，须与调用的 RPC 一致"),
    },
    "RetirementOrder": {
        "retirement_id": Term("客户端选定的注销编号，即幂等键（1–120 字符，不含 /）"),
        "units": Term("注销的减排量"),
        "purpose": Term("用途：ETS 抵消、自愿碳中和或公益注销"),
        "beneficiary": Term("受益方；ETS 抵消时为履约主体"),
        "compliance_year": Term("ETS 抵消的履约年度", "year"),
        "declared_obligation_grams": Term("履约主体该年度申报的排放义务（仅 ETS 抵消）", "g CO2e"),
    },
    "RecognitionApplication": {
        "subject": Term("申请认可的对象：本地区的方法学或项目资源名"),
        "version": Term("对象为方法学时的版本号"),
        "recognising_regions": Term("被请求认可的地区；为空表示长三角其他所有地区"),
        "conditions": Term("提出的认可条件"),
    },
    "RecognitionConditions": {
        "vintage_from": Term("覆盖的起始年份；0 表示不限", "year"),
        "vintage_to": Term("覆盖的截止年份；0 表示不限", "year"),
        "ets_adjustment_ratio": Term("用于 ETS 抵消时的调整系数，在 (0, 1] 内", "ratio"),
        "expire_date": Term("失效日期（至该日北京时间结束）；缺省为不失效"),
    },
    "Fraction": {
        "numerator": Term("分子"),
        "denominator": Term("分母，正数"),
    },
    "RecognitionVerdict": {
        "recognition": Term("认可的资源名"),
        "verdict": Term("决定：批准或拒绝，须与调用的 RPC 一致"),
        "comment": Term("意见，必填"),
    },
    "RecognitionRevocation": {
        "recognition": Term("认可的资源名"),
        "reason": Term("撤销理由，必填"),
    },
}  # fmt: skip

#: Chinese names of the documented messages.
MESSAGE_ZH: dict[str, str] = {
    "CalendarDate": "公历日期",
    "DateRange": "日期区间",
    "ExactQuantity": "精确数量",
    "Parameter": "方法学参数",
    "EligibilityRules": "适用条件",
    "Methodology": "方法学",
    "MethodologyRef": "方法学引用",
    "Project": "项目",
    "ProjectIdentity": "项目识别标识",
    "SiteLocation": "场址坐标",
    "SerialRange": "序列号区间",
    "Issuance": "签发",
    "UnitBlock": "减排量区块",
    "Record": "记录",
    "UnitSelection": "减排量选择",
    "SerialRanges": "序列号区间列表",
    "QuantityFromProject": "按项目取量",
    "TransferProposal": "转移提议（签名正文）",
    "TransferAnswer": "转移答复（签名正文）",
    "RetirementOrder": "注销指令（签名正文）",
    "RecognitionApplication": "认可申请（签名正文）",
    "RecognitionConditions": "认可条件",
    "Fraction": "分数",
    "RecognitionVerdict": "认可决定（签名正文）",
    "RecognitionRevocation": "认可撤销（签名正文）",
}

#: Chinese names of the enum values (UNSPECIFIED: 未设置).
ENUM_ZH: dict[str, str] = {
    "SCENARIO_CATEGORY_DISTRIBUTED_PV": "分布式光伏",
    "SCENARIO_CATEGORY_EV_CHARGING": "充电桩",
    "SCENARIO_CATEGORY_PUBLIC_TRANSIT": "公共交通",
    "SCENARIO_CATEGORY_CYCLING_WALKING": "骑行步行 / 绿色出行",
    "SCENARIO_CATEGORY_WASTE_SORTING": "垃圾分类",
    "SCENARIO_CATEGORY_OTHER": "其他",
    "METHODOLOGY_STATUS_FILED": "备案",
    "METHODOLOGY_STATUS_EFFECTIVE": "生效",
    "METHODOLOGY_STATUS_WITHDRAWN": "废止",
    "PROJECT_STATUS_REGISTERED": "已登记",
    "PROJECT_STATUS_SUSPENDED": "暂停",
    "PROJECT_STATUS_CLOSED": "关闭",
    "UNIT_BLOCK_STATE_ACTIVE": "持有（可转移或注销）",
    "UNIT_BLOCK_STATE_IN_TRANSFER": "转移中（已预留）",
    "UNIT_BLOCK_STATE_RETIRED": "已注销",
    "UNIT_BLOCK_STATE_CANCELLED": "已作废",
    "UNIT_BLOCK_STATE_HELD": "冻结（重复登记核查中）",
    "COORDINATE_DATUM_WGS84": "WGS-84",
    "COORDINATE_DATUM_GCJ02": "GCJ-02（国测局坐标）",
    "COORDINATE_DATUM_BD09": "BD-09（百度坐标）",
    "TRANSFER_PURPOSE_TRANSFER": "普通转移",
    "TRANSFER_PURPOSE_ETS_OFFSET": "ETS 抵消",
    "TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY": "自愿碳中和",
    "TRANSFER_PURPOSE_CHARITABLE": "公益注销",
    "TRANSFER_DECISION_ACCEPT": "接受",
    "TRANSFER_DECISION_REJECT": "拒绝",
    "TRANSFER_DECISION_CANCEL": "撤销",
    "VERDICT_APPROVE": "批准",
    "VERDICT_REJECT": "拒绝",
}
