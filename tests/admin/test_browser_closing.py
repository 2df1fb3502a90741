"""In Chromium: a clerk closes an account from the room page with a counter refund above the
approval threshold; the account waits (销户中) until a second person, finance, approves the
refund on /admin/refunds; the settlement statement then shows the account closed.
Screenshots: closing-form.png, refunds.png, closing-statement.png."""

from __future__ import annotations

from playwright.async_api import Page

from server.accounts.models import Account, AccountStatus
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.admin.test_closing import a_tenant

pytestmark = browser_only  # Chromium present, PostgreSQL run only


async def _sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(f"{url}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")


async def test_close_with_a_counter_refund_approved_by_a_second_user(admin_app: AdminApp) -> None:
    account, meter = await a_tenant(80_000)
    org = await (await account.site).organisation  # type: ignore[attr-defined]
    await create_staff("li_clerk", StaffRole.SITE_ADMIN, org)
    await create_staff("wang_finance", StaffRole.FINANCE, org)
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda dialog: dialog.accept())  # every data-confirm: yes
        await _sign_in(page, admin_app.url, "li_clerk")
        await page.goto(f"{admin_app.url}/admin/rooms/{account.room_id}")  # type: ignore[attr-defined]
        await page.click("#closing-panel a[href$='/close']")
        await page.wait_for_url("**/close")
        await page.fill(f"#reading_{meter.id}", "1210.00")
        await page.fill("#payee_name", "张三")
        await page.screenshot(path=str(ARTEFACTS / "closing-form.png"), full_page=True)
        await page.click("button:has-text('结算并销户')")
        await page.wait_for_url("**/statement")
        assert "销户中" in await page.inner_text("main")
        assert (await Account.get(id=account.id)).status is AccountStatus.OPEN

        second = await browser.new_context(viewport={"width": 1280, "height": 900})
        finance = await second.new_page()
        finance.on("dialog", lambda dialog: dialog.accept())
        finance.on("pageerror", lambda exc: errors.append(str(exc)))
        await _sign_in(finance, admin_app.url, "wang_finance")
        await finance.click("nav >> text=退款审批")
        await finance.wait_for_url("**/admin/refunds")
        assert "退租商户" in await finance.inner_text("table")
        await finance.screenshot(path=str(ARTEFACTS / "refunds.png"), full_page=True)
        await finance.click("table >> button:has-text('批准')")
        await finance.wait_for_url("**/admin/refunds")
        assert "没有待审批的退款" in await finance.inner_text("table")
        await second.close()

        await page.reload()
        text = await page.inner_text("main")
        assert "已完成" in text and "已退款" in text and "1210.00" in text
        await page.screenshot(path=str(ARTEFACTS / "closing-statement.png"), full_page=True)
        assert errors == []
    assert (await Account.get(id=account.id)).status is AccountStatus.CLOSED
