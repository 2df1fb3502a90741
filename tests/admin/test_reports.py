"""The report pages over the real app, on the seeded November (tests/reports/seeded.py):
the monthly report's figures, its Excel opened with openpyxl, the print view, and the
scope (another organisation's site is 404, bad input a clear 422)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from server.ledger.posting import ChargeType
from server.ledger.service import charge
from server.metering.models import AlarmRecord, CommandStatus, HeldReading, Meter
from server.metering.service.commands import queue_command, transition
from server.places.models import Organisation, Site
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_gateway,
    create_organisation,
    create_room,
    create_site,
)
from tests.reports.seeded import seed_november


async def test_monthly_report_page_export_and_print(
    admin_app: AdminApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)
    org = await Organisation.get(id=park.organisation_id)
    await create_staff("viewer", StaffRole.VIEWER, org)
    other = await create_site(await create_organisation())
    async with signed_in(admin_app, "viewer") as b:
        index = await b.get("/admin/reports")
        assert index.status_code == 200 and "/admin/reports/monthly" in index.text
        page = await b.get(f"/admin/reports/monthly?month=2026-11&site={park.site_id}")
        assert page.status_code == 200, page.text[:300]
        body = main_of(page)
        for figure in ("一号便利店", "¥500.00", "¥231.00", "¥185.50", "¥160.00", "¥21.00",
                       "本月读数次月入账 ¥12.00", "含上月读数 ¥9.00", "150.00"):  # fmt: skip
            assert figure in body, figure
        assert "data-report-chart" in body and "2026年11月" in body

        sheet = await b.get(f"/admin/reports/monthly?month=2026-11&site={park.site_id}&format=xlsx")
        assert sheet.status_code == 200
        ws = load_workbook(io.BytesIO(sheet.content)).active
        rows = list(ws.iter_rows(values_only=True))
        header = rows[0]
        assert header[4:7] == ("户号", "租户", "期初余额(元)")
        by_number = {r[4]: dict(zip(header, r, strict=True)) for r in rows[1:]}
        assert by_number["A101"]["期末余额(元)"] == 231
        assert by_number["A102"]["支付宝缴费(元)"] == 200
        assert by_number["A101"]["峰电费(元)"] == 160 and by_number["A101"]["谷电量(kWh)"] == 40
        assert rows[-1][5] == "合计" and rows[-1][header.index("期末余额(元)")] == 416.5

        printed = await b.get("/admin/reports/monthly?month=2026-11&view=print")
        assert printed.status_code == 200 and "<nav" not in printed.text
        assert "reports-print.css" in printed.text and "data-print" in printed.text

        assert (await b.get(f"/admin/reports/monthly?site={other.id}")).status_code == 404
        bad = await b.get("/admin/reports/monthly?month=2026-13")
        assert bad.status_code == 422 and "YYYY-MM" in bad.text


async def test_energy_and_compare_pages(
    admin_app: AdminApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)
    org = await Organisation.get(id=park.organisation_id)
    await create_staff("finance", StaffRole.FINANCE, org)
    async with signed_in(admin_app, "finance") as b:
        page = await b.get(
            "/admin/reports/energy?by=account&grain=month&since=2026-10-01&until=2026-11-30"
        )
        body = main_of(page)
        assert page.status_code == 200 and "A101 一号便利店" in body and "190.00" in body
        sheet = await b.get(
            "/admin/reports/energy?by=building&grain=month&since=2026-10-01"
            "&until=2026-11-30&format=xlsx"
        )
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert rows[0][:3] == ("楼栋", "2026-10 用电(kWh)", "2026-10 金额(元)")
        assert rows[1][0] == "A栋" and rows[1][3] == 200 and rows[-1][0] == "合计"
        too_long = await b.get("/admin/reports/energy?grain=day&since=2026-01-01&until=2026-12-31")
        assert too_long.status_code == 422 and "92" in too_long.text
        assert (await b.get("/admin/reports/energy?grain=week")).status_code == 422

        compare = await b.get("/admin/reports/compare?month=2026-11&by=account")
        body = main_of(compare)
        assert compare.status_code == 200 and "+1900.0%" in body and "上期没有数据" in body
        sheet = await b.get("/admin/reports/compare?month=2026-11&by=site&format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert rows[0][4:] == ("环比(%)", "2025年11月用电(kWh)", "同比(%)")
        assert rows[1][1] == 200 and rows[1][4] == 1900 and rows[1][6] is None
        assert (await b.get("/admin/reports/compare?by=meter")).status_code == 422


async def test_the_other_reports(admin_app: AdminApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Combined, ranking, arrears, offline meters, alarms and faults, command rates: each page
    with its figures, one Excel opened, one print view — on the seeded November plus a shop in
    arrears, a gateway whose commands partly fail, an alarm and a held reading."""
    park = await seed_november(monkeypatch)
    org = await Organisation.get(id=park.organisation_id)
    site = await Site.get(id=park.site_id)
    await create_staff("viewer", StaffRole.VIEWER, org)
    floor = await create_floor(await create_building(site, name="B栋"), name="2F")
    room = await create_room(floor, name="B201")
    a103 = await create_account(room, site, number="B201", tenant_name="三号面馆")
    await charge(
        a103.id, ChargeType.WATER, 4_250, key="w-B201", actor="system:t", allow_arrears=True
    )
    now = datetime.now(UTC)
    await AlarmRecord.create(account_id=a103.id, kind="arrears", level=3, balance_fen=-4_250,
                             message="已欠费 ¥42.50", created_at=now)  # fmt: skip
    gateway = await create_gateway(site, name="A栋网关")
    await Meter.filter(id=park.meter_a101).update(gateway_id=gateway.id, online=True)
    await Meter.filter(id=park.meter_a102).update(online=False)
    m2 = await Meter.get(id=park.meter_a102)
    await HeldReading.create(
        meter_id=m2.id, taken_at=now, total=Decimal("99999"), outcome="implausible",
        reason="读数跳变过大", source="poll",
    )  # fmt: skip
    for i, (status, error) in enumerate([("acked", ""), ("acked", ""), ("failed", "应答超时")]):
        cmd = await queue_command(park.meter_a101, "read", actor="staff:0", reason=f"点抄{i}")
        await transition(cmd, CommandStatus(status), now=now, error=error)

    async with signed_in(admin_app, "viewer") as b:
        index = main_of(await b.get("/admin/reports"))
        for href in ("combined", "ranking", "arrears", "offline", "faults", "commands"):
            assert f"/admin/reports/{href}" in index, href
        assert "/admin/finance/income" in index

        page = await b.get("/admin/reports/combined?since=2026-10&until=2026-11")
        body = main_of(page)
        assert page.status_code == 200 and "2026年11月" in body and "¥416.50" in body
        sheet = await b.get("/admin/reports/combined?since=2026-10&until=2026-11&format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
        header = rows[0]
        october, november, total = (dict(zip(header, r, strict=True)) for r in rows[1:])
        assert (october["期初余额(元)"], october["期末余额(元)"]) == (0, 500)
        assert (november["期初余额(元)"], november["期末余额(元)"]) == (500, 416.5)
        assert (total["期初余额(元)"], total["缴费(元)"], total["期末余额(元)"]) == (0, 700, 416.5)
        assert november["用电量(kWh)"] == 200
        printed = await b.get("/admin/reports/combined?since=2026-10&until=2026-11&view=print")
        assert "<nav" not in printed.text and "data-print" in printed.text

        body = main_of(await b.get("/admin/reports/ranking?since=2026-10&until=2026-11"))
        assert body.index("一号便利店") < body.index("二号茶饮") and "¥700.00" in body

        body = main_of(await b.get("/admin/reports/arrears"))
        assert "三号面馆" in body and "¥42.50" in body and "一号便利店" not in body
        sheet = await b.get("/admin/reports/arrears?format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert rows[1][4:7] == ("B201", "三号面馆", 42.5) and rows[-1][0] == "合计"

        body = main_of(await b.get("/admin/reports/offline?days=3"))
        assert m2.address in body and "（无网关）" in body
        assert (await b.get("/admin/reports/offline?days=0")).status_code == 422

        body = main_of(await b.get("/admin/reports/faults"))
        assert "已欠费 ¥42.50" in body and "读数跳变过大" in body and "应答超时" in body
        sheet = await b.get("/admin/reports/faults?format=xlsx")
        assert load_workbook(io.BytesIO(sheet.content)).sheetnames == [
            "余额告警",
            "异常读数",
            "指令失败",
        ]

        body = main_of(await b.get("/admin/reports/commands"))
        assert "A栋网关" in body and "66.7" in body
        sheet = await b.get("/admin/reports/commands?format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert rows[1][0] == "A栋网关" and rows[1][3:6] == (3, 2, 1) and rows[1][-1] == 66.7
