"""换表 and a held reading in Debian's Chromium (headless, Playwright): an operator replaces
a meter with entered readings (form, confirmation), lands on the new meter's page and sees
the 30-day chart and table carry on across the swap (the old meter's days, then the new
one's), linked back to the old meter; then accepts a held jump and sees it billed.
Screenshots `meter-replaced.png` and `held-accepted.png` in data/test-artefacts/admin/.
Runs once, in the PostgreSQL run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from playwright.async_api import Page

from server.billing.models import UsageChargeRow
from server.billing.pipeline import process_readings
from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import GatewayKind, HeldReading, Meter, ReviewStatus
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.staff.models import StaffRole
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import (
    create_account,
    create_gateway,
    create_meter,
    create_organisation,
    create_site,
)

pytestmark = browser_only  # PostgreSQL run, with Chromium


async def _sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(f"{url}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")


async def _read(meter_id: int, at: datetime, total: Decimal) -> None:
    await process_readings([IncomingReading(meter_id, Reading(at, total))], now=at)


async def test_replace_a_meter_then_accept_a_held_reading(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    account = await create_account(site=site, tenant_name="深圳市星河咖啡有限公司")
    plan = await create_plan(
        site.id, "商业电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "1.00"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, plan.id)
    await ledger.recharge(account.id, Channel.CASH, 500_000, key="open", actor="staff:1")
    gw = await create_gateway(site, code="DTU-A1", kind=GatewayKind.TCP_TRANSPARENT)
    old = await create_meter(account, gateway=gw, address="000000001201", rated_kw=Decimal(1000))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    total = Decimal(1000)
    for days_ago in range(12, 0, -1):  # twelve days of use on the old meter, 30 to 52 kWh
        total += 30 + 2 * days_ago
        await _read(old.id, now - timedelta(days=days_ago), total)
    await create_staff("keeper", StaffRole.OPERATOR, org, sites=[site])

    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda dialog: dialog.accept())
        await _sign_in(page, admin_app.url, "keeper")
        await page.goto(f"{admin_app.url}/admin/meters/{old.id}")
        await page.click("a:has-text('换表')")
        await page.wait_for_url(f"**/admin/meters/{old.id}/replace")
        await page.fill("#old_final", str(total + 25))
        await page.fill("#address", "000000001202")
        await page.fill("#new_first", "0")
        await page.click("button:has-text('下一步')")
        assert await page.text_content("[data-field=closing]") is not None
        assert "25" in (await page.text_content("[data-field=closing]") or "")
        await page.click("button:has-text('确认换表')")
        await page.wait_for_url("**/admin/meters/*")
        new = await Meter.get(address="000000001202")
        assert page.url.endswith(f"/admin/meters/{new.id}")
        await _read(new.id, datetime.now(UTC) + timedelta(minutes=1), Decimal("8.5"))
        await page.reload()
        await page.wait_for_selector("[data-chart='meter-days'] svg")
        assert await page.get_attribute("[data-field=predecessor]", "href") == (
            f"/admin/meters/{old.id}"
        )
        await page.click("#meter-chain summary")
        table = await page.text_content("[data-field=usage-table]") or ""
        assert "000000001201" in table and "000000001202" in table
        await page.screenshot(path=str(ARTEFACTS / "meter-replaced.png"), full_page=True)

        # 400 kWh in two minutes, more than even a 1,000 kW supply passes: held, then accepted.
        await _read(new.id, datetime.now(UTC) + timedelta(minutes=3), Decimal("408.5"))
        held = await HeldReading.get(meter_id=new.id)
        await page.click("a.nav-link:has-text('待审读数')")
        await page.wait_for_url("**/admin/readings/held")
        row = page.locator(f"tr[data-held='{held.id}']")
        assert "按差值 400 计费" in (await row.text_content() or "")
        await row.locator("button:has-text('接受')").click()
        await page.wait_for_url("**/admin/readings/held?done=accepted-*")
        await page.select_option("select[name=status]", "all")
        await page.click("button:has-text('查询')")
        await page.wait_for_url("**status=all**")
        status = await page.text_content(f"tr[data-held='{held.id}'] [data-field=status]")
        assert "已接受" in (status or "") and "400" in (status or "")
        await page.screenshot(path=str(ARTEFACTS / "held-accepted.png"), full_page=True)
        assert errors == []
    await held.refresh_from_db()
    assert held.status == ReviewStatus.ACCEPTED
    quantities = [
        Decimal(c.quantity)
        for c in await UsageChargeRow.filter(account_id=account.id).order_by("reading_at")
    ]
    assert quantities[-3:] == [Decimal(25), Decimal("8.5"), Decimal(400)]
