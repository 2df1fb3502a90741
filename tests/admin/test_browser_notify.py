"""In Debian's Chromium: the delivery log shows the park's messages (a failed SMS with the
provider's code, a call waiting for the end of quiet hours, one delivered); the head-office
admin filters to the failures, resends one (confirming the dialog) and finds it queued anew.
Screenshot notify-log.png in the artefacts dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise import connections

from server.notify.models import Channel, Message, MessageState
from server.notify.service.outbox import Event, enqueue
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_account, create_organisation, create_site

pytestmark = browser_only
NIGHT = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai


async def test_the_delivery_log_and_a_resend(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    good = await create_account(site=site, phone="13800138000", tenant_name="星火科技")
    bad = await create_account(site=site, phone="13900139000", tenant_name="蓝海贸易")
    conn = connections.get("default")
    for account in (good, bad):
        trip = Event(account.id, "alarm.trip", f"trip:{account.id}", "alarm.trip", {}, 0)
        await enqueue(conn, [trip], now=NIGHT)
    await Message.filter(recipient="13800138000", channel=Channel.SMS).update(
        state=MessageState.DELIVERED, attempts=1, provider="aliyun",
        sent_at=NIGHT, delivered_at=NIGHT + timedelta(seconds=4),
    )  # fmt: skip
    await Message.filter(recipient="13900139000", channel=Channel.SMS).update(
        state=MessageState.FAILED, attempts=1, provider="aliyun",
        error_code="isv.MOBILE_NUMBER_ILLEGAL", error_reason="非法手机号",
    )  # fmt: skip
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        page.on("dialog", lambda d: d.accept())
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "boss")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=消息")
        await page.wait_for_url("**/admin/notify")
        table = await page.inner_text("main table")
        assert "isv.MOBILE_NUMBER_ILLEGAL" in table and "已送达" in table and "语音电话" in table
        await page.select_option("#state", "failed")
        await page.click("button >> text=查询")
        await page.wait_for_url("**state=failed**")
        assert "13800138000" not in await page.inner_text("main table")
        await page.click("button >> text=重发")
        await page.wait_for_url("**resent=**")
        assert "已重新排队发送" in await page.inner_text("main")
        await page.screenshot(path=str(ARTEFACTS / "notify-log.png"), full_page=True)
        assert errors == []
    again = await Message.filter(recipient="13900139000", channel=Channel.SMS).order_by("id")
    assert [m.state for m in again] == [MessageState.FAILED, MessageState.QUEUED]
