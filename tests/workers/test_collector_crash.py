"""A collector killed mid-round loses at most what is in flight: each bus's readings are
stored when that bus is done, not when the whole round is (they used to be held in memory
until every bus had finished, so a crash lost the round)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from server.metering.models import Gateway, GatewayKind, Meter, Reading
from tests.workers.conftest import Park
from tests.workers.helpers import until
from workers.collector import Collector
from workers.registry import DriverRegistry


async def black_hole() -> asyncio.Server:
    """A bus that accepts the connection and never answers: its exchange stays in flight."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass

    return await asyncio.start_server(swallow, "127.0.0.1", 0)


async def test_a_round_killed_while_one_bus_hangs_keeps_every_finished_bus(park: Park) -> None:
    wired = [g for g in await Gateway.filter(site_id=park.site.id) if g.kind != GatewayKind.MQTT]
    assert len(wired) >= 2
    hole = await black_hole()
    stuck = wired[0]
    await Gateway.filter(id=stuck.id).update(port=hole.sockets[0].getsockname()[1])
    others = await Meter.filter(gateway_id__in=[g.id for g in wired[1:]]).values_list(
        "id", flat=True
    )
    registry = DriverRegistry(clock=park.now, timeout=60)  # the stuck exchange outlives the test
    collector = Collector(registry, clock=park.now)
    park.sim.park.clock.jump(timedelta(minutes=15))
    round_ = asyncio.create_task(collector.poll_round())
    try:

        async def stored() -> bool:
            n = await Reading.filter(meter_id__in=list(others)).count()
            return n == len(others)

        await until(stored)
        assert not round_.done()  # the stuck bus is still waiting for its first answer
        round_.cancel()  # the process dies here
        with contextlib.suppress(asyncio.CancelledError):
            await round_
    finally:
        hole.close()
        await registry.close()
    stuck_meters = await Meter.filter(gateway_id=stuck.id).values_list("id", flat=True)
    assert await Reading.filter(meter_id__in=list(stuck_meters)).count() == 0
    assert await Reading.filter(meter_id__in=list(others)).count() == len(others)
