"""Batch operations (批量操作) against the running simulator and controller, in Debian's
Chromium (headless, Playwright): an operator picks a floor on the new-batch form and trips
it now, and watches every meter of the floor reach 已确认 with 继电器断开 on the batch page
as the simulated meters answer (the meters of the other floor are left alone); then schedules
a 合闸 of the same floor for later, the controller is stopped and a new one started before
the batch is due (a worker restart), and the new controller runs it when its time comes.
The new controller's clock is set past the batch's time instead of the test waiting for it.
Screenshot batches.png (the finished trip, copied to admin/docs/). Runs once, in the
PostgreSQL run."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page

from server.audit.models import OperationLog
from server.core.settings import Settings
from server.metering.models import BatchStatus, Meter, MeterBatch
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import create_building, create_floor, create_room
from tests.workers.conftest import Park, make_config, register
from workers.controller import Controller
from workers.registry import DriverRegistry
from workers.sim.run import Simulation

pytestmark = browser_only  # PostgreSQL run, with Chromium

WIRED = (MeterProtocol.DLT645, MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)


@contextlib.asynccontextmanager
async def controller_worker(
    park: Park, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> AsyncIterator[None]:
    """The controller worker's loop over the simulator's sockets; leaving it is a stop."""
    registry = DriverRegistry(clock=park.now, timeout=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(Controller(registry, clock=clock).run(stop, interval=0.2))
    try:
        yield
    finally:
        stop.set()
        await task
        await registry.close()


def _wired(park: Park) -> list[Meter]:
    """Unprotected electricity meters on wired buses (DL/T 645 and Modbus), several buses."""
    return [
        m
        for address, m in park.meters.items()
        if m.protocol in WIRED
        and park.sim.park.meters[address].kind is MeterKind.ELECTRICITY
        and not park.sim.park.meters[address].protected
    ]


async def _create(
    page: Page, url: str, floor_id: int, action: str, title: str, later: str = ""
) -> int:
    """Fill the new-batch form for a floor and submit it (confirming); the batch's id."""
    await page.goto(f"{url}/admin/batches/new")
    await page.select_option("#place", f"f:{floor_id}")
    await page.select_option("#action", action)
    await page.fill("#title", title)
    if later:
        await page.check("#when-later")
        await page.fill("input[name=run_at]", later)
    await page.click("button:text-is('创建批量操作')")
    await page.wait_for_url(re.compile(r"/admin/batches/\d+$"))
    return int(page.url.rsplit("/", 1)[-1])


async def _finished(page: Page) -> None:
    """Wait until the batch page (polled by htmx) shows the batch done."""
    await page.wait_for_selector("#batch-live[data-status='done']", timeout=15_000)


async def _results(page: Page) -> dict[str, tuple[str, str]]:
    rows = await page.query_selector_all("#batch-live tr[data-meter]")
    out = {}
    for row in rows:
        cells = await row.query_selector_all("td")
        out[await row.get_attribute("data-meter") or ""] = (
            (await cells[3].inner_text()).strip(),
            (await cells[4].inner_text()).strip(),
        )
    return out


async def test_a_floor_tripped_now_and_closed_later_across_a_controller_restart(
    admin_app: AdminApp, settings: Settings, mqtt_broker: tuple[str, int]
) -> None:
    sim = Simulation(make_config(20, mqtt_broker, start=datetime.now(UTC)))
    await sim.start()
    try:
        park = await register(sim)
        wired = _wired(park)
        dlt = [m for m in wired if m.protocol == MeterProtocol.DLT645]
        modbus = [m for m in wired if m.protocol != MeterProtocol.DLT645]
        floor_meters = dlt[:3] + modbus[:3]
        elsewhere = [m for m in wired if m not in floor_meters][:2]
        assert len({m.gateway_id for m in floor_meters}) > 1 and len(elsewhere) == 2
        building = await create_building(park.site, name="一号楼")
        floor, other = await create_floor(building, name="3层"), await create_floor(building)
        for n, m in enumerate([*floor_meters, *elsewhere]):
            room = await create_room(floor if m in floor_meters else other, name=f"30{n}")
            await Meter.filter(id=m.id).update(room_id=room.id)
        org = await Organisation.get(id=park.site.organisation_id)  # type: ignore[attr-defined]
        await create_staff("ops", StaffRole.OPERATOR, org)
        addresses = sorted(m.address for m in floor_meters)
        async with chromium() as browser:
            page, errors = await watched_page(browser)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(f"{admin_app.url}/admin/login")
            await page.fill("#username", "ops")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/admin/")

            async with controller_worker(park):
                trip = await _create(page, admin_app.url, floor.id, "trip", "一号楼 3层 检修停电")
                await _finished(page)
                results = await _results(page)
                assert sorted(results) == addresses
                assert set(results.values()) == {("已确认", "继电器断开")}
                assert "已结束 6 / 6" in await page.inner_text("[data-field='progress']")
                await page.screenshot(path=str(ARTEFACTS / "batches.png"), full_page=True)
                for m in floor_meters:
                    assert sim.park.meters[m.address].relay is RelayState.OPEN
                for m in elsewhere:
                    assert sim.park.meters[m.address].relay is RelayState.CLOSED

                # 合闸 of the same floor in ten minutes; the running controller leaves it
                due = datetime.now(settings.tz).replace(second=0, microsecond=0)
                due += timedelta(minutes=10)
                close = await _create(
                    page, admin_app.url, floor.id, "close", "一号楼 3层 检修后送电",
                    due.strftime("%Y-%m-%dT%H:%M"),
                )  # fmt: skip
                assert await page.inner_text("[data-field='batch-status']") == "待执行"
                await asyncio.sleep(0.5)  # a few of the controller's passes
            # the controller is stopped; the batch waits in the database, and a new
            # controller (its clock past the batch's time) runs it
            batch = await MeterBatch.get(id=close)
            assert batch.status is BatchStatus.SCHEDULED and batch.run_at == due
            ahead = timedelta(minutes=11)
            async with controller_worker(park, clock=lambda: datetime.now(UTC) + ahead):
                await _finished(page)
                results = await _results(page)
                assert sorted(results) == addresses
                assert set(results.values()) == {("已确认", "继电器闭合")}
            for m in floor_meters:
                assert sim.park.meters[m.address].relay is RelayState.CLOSED
            await page.goto(f"{admin_app.url}/admin/batches")
            listed = await page.inner_text("main")
            assert listed.count("已完成") >= 2
            assert errors == []
        for batch_id in (trip, close):
            logged = await OperationLog.filter(
                target_type="meter_batch", target_id=str(batch_id)
            ).values_list("action", flat=True)
            assert sorted(logged) == ["batch.create", "batch.done", "batch.queue", "batch.release"]
    finally:
        await sim.stop()
