"""The Excel import in Debian's Chromium (Playwright, as tests/admin/test_browser.py): the
template filled in with one bad meter address is refused with the error in its row; fixed,
it previews clean and imports. Screenshots of the three pages are saved for a person to look
at (data/test-artefacts/admin/import-*.png). PostgreSQL run only."""

from __future__ import annotations

from pathlib import Path

from server.metering.models import GatewayKind, Meter
from server.places.models import Room
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_gateway, create_organisation, create_site
from tests.imports.books import book, meter, room, tenant

pytestmark = browser_only


def workbook(address_of_102: str) -> bytes:
    rooms = [room("A栋", "1", f"10{i}", 40 + i, "商铺") for i in range(1, 7)]
    tenants = [tenant(f"10{i}", f"A10{i}", name=f"租户{i}号") for i in range(1, 7)]
    meters = [meter(f"00000000010{i}", number=f"10{i}", start=f"{i}0.5") for i in range(1, 7)]
    meters[1] = meter(address_of_102, number="102", start="20.5")
    return book(rooms, tenants, meters)


async def test_import_with_one_bad_row_then_fixed(admin_app: AdminApp, tmp_path: Path) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    await create_gateway(site, code="GW-T", kind=GatewayKind.TCP_TRANSPARENT)
    await create_staff("importer", organisation=org)
    bad, good = tmp_path / "园区-有错.xlsx", tmp_path / "园区.xlsx"
    bad.write_bytes(workbook("10102"))  # a DL/T 645 address that lost its zeros
    good.write_bytes(workbook("000000000102"))
    async with chromium() as browser:
        page, errors = await watched_page(browser, failed_loads=False)
        page.on("dialog", lambda dialog: dialog.accept())  # the 确认导入 question
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "importer")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav a[href='/admin/import']")
        await page.click(f"a[href='/admin/import/{site.id}']")
        await page.set_input_files("#file", str(bad))
        await page.click("button:has-text('上传并预览')")
        await page.wait_for_selector("[data-problems]")
        row = page.locator("tr[data-problem]")
        assert await row.count() == 1
        assert "12 位数字" in await row.inner_text() and "仪表\t3\t表号/地址" in (
            await row.inner_text()
        )
        assert await page.locator("text=确认导入").count() == 0
        await page.screenshot(path=str(ARTEFACTS / "import-error.png"), full_page=True)
        await page.click("a.btn:has-text('重新上传')")
        await page.set_input_files("#file", str(good))
        await page.click("button:has-text('上传并预览')")
        await page.wait_for_selector("text=检查通过")
        assert await page.inner_text("[data-count='rooms']") == "6"
        await page.screenshot(path=str(ARTEFACTS / "import-preview.png"), full_page=True)
        await page.click("button:has-text('确认导入')")
        await page.wait_for_selector("[data-imported]")
        await page.screenshot(path=str(ARTEFACTS / "import-done.png"), full_page=True)
        assert errors == []
    assert await Room.all().count() == 6 and await Meter.all().count() == 6
