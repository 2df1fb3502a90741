"""The report pages over the real app, on the seeded November (tests/reports/seeded.py):
the monthly report's figures, its Excel opened with openpyxl, the print view, and the
scope (another organisation's site is 404, bad input a clear 422)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_organisation, create_site
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
