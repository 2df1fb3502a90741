"""A price change reaches the meter-billed meters (server/tariffs/push.py): at the version's
effective time the scheduler's tick creates one set-price batch for the meter-billed meters
on the plan, the controller writes the prices into the simulated meters over DL/T 645 and
Modbus, and a re-run creates no second batch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from server.core.paging import Paging
from server.metering.models import BatchStatus, Meter, MeterBatch, MeterBilling
from server.metering.service import batches
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.tariffs.models import TariffPlan, TariffVersion
from server.tariffs.service import schedule_change
from tests.workers.conftest import Park
from tests.workers.helpers import Workers
from workers.registry import DriverRegistry
from workers.scheduler import Scheduler


async def test_a_scheduled_price_change_is_written_into_the_meter_billed_meters(
    park: Park,
) -> None:
    # The simulated MQTT gateways judge expiry by the wall clock (the park's stands still in
    # March 2026): their meters are billed by the platform here, the wired ones by the meter.
    await Meter.filter(site_id=park.site.id, protocol=MeterProtocol.MQTT_GATEWAY).update(
        billing=MeterBilling.PLATFORM
    )
    billed = {
        a for a, m in park.meters.items()
        if m.kind is MeterKind.ELECTRICITY and m.billing is MeterBilling.METER
        and m.protocol is not MeterProtocol.MQTT_GATEWAY
    }  # fmt: skip
    assert billed
    plan = await TariffPlan.get(site_id=park.site.id, name="电价")
    at = park.now() + timedelta(hours=1)
    version = await schedule_change(
        plan.id, {"kind": "flat", "unit": "kWh", "price": "0.7321"}, effective_from=at,
        now=park.now(), actor="staff:1",
    )  # fmt: skip
    scheduler = Scheduler(DriverRegistry(), clock=park.now)
    tick = scheduler.handlers()["scheduler.tick"]
    await tick(None)  # type: ignore[arg-type]  # before its time: nothing
    assert not await MeterBatch.exists()
    park.sim.park.clock.jump(timedelta(hours=1, seconds=1))
    await tick(None)  # type: ignore[arg-type]
    await tick(None)  # type: ignore[arg-type]  # a second tick (or scheduler): no second batch
    await version.refresh_from_db()
    [batch] = await MeterBatch.all()
    assert version.batch_id == batch.id and "电价" in batch.title
    async with Workers(park) as w:
        for _ in range(10):
            await w.controller.run_once()
            if await batches.settle(park.now()):
                break
    site = [park.site.id]
    view = await batches.batch_view(site, batch.id)
    assert view.status is BatchStatus.DONE and view.counts == {"acked": len(billed)}
    rows = (await batches.batch_items(site, batch.id, Paging.everything())).items
    assert {r.address for r in rows} == billed
    price = Decimal("0.7321")
    for address, sm in park.sim.park.meters.items():
        expected = address in billed
        assert (set(sm.prices.values()) == {price}) is expected, address
    assert await TariffVersion.filter(batch_id=batch.id).count() == 1
