"""In Chromium: a viewer opens 报表 → 月度综合报表 of the seeded November
(tests/reports/seeded.py), sees the band chart drawn and the hand-checked figures, exports it
(the downloaded .xlsx opened with openpyxl) and opens the print view. Screenshots
reports.png (copied to admin/docs/) and reports-print.png."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook

from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.reports.seeded import seed_november

pytestmark = browser_only  # Chromium present, PostgreSQL run only


async def test_monthly_report_export_and_print_view(
    admin_app: AdminApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)
    await create_staff("viewer", StaffRole.VIEWER, await Organisation.get(id=park.organisation_id))
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "viewer")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=报表")
        await page.click("text=月度综合报表")
        await page.wait_for_url("**/admin/reports/monthly")
        await page.fill("#month", "2026-11")
        await page.click("button:text-is('查询')")
        await page.wait_for_url("**/admin/reports/monthly?*month=2026-11*")
        await page.wait_for_selector("[data-report-chart] svg")
        table = await page.inner_text(".report-table")
        for figure in ("一号便利店", "¥500.00", "¥231.00", "¥160.00", "¥185.50"):
            assert figure in table, figure
        await page.screenshot(path=str(ARTEFACTS / "reports.png"), full_page=True)

        async with page.expect_download() as download:
            await page.click("[data-export]")
        saved = ARTEFACTS / "reports-monthly.xlsx"
        await (await download.value).save_as(saved)
        rows = list(load_workbook(saved).active.iter_rows(values_only=True))
        by_number = {r[4]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
        assert by_number["A101"]["期末余额(元)"] == 231 and rows[-1][5] == "合计"

        await page.click("[data-report-print-view]")
        await page.wait_for_url("**view=print*")
        assert await page.locator("nav").count() == 0
        assert await page.locator("[data-print]").is_visible()
        assert "¥231.00" in await page.inner_text(".report-table")
        await page.screenshot(path=str(ARTEFACTS / "reports-print.png"), full_page=True)
        assert errors == []
