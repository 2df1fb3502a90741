"""One walk through the panel in Debian's Chromium (headless, driven by Playwright; no browser
download): five wrong passwords lock the demo staff member out (the right one too, until the
lock passes); then they sign in and see the dashboard with its chart, and the page
is saved as a screenshot (data/test-artefacts/admin/, or $SHUIDIAN_TEST_ARTEFACTS) for a
person to look at. Runs once, in the PostgreSQL run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import DailyUsage, Meter
from server.metering.vocabulary import MeterKind
from server.seed import seed_staff
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import AdminApp
from tests.admin.test_dashboard import TZ, a_busy_site
from tests.factories import create_organisation, create_site

pytestmark = browser_only


async def a_week_of_figures(site_id: int) -> None:
    """Six earlier days of income and use, so the chart has a shape: the income posted
    through the ledger on each of those days (its clock set back; it stamps the time)."""
    now = datetime.now(UTC)
    meters = await Meter.filter(site_id=site_id, kind=MeterKind.ELECTRICITY)
    for back in range(1, 7):
        at = now - timedelta(days=back)
        for i, meter in enumerate(meters):
            await DailyUsage.create(
                meter=meter, account_id=meter.account_id, day=at.astimezone(TZ).date(),  # type: ignore[attr-defined]
                quantity_e4=(90_000 + 15_000 * ((back * 3 + i) % 5)), updated_at=at,
            )  # fmt: skip
        with pytest.MonkeyPatch.context() as clock:
            clock.setattr("server.ledger.write.now", lambda at=at: at)
            await ledger.recharge(
                meters[0].account_id, Channel.WECHAT, 20_000 * (1 + back % 3),  # type: ignore[attr-defined]
                key=f"W{site_id}d{back}", actor="tenant:o-x",
            )  # fmt: skip


async def test_staff_signs_in_and_sees_the_dashboard(admin_app: AdminApp) -> None:
    site = await create_site(await create_organisation(name="示范物业集团"), name="科技园")
    await a_busy_site(site, 6)
    await a_week_of_figures(site.id)
    username, password = await seed_staff(site.id)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/")
        assert page.url.endswith("/admin/login")
        for attempt in range(6):  # five wrong passwords lock the name; then even the right one
            await page.fill("#username", username)
            await page.fill("#password", password if attempt == 5 else f"wrong-{attempt}")
            await page.click("button[type=submit]")
            await page.wait_for_selector(".alert")
            assert "用户名或密码错误，或尝试次数过多" in await page.inner_text(".alert")
        assert page.url.endswith("/admin/login")
        await page.screenshot(path=str(ARTEFACTS / "signin-locked.png"), full_page=True)
        errors.clear()  # the six 401 answers above were the point
        # The lock lasts 15 minutes (Redis keeps the count: test_signin proves the time on
        # memory counters); here the counters are let go as that time would.
        door = admin_app.app.ctx.staff_door
        await door.by_username.clear(username.lower())
        await door.by_ip.clear("127.0.0.1")
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.wait_for_selector("[data-chart='days'] svg")
        assert await page.inner_text("[data-figure='在线表计']") == "6"
        assert "演示管理员" in await page.inner_text("nav")
        await page.screenshot(path=str(ARTEFACTS / "dashboard.png"), full_page=True)
        assert errors == []
