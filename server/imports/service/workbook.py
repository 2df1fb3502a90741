"""The park workbook's shape and its cells read as typed rows.

Three sheets as property staff keep them — 房间, 租户, 仪表 — plus 说明. Reading is pure (no
database): each row becomes a typed row or problems, each problem named by sheet, the row
number Excel shows, the column and a message a clerk understands. What needs the site's own
data (a room that already exists, an unknown gateway) is `park.py`'s business.

Excel quirks handled here: numbers typed as numbers come back as floats (101.0 → "101"),
full-width and non-breaking spaces are trimmed, and an address keeps its leading zeros only
when its cell is text — a numeric cell's lost zeros are pointed out, never guessed back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from server.accounts.models import TenantType
from server.core.excel import Sheet
from server.metering.models import MeterBilling
from server.metering.vocabulary import (
    KIND_LABELS,
    PROTOCOL_LABELS,
    MeterKind,
    MeterProtocol,
    address_problem,
)
from server.places.vocabulary import ROOM_USE_LABELS, RoomUse

ROOMS, TENANTS, METERS, NOTES = "房间", "租户", "仪表", "说明"

# Header → field, per sheet; a header matches ignoring spaces (a clerk's "面积 ㎡" is fine).
ROOM_COLUMNS = {
    "楼栋": "building", "楼层": "floor", "房号": "room", "面积㎡": "area", "用途": "use",
}  # fmt: skip
TENANT_COLUMNS = {
    "楼栋": "building", "房号": "room", "户号": "number", "租户名称": "tenant",
    "类型": "type", "手机": "phone",
}  # fmt: skip
METER_COLUMNS = {
    "表号/地址": "address", "类型": "kind", "协议": "protocol", "网关编号": "gateway",
    "从站地址": "unit", "型号": "model", "CT变比": "ct", "PT变比": "pt", "计费方式": "billing",
    "楼栋": "building", "房号": "room", "起始读数": "start",
}  # fmt: skip
HEADER_ALIASES = {
    "面积": "面积㎡", "面积m2": "面积㎡", "面积(㎡)": "面积㎡", "户号/账号": "户号", "账号": "户号",
    "表号": "表号/地址", "地址": "表号/地址", "表地址": "表号/地址",
}  # fmt: skip
REQUIRED = {
    ROOMS: ("building", "floor", "room"),
    TENANTS: ("room", "number", "tenant"),
    METERS: ("address", "kind", "protocol", "gateway"),
}

ROOM_USES = {label: use for use, label in ROOM_USE_LABELS.items()}  # 用途 → the room's use
TENANT_TYPES = {"企业": TenantType.COMPANY, "公司": TenantType.COMPANY, "个人": TenantType.PERSON}
KINDS = {label: kind for kind, label in KIND_LABELS.items()}
BILLINGS = {"平台": MeterBilling.PLATFORM, "平台计费": MeterBilling.PLATFORM,
            "表端": MeterBilling.METER, "表端计费": MeterBilling.METER}  # fmt: skip
_PROTOCOL_NAMES = {
    MeterProtocol.DLT645: ("dlt645", "dlt6452007", "645"),
    MeterProtocol.CJT188: ("cjt188", "cjt1882004", "188"),
    MeterProtocol.MODBUS_TCP: ("modbustcp", "modbus"),
    MeterProtocol.MODBUS_RTU_TCP: ("modbusrtuovertcp", "modbusrtutcp", "modbusrtu"),
    MeterProtocol.MQTT_GATEWAY: ("mqtt", "mqtt网关", "mqttgateway"),
}
PROTOCOLS = {name: p for p, names in _PROTOCOL_NAMES.items() for name in names}
MODBUS = (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)
_LENGTHS = {"building": 100, "floor": 50, "room": 50, "number": 32, "tenant": 100,
            "model": 32, "gateway": 64}  # fmt: skip
_SPACES = re.compile(r"[\s\u3000\u00a0]+")
_PHONE = re.compile(r"1[3-9]\d{9}")
_TWO, _FOUR = Decimal("0.01"), Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file: where (sheet, Excel row, column) and what."""

    sheet: str
    row: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class RoomRef:
    """A room as a tenant or meter row names it: building (may be blank) and room number."""

    building: str
    room: str

    def label(self) -> str:
        return f"{self.building} {self.room}".strip()


