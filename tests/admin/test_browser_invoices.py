"""In Chromium: a finance clerk opens 发票 from the nav, sees an issued invoice (with its
number), one the platform failed (with the platform's cause) and a request waiting; filters
to the requests, opens one and approves it (confirming the dialog). Screenshot invoices.png
in the artefacts dir (the one in admin/docs/invoices.png)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.invoices.sandbox import FakeNuonuo
from server.invoices.service.issuing import approve, issue_round
from server.invoices.service.requests import request_invoice
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_account, create_organisation, create_site
from tests.invoices.fixtures import company, paid_online, set_up_invoicing

pytestmark = browser_only


async def test_the_invoice_list_and_an_approval(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    await set_up_invoicing(org.id)
    site = await create_site(org, name="科技园")
    await create_staff("fin", StaffRole.FINANCE, org)
    accounts = [
        await create_account(site=site, tenant_name=name, number=f"H00020{n}")
        for n, name in enumerate(("星火科技", "蓝海贸易", "青禾餐饮"))
    ]
    invoices = [
        await request_invoice(a.id, company(), [await paid_online(a, fen)], actor="tenant:o")
        for a, fen in zip(accounts, (128_800, 56_000, 9_900), strict=True)
    ]
    async with FakeNuonuo(pending_polls=0) as fake:
        fake.fail_orders[invoices[1].number] = "购方名称与税号不匹配"
        now = datetime.now(UTC)
        for invoice in invoices[:2]:
            await approve(invoice.id, actor="staff:1", now=now)
        platform = fake.client()
        await issue_round(platform, now=now)
        await issue_round(platform, now=now + timedelta(minutes=1))
        await platform.aclose()
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda d: d.accept())
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "fin")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=发票")
        await page.wait_for_url("**/admin/invoices")
        table = await page.inner_text("main table")
        assert "已开具" in table and "购方名称与税号不匹配" in table and "待审核" in table
        await page.screenshot(path=str(ARTEFACTS / "invoices.png"), full_page=True)
        await page.select_option("#status", "requested")
        await page.click("button >> text=查询")
        await page.wait_for_url("**status=requested**")
        assert "星火科技" not in await page.inner_text("main table")
        await page.click("main table a")
        await page.click("button >> text=审核通过并开具")
        await page.wait_for_url("**done=approved")
        assert "待开具" in await page.inner_text("main")
        assert errors == []
