"""Reading the park workbook: typed rows, every problem with its sheet, Excel row and column,
and the quirks of cells as Excel stores them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.accounts.models import TenantType
from server.core.errors import ValidationFailed
from server.core.excel import MAX_ROWS, read_xlsx, write_xlsx
from server.imports.service.workbook import (
    METERS,
    ROOMS,
    TENANTS,
    Parsed,
    Problem,
    parse,
    template,
    text,
)
from server.metering.models import MeterBilling
from server.metering.vocabulary import MeterKind, MeterProtocol
from tests.imports.books import book, meter, room, tenant


def read(data: bytes) -> Parsed:
    return parse(read_xlsx(data))


def messages(parsed: Parsed) -> list[tuple[str, int, str]]:
    return [(p.sheet, p.row, p.column) for p in parsed.problems]


def test_the_template_reads_back_without_a_problem() -> None:
    parsed = read(write_xlsx(*template()))
    assert parsed.problems == []
    assert [(r.building, r.floor, r.room, r.area, r.use) for r in parsed.rooms] == [
        ("A栋", "1", "101", Decimal("56.30"), "shop")
    ]
    (t,) = parsed.tenants
    assert (t.ref.building, t.ref.room, t.number, t.type, t.phone) == (
        "A栋", "101", "A101", TenantType.COMPANY, "13800138000",
    )  # fmt: skip
    (m,) = parsed.meters
    assert (m.address, m.kind, m.protocol, m.gateway, m.ct, m.pt, m.billing, m.start) == (
        "000000000101", MeterKind.ELECTRICITY, MeterProtocol.DLT645, "GW-01", 1, 1,
        MeterBilling.PLATFORM, Decimal("0.0000"),
    )  # fmt: skip
    assert "说明" in read_xlsx(write_xlsx(*template()))


def test_excel_quirks_floats_full_width_spaces_and_text_addresses() -> None:
    assert text(101.0) == "101"
    assert text(56.3) == "56.3"
    assert text("\u3000A栋\u00a0 ") == "A栋"
    parsed = read(
        book(
            [room("\u3000A栋 ", 1.0, 101.0, "56.333")],
            [tenant(101.0, 88.0, " A栋", phone=13800138000.0)],
            [meter("000000000101", number=101.0, start=12.5, ct="100/5")],
        )
    )
    assert parsed.problems == []
    assert (parsed.rooms[0].building, parsed.rooms[0].floor, parsed.rooms[0].room) == (
        "A栋", "1", "101",
    )  # fmt: skip
    assert parsed.rooms[0].area == Decimal("56.33")
    assert (parsed.tenants[0].number, parsed.tenants[0].phone) == ("88", "13800138000")
    assert parsed.meters[0].address == "000000000101"  # a text cell keeps its zeros
    assert (parsed.meters[0].ct, parsed.meters[0].start) == (20, Decimal("12.5000"))


def test_a_numeric_address_cell_that_lost_its_zeros_is_pointed_out() -> None:
    parsed = read(book(meters=[meter(101)]))
    (problem,) = parsed.problems
    assert (problem.sheet, problem.row, problem.column) == (METERS, 2, "表号/地址")
    assert "12 位数字" in problem.message and "开头的 0 会丢失" in problem.message


def test_every_problem_of_every_row_at_once() -> None:
    parsed = read(
        book(
            [
                room(),
                room("", "1", "102"),  # building missing
                room(number="103", area="大约五十"),
                room(number="104", area=-3),
                room(number="105", use="仓库"),
            ],
            [
                tenant(account=""),  # number missing
                tenant(kind="合伙"),
                tenant(phone="1380013800"),
            ],
            [
                meter(kind="燃气表"),
                meter(protocol="M-Bus"),
                meter("00000000000000", kind="电表", protocol="CJ/T 188"),
                meter("SN-1", protocol="Modbus TCP", unit=300),
                meter("SN-2", protocol="Modbus TCP", unit=""),
                meter(ct=0),
                meter(pt="x"),
                meter(billing="后付费"),
                meter(start="-1"),
                meter(gateway=""),
            ],
        )
    )
    assert messages(parsed) == [
        (ROOMS, 3, "楼栋"), (ROOMS, 4, "面积㎡"), (ROOMS, 5, "面积㎡"), (ROOMS, 6, "用途"),
        (TENANTS, 2, "户号"), (TENANTS, 3, "类型"), (TENANTS, 4, "手机"),
        (METERS, 2, "类型"), (METERS, 3, "协议"), (METERS, 4, "表号/地址"),
        (METERS, 5, "从站地址"), (METERS, 6, "从站地址"), (METERS, 7, "CT变比"),
        (METERS, 8, "PT变比"), (METERS, 9, "计费方式"), (METERS, 10, "起始读数"),
        (METERS, 11, "网关编号"),
    ]  # fmt: skip
    cjt = next(p for p in parsed.problems if p.row == 4 and p.sheet == METERS)
    assert cjt.message == "CJ/T 188 是水表协议，电表请选 DL/T 645 或 Modbus"
    assert [r.room for r in parsed.rooms] == ["101"]
    assert parsed.tenants == [] and parsed.meters == []


def test_protocol_names_as_staff_write_them() -> None:
    rows = [
        meter(f"{i:012d}", protocol=name)
        for i, name in enumerate(["DL/T 645", "dlt645", "645", "DL/T645-2007"], start=1)
    ]
    water = meter("10000000000001", kind="水表", protocol="CJ/T 188", number="", building="")
    rows += [meter("SN-9", protocol="Modbus RTU over TCP", unit=3), water]
    parsed = read(book(meters=rows))
    assert parsed.problems == []
    assert [m.protocol for m in parsed.meters] == [MeterProtocol.DLT645] * 4 + [
        MeterProtocol.MODBUS_RTU_TCP, MeterProtocol.CJT188,
    ]  # fmt: skip
    assert parsed.meters[4].unit == 3 and parsed.meters[5].ref is None


def test_a_missing_column_or_sheet() -> None:
    from server.core.excel import Sheet

    no_room_column = write_xlsx(Sheet(ROOMS, ["楼栋", "楼层", "面积㎡"], [["A栋", "1", 10]]))
    assert read(no_room_column).problems == [Problem(ROOMS, 1, "房号", "缺少此列（见模板）")]
    titled = write_xlsx(
        Sheet(ROOMS, ["科技园房间表"], [[], ["楼栋", "楼层", "房号"], ["A栋", 1, 101]])
    )
    parsed = read(titled)  # a title line above the header: row numbers stay Excel's
    assert parsed.problems == [] and [(r.row, r.room) for r in parsed.rooms] == [(4, "101")]
    other = write_xlsx(Sheet("Sheet1", ["a"], [["b"]]))
    assert "请使用模板" in read(other).problems[0].message


def test_hostile_files_are_refused_clearly() -> None:
    import io
    import zipfile

    with pytest.raises(ValidationFailed, match="无法读取文件"):
        read_xlsx(b"this is not a zip at all")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as packed:
        with packed.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(210):  # 210 MiB unpacked from a file of a few hundred KiB
                member.write(bytes(1 << 20))
    with pytest.raises(ValidationFailed, match="解压后过大"):
        read_xlsx(bomb.getvalue())
    # The row cap's check, at a cap small enough to build quickly; the uploads get MAX_ROWS.
    assert MAX_ROWS == 50_000
    with pytest.raises(ValidationFailed, match="超过 300 行"):
        read_xlsx(book([room(number=str(i)) for i in range(400)]), max_rows=300)
