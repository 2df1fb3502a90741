"""In Chromium (same setup as test_browser.py): an operator finds a room by its tenant's name
on room monitoring (/admin/monitor), opens it and sees the live panel load on the room page
(balance, days left, live values, the 30-day chart and its table). Screenshots under the test
artefacts (monitor.png, room-detail.png) for a person to look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import DailyUsage, LiveValues, Meter
from server.metering.vocabulary import RelayState
from server.places.models import Room
from server.staff.models import StaffRole
from server.staff.service.monitor import local_today
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.admin.test_monitor import a_park
from tests.factories import create_account, create_meter

pytestmark = browser_only  # Chromium present, PostgreSQL run only

SHOPS = ("便利店", "茶饮店", "快餐店", "设计工作室", "科技公司", "面包房", "药店", "书店")


async def test_find_a_room_by_tenant_and_open_its_detail(admin_app: AdminApp) -> None:
    park = await a_park()
    now, today = datetime.now(UTC), local_today()
    floor_id = park.rooms["normal"].floor_id  # type: ignore[attr-defined]
    for i in range(14):  # more neighbours, so the tiles look like a floor
        room = await Room.create(floor_id=floor_id, name=f"1{i + 10}")
        account = await create_account(room, park.site, tenant_name=f"{room.name}{SHOPS[i % 8]}")
        meter = await create_meter(
            account, online=True, relay_state=RelayState.CLOSED, last_reading_at=now
        )
        await ledger.recharge(account.id, Channel.WECHAT, 8_000 + 2_500 * i, key=f"b:{i}",
                              actor="tenant:b")  # fmt: skip
        await DailyUsage.create(
            meter=meter, account=account, day=today, quantity_e4=40_000 + 9_000 * i,
            amount_fen=300 + 70 * i, updated_at=now,
        )  # fmt: skip
    meter = await Meter.get(room_id=park.rooms["normal"].id)
    await Meter.filter(id=meter.id).update(last_reading_at=now)
    for back in range(1, 30):  # the month behind today's 12.5 kWh
        await DailyUsage.create(
            meter=meter, account_id=meter.account_id, day=today - timedelta(days=back),
            quantity_e4=90_000 + (back * 37_000) % 80_000, amount_fen=600 + (back * 53) % 500,
            updated_at=now,
        )  # fmt: skip
    await LiveValues.create(
        meter=meter, read_at=now, total="4821.3300", relay_state=RelayState.CLOSED,
        instant_at=now, voltage="229.6", current="4.12", power="0.905", power_factor="0.95",
        updated_at=now,
    )  # fmt: skip
    await create_staff("ops", StaffRole.OPERATOR, await park.site.organisation, sites=[park.site])
    async with chromium() as browser:
        page, errors = await watched_page(browser)
        await page.goto(f"{admin_app.url}/admin/login")
        await page.fill("#username", "ops")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/admin/")
        await page.click("nav >> text=监控")
        await page.wait_for_url("**/admin/monitor")
        assert await page.locator(".room-tile").count() == 20
        assert await page.locator(".room-tile[data-state='tripped']").count() == 1
        await page.screenshot(path=str(ARTEFACTS / "monitor.png"), full_page=True)

        await page.fill("input[name=q]", "正常便利")
        await page.click("button:has-text('查询')")
        await page.wait_for_url("**/admin/monitor?*")
        assert await page.locator(".room-tile").count() == 1
        await page.click(".room-tile")
        await page.wait_for_url(f"**/admin/rooms/{park.rooms['normal'].id}")
        live = page.locator("#room-live")
        await live.wait_for()
        text = await live.inner_text()
        assert "正常便利店" in text and "¥100.00" in text and "40.0 天" in text
        assert "229.6" in text and "0.905" in text
        await page.locator("#room-live [data-chart='usage'] svg").wait_for()
        assert await page.locator("#room-live tbody tr").count() >= 30
        await page.screenshot(path=str(ARTEFACTS / "room-detail.png"), full_page=True)
        assert errors == []
