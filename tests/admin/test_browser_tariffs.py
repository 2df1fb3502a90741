"""In Debian's Chromium: a tariff manager creates a TOU plan with a summer season (a sharp
band at noon), previews it for a July month, creates it, then schedules a price change for
a later time and finds it pending beside the version in force. Screenshots tariffs.png (the
editor with its preview) and tariffs-versions.png in the artefacts dir."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.staff.models import StaffRole
from server.tariffs.models import TariffVersion
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_organisation, create_site

pytestmark = browser_only

SUMMER = "00:00-08:00 谷\n08:00-11:00 峰\n11:00-13:00 尖\n13:00-22:00 平\n22:00-24:00 谷"
OTHER = "00:00-08:00 谷\n08:00-11:00 峰\n11:00-22:00 平\n22:00-24:00 谷"


async def test_create_preview_and_schedule_a_tou_plan(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    await create_site(org, name="科技园")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    later = (datetime.now() + timedelta(days=7)).replace(hour=0, minute=0)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "boss")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=资费")
        await page.wait_for_url("**/admin/tariffs")
        await page.click("text=新建方案")
        await page.fill("#name", "商业分时电价")
        await page.select_option("#shape", "tou")
        assert await page.is_hidden("#rate") and await page.is_visible("#p1")
        await page.fill("#p1", "1.3000")
        await page.fill("#s0_name", "夏季")
        await page.fill("#s0_months", "7-8")
        await page.fill("#s0_workday", SUMMER)
        await page.fill("#s1_name", "其他月份")
        await page.fill("#s1_months", "1-6,9-12")
        await page.fill("#s1_workday", OTHER)
        await page.fill("#month", "2026-07")
        await page.fill("#quantity", "3100")
        await page.click("#preview-button")
        await page.wait_for_selector("#preview-table >> text=尖时段电量")
        total = await page.inner_text("#preview-total")
        # July, 100 kWh a day: 尖 2 h × 31 × 1.30 + 峰 3 h × 1.02 + 平 9 h × 0.65 + 谷 10 h × 0.28
        assert total == "¥1,848.37", total
        await page.screenshot(path=str(ARTEFACTS / "tariffs.png"), full_page=True)
        await page.click("#save")
        await page.wait_for_url("**/admin/tariffs/*?created=1")
        assert "生效中" in await page.inner_text("#versions")
        await page.click("text=调整价格")
        await page.wait_for_url("**/change")
        assert await page.input_value("#s0_workday") == SUMMER
        await page.fill("#p2", "1.1000")
        await page.check("#when-at")
        await page.fill("#effective_from", later.strftime("%Y-%m-%dT%H:%M"))
        await page.click("#save")
        await page.wait_for_url("**?changed=1")
        versions = await page.inner_text("#versions")
        assert (
            "待生效" in versions
            and "峰1.1000" in versions
            and later.strftime("%Y-%m-%d") in versions
        )
        await page.screenshot(path=str(ARTEFACTS / "tariffs-versions.png"), full_page=True)
        assert errors == []
    assert await TariffVersion.all().count() == 2
