"""Remote control from the room page against the running simulator and controller, in Debian's
Chromium (headless, Playwright): an operator trips a room's meter (分闸), watches the command
go from queued to 已确认 and the relay to 断开 as the simulated meter answers, closes it again,
turns 保电 on; then the account's balance is driven to zero and the alarm pass runs: the
protected meter is skipped and stays closed, while an unprotected one in the same pass is
tripped. Screenshots control-acked.png and control-protect.png in data/test-artefacts/admin/
(or $SHUIDIAN_TEST_ARTEFACTS). Runs once, in the PostgreSQL run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from playwright.async_api import Page

from server.audit.models import OperationLog
from server.ledger import service as ledger
from server.ledger.posting import ChargeType
from server.metering.models import (
    TERMINAL,
    CommandOp,
    Meter,
    MeterBilling,
    MeterCommand,
    MeteringPolicy,
)
from server.metering.service.alarm_service import evaluate_accounts
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium, watched_page
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.workers.conftest import Park, account_of, make_config, register
from workers.controller import Controller
from workers.registry import DriverRegistry
from workers.sim.run import Simulation

pytestmark = browser_only  # PostgreSQL run, with Chromium

NEWEST = "tr[data-command] [data-field='status']"  # the newest command's state, in a card
ANY_TIME = {"night_start": None, "night_end": None, "weekends": False, "holidays": False,
            "unknown_year": "weekdays"}  # fmt: skip  # no no-cut window: only 保电 may defer


@contextlib.asynccontextmanager
async def running_controller(park: Park) -> AsyncIterator[None]:
    """The controller worker's loop over the simulator's sockets, as in production."""
    registry = DriverRegistry(clock=park.now, timeout=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(Controller(registry).run(stop, interval=0.2))
    try:
        yield
    finally:
        stop.set()
        await task
        await registry.close()


def _plain_meters(park: Park) -> list[Meter]:
    return [
        m
        for address, m in park.meters.items()
        if m.protocol == MeterProtocol.DLT645
        and m.billing == MeterBilling.PLATFORM
        and park.sim.park.meters[address].kind is MeterKind.ELECTRICITY
        and not park.sim.park.meters[address].protected
    ]


async def _press(page: Page, meter_id: int, label: str) -> None:
    """Press a button of the meter's card (the confirmation is accepted) and wait for the
    command to be shown finished."""
    card = f"#control-meter-{meter_id}"
    await page.click(f"{card} button:text-is('{label}')")
    await page.wait_for_url(f"**/admin/rooms/*#control-meter-{meter_id}")
    await page.wait_for_selector(f"{card}[data-in-flight='no'] tr[data-command]", timeout=20_000)


async def _finished(command_ids: list[int]) -> None:
    for _ in range(200):
        rows = await MeterCommand.filter(id__in=command_ids).values_list("status", flat=True)
        if all(s in TERMINAL for s in rows):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"commands {command_ids} still open")


async def test_trip_close_and_protect_a_meter_from_the_room_page(
    admin_app: AdminApp, mqtt_broker: tuple[str, int]
) -> None:
    sim = Simulation(make_config(8, mqtt_broker, start=datetime.now(UTC)))
    await sim.start()
    try:
        park = await register(sim)
        mine, other = _plain_meters(park)[:2]
        sm = sim.park.meters[mine.address]
        await MeteringPolicy.create(site=park.site, alarm={"no_cut": ANY_TIME})
        org = await Organisation.get(id=park.site.organisation_id)  # type: ignore[attr-defined]
        await create_staff("ops", StaffRole.OPERATOR, org)
        room_id = (await account_of(mine)).room_id  # type: ignore[attr-defined]
        await Meter.filter(id=mine.id).update(room_id=room_id)  # installed in its account's room
        card = f"#control-meter-{mine.id}"
        async with running_controller(park), chromium() as browser:
            page, errors = await watched_page(browser)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(f"{admin_app.url}/admin/login")
            await page.fill("#username", "ops")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/admin/")
            await page.goto(f"{admin_app.url}/admin/rooms/{room_id}")
            await page.wait_for_selector(card)
            assert "未知" in await page.inner_text(f"{card} [data-field='relay']")  # never read
            await _press(page, mine.id, "点抄")  # read it first: the relay as the meter says
            assert await page.inner_text(f"{card} {NEWEST}") == "已确认"
            assert "合闸" in await page.inner_text(f"{card} [data-field='relay']")

            await _press(page, mine.id, "分闸")
            assert (
                await page.inner_text(f"{card} tr[data-command] [data-field='status']") == "已确认"
            )
            assert "断开" in await page.inner_text(f"{card} [data-field='relay']")
            assert sm.relay is RelayState.OPEN  # what the simulated meter did
            await page.screenshot(path=str(ARTEFACTS / "control-acked.png"), full_page=True)

            await _press(page, mine.id, "合闸")
            assert (
                await page.inner_text(f"{card} tr[data-command] [data-field='status']") == "已确认"
            )
            assert "合闸" in await page.inner_text(f"{card} [data-field='relay']")
            assert sm.relay is RelayState.CLOSED

            await _press(page, mine.id, "保电开")
            assert (
                await page.inner_text(f"{card} tr[data-command] [data-field='status']") == "已确认"
            )
            assert await page.inner_text(f"{card} [data-field='protected']") == "保电中"
            assert sm.protected

            for m in (mine, other):  # use up both wallets, then the alarm/trip pass
                await ledger.charge(
                    m.account_id, ChargeType.ELECTRICITY, 10_000, key=f"use-{m.id}",
                    actor="system:test", memo="用完余额",
                )  # fmt: skip
            await evaluate_accounts([mine.account_id, other.account_id], now=datetime.now(UTC))
            trips = await MeterCommand.filter(op=CommandOp.TRIP, actor="system:alarms")
            assert [c.meter_id for c in trips] == [other.id]  # the protected one is skipped
            await _finished([c.id for c in trips])
            assert sim.park.meters[other.address].relay is RelayState.OPEN  # the pass did trip
            await page.reload()
            await page.wait_for_selector(f"{card}[data-in-flight='no']")
            assert "合闸" in await page.inner_text(f"{card} [data-field='relay']")
            assert await page.is_visible(f"{card} [data-field='protect-note']")
            assert sm.relay is RelayState.CLOSED
            await page.screenshot(path=str(ARTEFACTS / "control-protect.png"), full_page=True)
            assert errors == []
        deferred = await OperationLog.get(action="meter.trip_deferred", target_id=str(mine.id))
        assert "保电" in deferred.reason
        staff_ops = (
            await OperationLog.filter(
                target_type="meter", target_id=str(mine.id), actor__startswith="staff:"
            )
            .order_by("id")
            .values_list("action", flat=True)
        )
        assert staff_ops == ["command.read", "command.trip", "command.close", "command.protect_on"]
    finally:
        await sim.stop()
