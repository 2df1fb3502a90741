"""In Debian's Chromium: finance defines a fee item (property fee, ¥3.50/m², deducted), runs
November in preview (nothing posted) then for real, and finds the per-account lines, the
wallet debited (what a small wallet cannot cover billed) and a second run skipping what was
charged; then edits the organisation's bill template, prints the bill (the toolbar hidden
by the print CSS) and downloads it as PDF, whose text is read back. Screenshots
property.png, print-template.png, print-bill.png."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

from pypdf import PdfReader

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
        wallet = 5_000 if n else 200_000
        await recharge(account.id, Channel.CASH, wallet, key=f"open{n}", actor="staff:0")
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

        # 91.96 due from a 50.00 wallet: 49.99 deducted (a fee never trips), 41.97 billed.
        await page.click("nav >> text=账单")
        await page.click("#bills >> text=蓝海贸易 >> xpath=.. >> a")
        await page.wait_for_url("**/admin/bills/*")
        number = (await page.inner_text("h1")).split()[1]
        await page.click("#bill-print")
        await page.wait_for_url("**/print")
        printing = page.url
        await page.click("#print-toolbar >> text=打印模板")
        await page.wait_for_url("**/admin/print-templates?*")
        source = await page.input_value("#source")
        await page.fill("#source", source.replace("{{ bill.kind_label }}", "物业费缴费通知单"))
        await page.click("button >> text=预览")
        preview = page.frame_locator("#print-preview")
        assert "物业费缴费通知单" in await preview.locator("h1").inner_text()
        await page.click("button >> text=保存")
        await page.wait_for_url("**saved=1")
        await page.screenshot(path=str(ARTEFACTS / "print-template.png"), full_page=True)
        await page.goto(printing)
        assert "¥41.97" in await page.inner_text("#bill")
        await page.screenshot(path=str(ARTEFACTS / "print-bill.png"), full_page=True)
        await page.emulate_media(media="print")
        assert not await page.is_visible("#print-toolbar")
        await page.emulate_media(media="screen")
        async with page.expect_download() as downloading:
            await page.click("#print-pdf")
        pdf = await (await downloading.value).path()
        text = "".join(p.extract_text() for p in PdfReader(BytesIO(pdf.read_bytes())).pages)
        assert "科技园 物业费缴费通知单" in text and number in text and "蓝海贸易" in text
        assert "¥41.97" in text and "人民币肆拾壹元玖角柒分" in text
        assert errors == []
    wallets = await Account.filter(id__in=[t.id for t in tenants]).order_by("id")
    assert [a.balance_fen for a in wallets] == [200_000 - 42_000, 1]
