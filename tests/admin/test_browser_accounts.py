"""开户 in Chromium (headless, Playwright): a site admin opens a vacant room's page, presses
一键开户 on its account panel, finds both of the room's meters (electricity and water)
ticked, types the tenant and a cash opening balance, and lands on the account page showing
the balance, the two meters and the cash recharge; then makes the tenant's binding QR.
Screenshot account-open.png in data/test-artefacts/admin/. PostgreSQL run only."""

from __future__ import annotations

from datetime import UTC, datetime

from server.metering.models import Meter
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import (
    create_building,
    create_floor,
    create_organisation,
    create_room,
    create_site,
)

pytestmark = browser_only


async def test_open_an_account_with_two_meters_and_a_cash_opening_balance(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    floor = await create_floor(await create_building(site, name="A栋"), name="3F", sort_order=3)
    room = await create_room(floor, name="A301")
    made = datetime(2026, 1, 1, tzinfo=UTC)
    for kind, protocol, address in (
        (MeterKind.ELECTRICITY, MeterProtocol.DLT645, "000000003011"),
        (MeterKind.WATER, MeterProtocol.CJT188, "00000000003012"),
    ):
        await Meter.create(site_id=site.id, room_id=room.id, kind=kind, protocol=protocol,
                           address=address, installed_at=made)  # fmt: skip
    await create_staff("keeper", StaffRole.SITE_ADMIN, org, sites=[site])
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "keeper")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")

        await page.goto(f"{admin_app.url}/admin/rooms/{room.id}")
        await page.click("#open-account")  # the panel, loaded by htmx
        await page.wait_for_url(f"**/admin/rooms/{room.id}/open")
        boxes = page.locator("input[name=meter_id]")
        assert await boxes.count() == 2
        assert all([await boxes.nth(i).is_checked() for i in range(2)])
        await page.fill("#tenant_name", "深圳市星光咖啡有限公司")
        await page.fill("#phone", "13912345678")
        await page.fill("#opening_amount", "500")
        await page.check("#channel-cash")
        await page.fill("#reference", "SJ-20261205-01")
        await page.click("#open-submit")
        await page.wait_for_url("**/admin/accounts/*?opened=1")
        main = await page.inner_text("main")
        assert "开户成功" in main and "深圳市星光咖啡有限公司" in main
        assert await page.inner_text("[data-field=available]") == "¥500.00"
        assert "000000003011" in main and "00000000003012" in main and "现金充值" in main
        await page.click("#make-binding-code")
        await page.wait_for_selector("#binding-card img")
        await page.screenshot(path=str(ARTEFACTS / "account-open.png"), full_page=True)

        await page.goto(f"{admin_app.url}/admin/rooms/{room.id}")
        await page.wait_for_selector("#room-account [data-field=available]")
        assert await page.inner_text("#room-account [data-field=available]") == "¥500.00"
        assert errors == []
