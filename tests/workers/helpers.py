"""Driving the simulated park and the workers step by step (no wall-clock timing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

from server.billing.models import UsageChargeRow
from server.metering.models import (
    TERMINAL,
    BillingStatus,
    Meter,
    MeterBilling,
    MeterCommand,
    Reading,
)
from tests.workers.conftest import Park
from workers.collector import Collector
from workers.controller import Controller
from workers.mqtt import GatewayLink
from workers.registry import DriverRegistry


async def until(cond: Callable[[], Awaitable[bool] | bool], limit: float = 15.0) -> None:
    """Wait for an event that arrives over a socket; `limit` only stops a hung test."""
    async with asyncio.timeout(limit):
        while True:
            result = cond()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.01)


class Workers:
    """Collector + controller + gateway link against one park, all on the park's clock."""

    def __init__(self, park: Park) -> None:
        self.park = park
        self.registry = DriverRegistry(clock=park.now, timeout=0.3)
        self.collector = Collector(self.registry, clock=park.now)
        self.controller = Controller(self.registry, clock=park.now)
        host, port = park.sim.config.mqtt_url.removeprefix("mqtt://").split(":")  # type: ignore[union-attr]
        self.link = GatewayLink(
            host,
            int(port),
            prefix=park.prefix,
            on_data=self.collector.on_data,
            on_status=self.collector.on_status,
            retry=0.2,
        )
        self.registry.gateway_client = self.link  # type: ignore[assignment]

    async def __aenter__(self) -> Workers:
        await self.link.__aenter__()
        await until(self.link.connected.is_set)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.link.__aexit__(*exc)
        await self.registry.close()

    async def gateways_collect(self) -> None:
        """Every linked-up simulated gateway reports once; wait for the readings to land."""
        expected = self.collector.received + sum(
            len(gw.meters) for gw in self.park.sim.gateways if gw.link_up
        )
        for gw in self.park.sim.gateways:
            await gw.collect()
        await until(lambda: self.collector.received >= expected)
        await self.collector.flush()

    async def step(self, minutes: int = 15) -> None:
        self.park.sim.park.clock.jump(timedelta(minutes=minutes))
        await self.collector.poll_round()
        await self.gateways_collect()
        await self.controller.run_once()


async def assert_books_close(park: Park) -> None:
    """Every command terminal; every billable reading billed once; bills add up to the
    registers' advance; the platform's relay states are the simulator's."""
    open_cmds = await MeterCommand.exclude(status__in=list(TERMINAL)).count()
    assert open_cmds == 0
    for address, meter in park.meters.items():
        await meter.refresh_from_db()
        sm = park.sim.park.meters[address]
        assert meter.relay_state == sm.relay, address
        if meter.billing != MeterBilling.PLATFORM:
            continue
        rows = await Reading.filter(meter_id=meter.id).order_by("taken_at")
        assert not [r for r in rows if r.billing in (BillingStatus.PENDING, BillingStatus.FAILED)]
        billed = [r for r in rows if r.billing == BillingStatus.BILLED]
        charges = await UsageChargeRow.filter(meter_id=meter.id)
        assert sorted(c.reading_at for c in charges) == [r.taken_at for r in billed]
        used = sum((Decimal(c.quantity) for c in charges), Decimal(0))
        advance = (Decimal(rows[-1].total) - Decimal(rows[0].total)) * meter.multiplier
        assert used == advance, address


async def platform_meters(park: Park) -> list[Meter]:
    return [m for m in park.meters.values() if m.billing == MeterBilling.PLATFORM]
