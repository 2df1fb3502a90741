"""Register a DL/T 645 meter on the running simulator and see its first reading arrive, in
Debian's Chromium (headless, Playwright): a site admin adds the bus the simulator's DL/T 645
channel listens on, registers a meter of it that the platform does not know yet in an
occupied room, a collector reads it over TCP, and the reloaded meter page shows the reading
the simulated meter gave. Screenshots in data/test-artefacts/admin/ (or
$SHUIDIAN_TEST_ARTEFACTS). Runs once, in the PostgreSQL run."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.async_api import Page

from server.metering.models import Meter, Reading
from server.metering.vocabulary import MeterProtocol
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_account, create_organisation, create_site
from tests.workers.conftest import make_config
from workers.collector import Collector
from workers.registry import DriverRegistry
from workers.sim.run import Simulation

pytestmark = browser_only  # PostgreSQL run, with Chromium


async def _sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(f"{url}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")


async def test_register_a_meter_on_the_simulator_and_see_its_first_reading(
    admin_app: AdminApp, mqtt_broker: tuple[str, int]
) -> None:
    sim = Simulation(make_config(8, mqtt_broker, start=datetime.now(UTC)))
    await sim.start()
    registry = DriverRegistry(clock=sim.park.clock.now, timeout=1.0)
    try:
        address = next(a for a, ep in sim.directory.items() if ep.protocol is MeterProtocol.DLT645)
        channel = sim.directory[address]
        org = await create_organisation(name="示范物业集团")
        site = await create_site(org, name="科技园")
        account = await create_account(site=site, tenant_name="深圳市星河咖啡有限公司")
        await create_staff("keeper", StaffRole.SITE_ADMIN, org, sites=[site])
        async with chromium() as browser:
            page, errors = await watched_page(browser, failed_loads=False)
            await _sign_in(page, admin_app.url, "keeper")

            await page.goto(f"{admin_app.url}/admin/gateways/new")
            await page.fill("#code", "DTU-A1")
            await page.fill("#name", "A 座配电房")
            await page.select_option("#kind", "tcp")
            await page.fill("#host", channel.host)
            await page.fill("#port", str(channel.port))
            await page.click("form[action='/admin/gateways/new'] button[type=submit]")
            await page.wait_for_url("**/admin/gateways/*")
            assert "DTU-A1" in await page.inner_text("h1")
            await page.screenshot(path=str(ARTEFACTS / "gateway.png"), full_page=True)

            await page.click("text=在此网关登记仪表")
            await page.wait_for_url("**/admin/meters/new?gateway=*")
            await page.fill("#address", address)
            await page.select_option("#room_id", str(account.room_id))  # type: ignore[attr-defined]
            await page.fill("#model", "DDSY1352")
            await page.screenshot(path=str(ARTEFACTS / "meter-register.png"), full_page=True)
            await page.click("form[action='/admin/meters/new'] button[type=submit]")
            await page.wait_for_url("**/admin/meters/*")
            assert await page.inner_text("[data-field='last-reading']") == "尚无读数"
            meter = await Meter.get(address=address)
            assert meter.account_id == account.id

            collector = Collector(registry, clock=sim.park.clock.now)
            assert (await collector.poll_round()).read == 1  # a real round over TCP
            stored = await Reading.get(meter_id=meter.id)
            assert stored.total == sim.park.meters[address].total  # what the meter said

            await page.reload()
            shown = await page.inner_text("[data-field='last-reading']")
            assert shown.split()[0] == str(stored.total)
            assert "定时抄表" in await page.inner_text("[data-field='last-reading-at']")
            assert await page.inner_text("[data-field='online']") == "在线"
            await page.screenshot(path=str(ARTEFACTS / "meter-first-reading.png"), full_page=True)
            await page.goto(f"{admin_app.url}/admin/meters")
            assert address in await page.inner_text("table")
            await page.screenshot(path=str(ARTEFACTS / "meters.png"), full_page=True)
            assert errors == []
    finally:
        await registry.close()
        await sim.stop()