@dataclass(frozen=True, slots=True)
class RoomRow:
    row: int
    building: str
    floor: str
    room: str
    area: Decimal
    use: RoomUse | None  # None: the model's default


@dataclass(frozen=True, slots=True)
class TenantRow:
    row: int
    ref: RoomRef
    number: str
    tenant: str
    type: TenantType
    phone: str


@dataclass(frozen=True, slots=True)
class MeterRow:
    row: int
    address: str
    kind: MeterKind
    protocol: MeterProtocol
    gateway: str
    unit: int
    model: str
    ct: int
    pt: int
    billing: MeterBilling
    ref: RoomRef | None  # None: a common-area or master meter, no account
    start: Decimal | None


@dataclass
class Parsed:
    """The file's typed rows and every problem found reading them."""

    rooms: list[RoomRow] = field(default_factory=list)
    tenants: list[TenantRow] = field(default_factory=list)
    meters: list[MeterRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Rooms named by rows that have problems of their own: a row referring to one is not
    # told it is missing as well (one mistake, one message).
    flawed_rooms: set[tuple[str, str]] = field(default_factory=set)


def text(value: Any) -> str:
    """A cell as text: floats that are whole numbers lose their ".0", spaces of every width
    trimmed at both ends (inner runs of spaces become one)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return _SPACES.sub(" ", str(value)).strip()


def _key(header: Any) -> str:
    name = _SPACES.sub("", text(header)).replace("（", "(").replace("）", ")")
    return HEADER_ALIASES.get(name, name)


class _Cells:
    """One sheet's rows read through its header, problems collected as they are found."""

    def __init__(self, sheet: str, rows: list[list[Any]], columns: dict[str, str]) -> None:
        self.sheet = sheet
        self.problems: list[Problem] = []
        wanted = {_SPACES.sub("", h): f for h, f in columns.items()}
        # The header is the first row naming two known columns: a clerk's sheet may open
        # with a title line or two ("科技园房间表").
        self.top = next(
            (i for i, row in enumerate(rows[:5]) if sum(_key(h) in wanted for h in row) >= 2), 0
        )
        header = [_key(h) for h in (rows[self.top] if rows else [])]
        self.index = {wanted[h]: i for i, h in enumerate(header) if h in wanted}
        self.titles = {f: h for h, f in columns.items()}
        self.rows = rows[self.top + 1 :]
        for name in REQUIRED[sheet]:
            if name not in self.index and self.rows:
                problem = Problem(sheet, self.top + 1, self.titles[name], "缺少此列（见模板）")
                self.problems.append(problem)

    def raw(self, row: list[Any], name: str) -> Any:
        i = self.index.get(name)
        return row[i] if i is not None and i < len(row) else None

    def get(self, row: list[Any], name: str) -> str:
        return text(self.raw(row, name))

    def fail(self, number: int, name: str, message: str) -> None:
        self.problems.append(Problem(self.sheet, number, self.titles.get(name, ""), message))

    def filled(self) -> list[tuple[int, list[Any]]]:
        """(Excel row number, cells) of every row with something in it."""
        first = self.top + 2
        return [
            (i + first, list(row)) for i, row in enumerate(self.rows) if any(text(v) for v in row)
        ]

    def required(self, number: int, row: list[Any]) -> dict[str, str]:
        """The row's texts; a blank required field or an over-long one is a problem."""
        values = {name: self.get(row, name) for name in self.titles}
        for name in REQUIRED[self.sheet]:
            if name in self.index and not values[name]:
                self.fail(number, name, "不能为空")
        for name, limit in _LENGTHS.items():
            if len(values.get(name, "")) > limit:
                self.fail(number, name, f"最长 {limit} 个字符")
        return values


def _decimal(value: str) -> Decimal | None:
    try:
        number = Decimal(value.replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _whole(value: str, default: int) -> int | None:
    """A positive whole number ("100/5" as a CT ratio is 20); None when it is not one."""
    if not value:
        return default
    if "/" in value:
        top, _, bottom = value.partition("/")
        a, b = _decimal(top), _decimal(bottom)
        if a is None or not b or a % b:
            return None
        value = str(a / b)
    number = _decimal(value)
    if number is None or number != number.to_integral_value() or not 0 < number < 10**6:
        return None
    return int(number)


def parse(sheets: dict[str, list[list[Any]]]) -> Parsed:
    """Typed rows and problems from `read_xlsx`'s sheets (unknown sheets are ignored)."""
    out = Parsed()
    titles = {_SPACES.sub("", t): t for t in sheets}
    if not any(name in titles for name in (ROOMS, TENANTS, METERS)):
        out.problems.append(Problem("", 0, "", "文件中没有“房间”“租户”“仪表”工作表，请使用模板"))
        return out
    for name, columns, reader in (
        (ROOMS, ROOM_COLUMNS, _room),
        (TENANTS, TENANT_COLUMNS, _tenant),
        (METERS, METER_COLUMNS, _meter),
    ):
        cells = _Cells(name, sheets.get(titles.get(name, ""), []), columns)
        if not cells.problems:
            for number, row in cells.filled():
                reader(cells, number, row, out)
        out.problems += cells.problems
    return out


def _room(cells: _Cells, number: int, row: list[Any], out: Parsed) -> None:
    before = len(cells.problems)
    v = cells.required(number, row)
    area = _decimal(v["area"]) if v["area"] else Decimal(0)
    if area is None or not 0 <= area < 10**7:
        cells.fail(number, "area", "面积应为不小于 0 的数字（平方米）")
    use = ROOM_USES.get(v["use"]) if v["use"] else None
    if v["use"] and use is None:
        cells.fail(number, "use", f"用途应为 {'/'.join(ROOM_USES)} 之一")
    if len(cells.problems) > before:
        out.flawed_rooms.add((v["building"], v["room"]))
    else:
        assert area is not None
        area = area.quantize(_TWO, ROUND_HALF_UP)
        out.rooms.append(RoomRow(number, v["building"], v["floor"], v["room"], area, use))


def _tenant(cells: _Cells, number: int, row: list[Any], out: Parsed) -> None:
    before = len(cells.problems)
    v = cells.required(number, row)
    kind = TENANT_TYPES.get(v["type"]) if v["type"] else TenantType.COMPANY
    if kind is None:
        cells.fail(number, "type", "类型应为 企业 或 个人")
    phone = re.sub(r"[\s\-]", "", v["phone"])
    if phone.startswith("+86"):
        phone = phone[3:]
    if phone and not _PHONE.fullmatch(phone):
        cells.fail(number, "phone", "手机号应为 11 位数字，以 1 开头")
    if len(cells.problems) == before:
        assert kind is not None
        ref = RoomRef(v["building"], v["room"])
        out.tenants.append(TenantRow(number, ref, v["number"], v["tenant"], kind, phone))


def _meter(cells: _Cells, number: int, row: list[Any], out: Parsed) -> None:
    before = len(cells.problems)
    v = cells.required(number, row)
    kind = KINDS.get(v["kind"])
    if v["kind"] and kind is None:
        cells.fail(number, "kind", "类型应为 电表 或 水表")
    protocol = PROTOCOLS.get(re.sub(r"[\s/\-_.]", "", v["protocol"]).lower())
    if v["protocol"] and protocol is None:
        names = "、".join(PROTOCOL_LABELS.values())
        cells.fail(number, "protocol", f"协议应为 {names} 之一")
    unit = _whole(v["unit"], 0) if protocol in MODBUS else 0
    if unit is None:
        cells.fail(number, "unit", "从站地址应为 1 到 247 的整数")
    ratios = {name: _whole(v[name], 1) for name in ("ct", "pt")}
    for name, ratio in ratios.items():
        if ratio is None:
            cells.fail(number, name, "变比应为正整数（如 1、20 或 100/5）")
    billing = BILLINGS.get(v["billing"]) if v["billing"] else MeterBilling.PLATFORM
    if billing is None:
        cells.fail(number, "billing", "计费方式应为 平台 或 表端")
    start = _decimal(v["start"]) if v["start"] else None
    if v["start"] and (start is None or not 0 <= start < 10**10):
        cells.fail(number, "start", "起始读数应为不小于 0 的数字")
    if kind is not None and protocol is not None and unit is not None and v["address"]:
        problem = address_problem(kind, protocol, v["address"], unit)
        if problem and isinstance(cells.raw(row, "address"), int | float):
            problem += "（该单元格是数字格式，开头的 0 会丢失：请把此列设为文本）"
        if problem:
            cells.fail(number, "unit" if "从站" in problem else "address", problem)
    if len(cells.problems) > before:
        return
    assert kind and protocol and billing and unit is not None and ratios["ct"] and ratios["pt"]
    ref = RoomRef(v["building"], v["room"]) if v["room"] else None
    if v["building"] and not v["room"]:
        cells.fail(number, "room", "填写了楼栋时请同时填写房号（公共表两者都留空）")
        return
    out.meters.append(
        MeterRow(
            number, v["address"], kind, protocol, v["gateway"], unit, v["model"],
            ratios["ct"], ratios["pt"], billing, ref,
            start.quantize(_FOUR, ROUND_HALF_UP) if start is not None else None,
        )
    )  # fmt: skip


NOTES_TEXT = [
    ("房间", "每行一个房间。楼栋、楼层、房号必填；同一楼栋内房号不能重复。"),
    ("房间", "面积单位平方米，可留空。"),
    ("房间", "用途填 商铺、办公、公寓 或 公共。已存在的楼栋、楼层会沿用，不会重复创建。"),
    ("租户", "每个房间一个租户（户）。房间用 楼栋+房号 指明（房号全站唯一时楼栋可留空）。"),
    ("租户", "户号在本站点内唯一；类型填 企业 或 个人；手机为 11 位手机号，可留空。"),
    ("租户", "新开的户余额为 0，不产生任何收费记录；充值请在开户后进行。"),
    ("仪表", "表号/地址：DL/T 645 电表 12 位数字，CJ/T 188 水表 14 位数字，见表铭牌。"),
    ("仪表", "请把“表号/地址”列设为文本格式，否则开头的 0 会丢失。"),
    ("仪表", "协议：DL/T 645、CJ/T 188、Modbus TCP、Modbus RTU over TCP、MQTT 网关。"),
    ("仪表", "网关编号必须是本站点已登记的网关，且类型与协议相符；Modbus 表须填从站地址 1–247。"),
    ("仪表", "CT、PT 变比留空为 1；计费方式填 平台 或 表端，留空为平台计费。"),
    ("仪表", "楼栋+房号指明表所在的房间（房间有租户时表归该户）；公共表、总表两者留空。"),
    ("仪表", "起始读数可留空。"),
    ("导入", "先预览：所有错误会按工作表、行号、列列出；没有错误才能确认导入。"),
    ("导入", "导入是整体的：任何一行有错，什么都不会写入。"),
]


def template() -> list[Sheet]:
    """The workbook staff download, fill in and upload: an example row in each sheet."""
    return [
        Sheet(ROOMS, list(ROOM_COLUMNS), [["A栋", "1", "101", 56.3, "商铺"]]),
        Sheet(
            TENANTS,
            list(TENANT_COLUMNS),
            [["A栋", "101", "A101", "深圳市某某商贸有限公司", "企业", "13800138000"]],
        ),
        Sheet(
            METERS,
            list(METER_COLUMNS),
            [
                [
                    "000000000101",
                    "电表",
                    "DL/T 645-2007",
                    "GW-01",
                    "",
                    "DDS1352",
                    1,
                    1,
                    "平台",
                    "A栋",
                    "101",
                    0,
                ]
            ],
            widths=[16, 8, 16, 12, 10, 12, 8, 8, 10, 10, 10, 10],
        ),
        Sheet(NOTES, ["项目", "说明"], NOTES_TEXT, widths=[10, 90]),
    ]
