"""In Chromium (same setup as test_browser.py): an organisation's admin creates a building
with floors and rooms from the site's page, sees the grid, and finds a room in the room list.
Screenshots under the test artefacts (building.png, room.png, rooms.png) for a person to look at."""

from __future__ import annotations

from server.places.models import Room
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_account, create_organisation, create_site

pytestmark = browser_only  # Chromium present, PostgreSQL run only


async def test_staff_create_a_building_with_floors_and_rooms(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园", address="深圳市南山区科技南路 1 号")
    await create_staff("zhang", StaffRole.ORG_ADMIN, org)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "zhang")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=园区")
        await page.click(f"a[href='/admin/sites/{site.id}']")
        form = page.locator("#new-building")
        await form.locator("#building-name").fill("A座")
        await form.locator("#floors").fill("6")
        await form.locator("#rooms_per_floor").fill("8")
        await form.locator("#area_m2").fill("52.5")
        await form.locator("#use").select_option("office")
        await form.locator("button[type=submit]").click()
        await page.wait_for_url("**/admin/buildings/*")
        assert "6 层，48 个在用房间" in await page.inner_text("h1")
        assert await page.locator("[data-floor='6层'] a.btn").count() == 8
        building_url = page.url

        await create_account(room=await Room.get(name="305"), site=site, tenant_name="星光咖啡")
        await page.goto(building_url)  # the occupied room shows as such in the grid
        assert await page.locator("a.btn-success").all_inner_texts() == ["305"]
        await page.screenshot(path=str(ARTEFACTS / "building.png"), full_page=True)
        await page.goto(f"{admin_app.url}/admin/rooms?q=星光")
        assert "305" in await page.inner_text("table")
        await page.click("table >> text=305")
        await page.wait_for_url("**/admin/rooms/*")
        assert "星光咖啡" in await page.inner_text("main")
        await page.screenshot(path=str(ARTEFACTS / "room.png"), full_page=True)
        await page.goto(f"{admin_app.url}/admin/rooms?site={site.id}")
        await page.screenshot(path=str(ARTEFACTS / "rooms.png"), full_page=False)
        assert errors == []
