"""In Debian's Chromium: finance defines a fee item (property fee, ¥3.50/m², deducted), runs
November in preview (nothing posted) then for real, and finds the per-account lines, the
wallet debited and a second run skipping what was charged. Screenshot property.png."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from server.accounts.models import Account
from server.ledger import Channel, recharge
from server.ledger.models import LedgerTransaction
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_organisation,
    create_room,
    create_site,
)

pytestmark = browser_only
TZ = ZoneInfo("Asia/Shanghai")


async def test_define_a_fee_item_then_preview_and_post_the_month(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    floor = await create_floor(await create_building(site, name="1号楼"), name="3F")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    tenants = []
    for n, (name, area) in enumerate([("星火科技", "120.00"), ("蓝海贸易", "56.30")]):
        room = await create_room(floor, name=f"30{n + 1}", area_m2=Decimal(area))
        opened = datetime(2026, 11, 17 if n else 1, 9, tzinfo=TZ)
        account = await create_account(room, site, tenant_name=name, opened_at=opened)
        await recharge(account.id, Channel.CASH, 200_000, key=f"open{n}", actor="staff:0")
        tenants.append(account)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda d: d.accept())
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "boss")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=物业计费")
        await page.wait_for_url("**/admin/fees")
        form = page.locator("#new-fee-item")
        await form.locator("#name").fill("物业管理费")
        await form.locator("#kind").select_option("property_fee")
        await form.locator("#basis").select_option("area")
        await form.locator("#amount").fill("3.50")
        await form.locator("button[type=submit]").click()
        await page.wait_for_url("**/admin/fees/*")
        await page.goto(f"{admin_app.url}/admin/runs")
        await page.fill("#month", "2026-11")
        posted_before = await LedgerTransaction.all().count()
        await page.click("button >> text=试算")
        await page.wait_for_url("**/admin/runs/*")
        lines = await page.inner_text("#run-lines")
        # 120 m² × 3.50 = 420.00; 56.30 m² × 3.50 = 197.05 × 14/30 = 91.96 (moved in the 17th)
        assert "¥420.00" in lines and "¥91.96" in lines and "14/30" in lines and "试算" in lines
        assert await LedgerTransaction.all().count() == posted_before
        await page.click("text=月度计费")
        await page.fill("#month", "2026-11")
        await page.click("button >> text=正式计费")
        await page.wait_for_url("**/admin/runs/*")
        assert "已入账" in await page.inner_text("#run-lines")
        await page.screenshot(path=str(ARTEFACTS / "property.png"), full_page=True)
        await page.click("text=月度计费")
        await page.fill("#month", "2026-11")
        await page.click("button >> text=正式计费")
        await page.wait_for_url("**/admin/runs/*")
        assert "此前已入账" in await page.inner_text("#run-lines")
        assert errors == []
    wallets = await Account.filter(id__in=[t.id for t in tenants]).order_by("id")
    assert [a.balance_fen for a in wallets] == [200_000 - 42_000, 200_000 - 9_196]
