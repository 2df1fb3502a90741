"""Readings left `pending` (stored, not billed: a process killed between ingest and billing,
a controller killed after a 点抄) are billed by the collector's periodic sweep, not only at
start-up; `shuidian ledger check` lists readings pending longer than a threshold."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.cli import _check_pending
from server.metering.models import BillingStatus, Meter, Reading, ReadingSource
from server.metering.reading import Reading as Registers
from server.metering.service.readings import IncomingReading, ingest, pending_before
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park
from tests.workers.helpers import until
from workers.collector import Collector
from workers.registry import DriverRegistry


def gateway_meter(park: Park) -> Meter:
    """A meter behind an MQTT gateway: the collector never polls it without a link."""
    return next(
        m for m in park.meters.values() if m.protocol == P.MQTT_GATEWAY and m.billing == "platform"
    )


async def leave_pending(park: Park, meter: Meter, hours: int) -> Reading:
    """Ingest a baseline and a reading an hour later, without billing: the second waits."""
    now = park.now()
    for h, total in ((hours + 1, "100"), (hours, "101.5")):
        item = IncomingReading(
            meter.id, Registers(now - timedelta(hours=h), Decimal(total)), ReadingSource.GATEWAY
        )
        await ingest([item], now=now)
    row = await Reading.filter(meter_id=meter.id).order_by("-taken_at").first()
    assert row is not None and row.billing == BillingStatus.PENDING
    return row


async def test_a_running_collector_bills_a_pending_reading_by_its_sweep(park: Park) -> None:
    meter = gateway_meter(park)
    registry = DriverRegistry(clock=park.now, timeout=0.3)
    collector = Collector(registry, clock=park.now, pending_sweep=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop, tick=0.02))
    try:
        await until(lambda: collector._site_rounds != {})  # running: past its start-up sweep
        row = await leave_pending(park, meter, hours=2)

        async def billed() -> bool:
            await row.refresh_from_db()
            return row.billing == BillingStatus.BILLED

        await until(billed)
    finally:
        stop.set()
        await task
        await registry.close()
    assert Decimal(row.energy) == Decimal("1.5") * meter.multiplier


async def test_ledger_check_lists_readings_pending_too_long(
    park: Park, capsys: pytest.CaptureFixture[str]
) -> None:
    meter = gateway_meter(park)
    row = await leave_pending(park, meter, hours=3)
    await asyncio.sleep(0.01)  # stored strictly before the check's cut-off
    soon = datetime.now(UTC) + timedelta(minutes=1)
    assert [r.id for r in await pending_before(soon)] == [row.id]
    assert await _check_pending(0.001) == 1
    out = capsys.readouterr().out
    assert f"reading {row.id}: meter {meter.id}" in out
    assert await _check_pending(3600) == 0  # younger than an hour: the sweep's business

    collector = Collector(DriverRegistry(clock=park.now), clock=park.now, pending_sweep=0.001)
    assert await collector.sweep_pending() == (1, 0)
    assert await _check_pending(0.001) == 0
