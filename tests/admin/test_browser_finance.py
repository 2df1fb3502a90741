"""In Chromium: a finance clerk records a cash counter recharge and prints its receipt, finds
it in the order overview and in the day's income; then asks a counter refund above the
approval threshold, which a second person approves on /admin/refunds, and the overview shows
it refunded. Screenshots: finance-receipt.png, finance-income.png, finance-orders.png (the
one in admin/docs/finance.png)."""

from __future__ import annotations

from playwright.async_api import Page

from server.ledger import service as ledger
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_account, create_organisation, create_site

pytestmark = browser_only  # Chromium present, PostgreSQL run only


async def _sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(f"{url}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")


async def test_counter_recharge_to_overview_and_income_and_an_approved_refund(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="南山物业")
    site = await create_site(org, name="南山科技园")
    account = await create_account(site=site, number="A101", tenant_name="A101便利店")
    await create_staff("zhou_cashier", StaffRole.FINANCE, org)
    await create_staff("wang_finance", StaffRole.FINANCE, org)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda dialog: dialog.accept())  # every data-confirm: yes
        await _sign_in(page, admin_app.url, "zhou_cashier")
        await page.click("nav >> text=财务")
        await page.click("text=收费台")
        await page.wait_for_url("**/admin/finance/counter")
        await page.fill("#pay-account", "A101")
        await page.fill("#pay-amount", "1500")
        await page.fill("#pay-reference", "SJ20261206001")
        await page.fill("#pay-payer", "李老板")
        await page.click("button:has-text('收款并打印收据')")
        await page.wait_for_url("**/admin/finance/receipts/*")
        receipt = await page.inner_text("#receipt")
        assert "人民币壹仟伍佰元整" in receipt and "SJ20261206001" in receipt
        await page.screenshot(path=str(ARTEFACTS / "finance-receipt.png"), full_page=True)

        await page.goto(f"{admin_app.url}/admin/finance?account=A101")
        assert "SJ20261206001" in await page.inner_text("#orders")
        await page.click("text=收入概况")
        await page.wait_for_url("**/admin/finance/income")
        await page.wait_for_selector("[data-finance-chart='channels'] svg")
        assert "¥1,500.00" in await page.inner_text("#money-in")
        assert "¥1,500.00" in await page.inner_text("#income-channels tbody tr:last-child")
        await page.screenshot(path=str(ARTEFACTS / "finance-income.png"), full_page=True)

        await page.click("text=收费台")
        await page.fill("#refund-account", "A101")
        await page.fill("#refund-amount", "600")
        await page.fill("#refund-reason", "多缴退回")
        await page.click("button:has-text('申请退款')")
        await page.wait_for_url("**/admin/refunds")
        assert await ledger.balance_of(f"wallet:{account.id}") == 90_000  # held

        second = await browser.new_context(viewport={"width": 1280, "height": 900})
        finance = await second.new_page()
        finance.on("dialog", lambda dialog: dialog.accept())
        finance.on("pageerror", lambda exc: errors.append(str(exc)))
        await _sign_in(finance, admin_app.url, "wang_finance")
        await finance.click("nav >> text=退款审批")
        await finance.click("table >> button:has-text('批准')")
        await finance.wait_for_url("**/admin/refunds")
        await second.close()

        await page.goto(f"{admin_app.url}/admin/finance")
        orders = await page.inner_text("#orders")
        assert "已退款" in orders and "SJ20261206001" in orders
        assert "¥900.00" in await page.inner_text("#order-totals")
        await page.screenshot(path=str(ARTEFACTS / "finance-orders.png"), full_page=True)
        assert errors == []
