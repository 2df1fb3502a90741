"""The collector's MQTT session is persistent: the broker keeps gateway messages while the
collector is down, and a message is acknowledged only once its readings are stored, so a
collector killed between receiving and storing gets it again. Every reading is stored once.

A private Mosquitto with persistence on a free port (the shared broker is untouched)."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.metering.models import Meter, Reading
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park, make_config, register
from tests.workers.helpers import until
from tests.workers.test_broker_restart import (  # noqa: F401  (persist_dir: a fixture)
    Broker,
    persist_dir,
    persistent_broker,
)
from workers.collector import Collector
from workers.mqtt import GatewayLink
from workers.registry import DriverRegistry
from workers.sim.run import Simulation

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")


@pytest.fixture
async def broker(persist_dir: Path) -> AsyncIterator[Broker]:  # noqa: F811
    async with persistent_broker(persist_dir) as b:
        yield b


@contextlib.asynccontextmanager
async def collecting(park: Park, client_id: str, **kw: int) -> AsyncIterator[Collector]:
    """A collector on a persistent session, as `shuidian worker collector` runs it."""
    registry = DriverRegistry(clock=park.now, timeout=0.3)
    collector = Collector(registry, clock=park.now, **kw)
    host, port = park.sim.config.mqtt_url.removeprefix("mqtt://").split(":")  # type: ignore[union-attr]
    link = GatewayLink(
        host, int(port), prefix=park.prefix, on_data=collector.on_data, retry=0.2,
        client_id=client_id, persistent=True,
    )  # fmt: skip
    collector.take_receipts = link.take_unacked
    async with link:
        await until(link.connected.is_set)
        yield collector
    await registry.close()


async def publish_round(park: Park) -> None:
    park.sim.park.clock.jump(timedelta(minutes=15))
    for gw in park.sim.gateways:
        await gw.collect()


async def counts(park: Park) -> list[int]:
    ids = await Meter.filter(site_id=park.site.id, protocol=P.MQTT_GATEWAY).values_list(
        "id", flat=True
    )
    return sorted({await Reading.filter(meter_id=m).count() for m in ids})


async def test_messages_sent_while_the_collector_is_down_or_before_it_stored_them_arrive_once(
    db: None, broker: Broker
) -> None:
    sim = Simulation(make_config(20, ("127.0.0.1", broker.port)))
    await sim.start()
    try:
        park = await register(sim)
        n = sum(len(gw.meters) for gw in sim.gateways)
        client_id = f"test-collector-{uuid.uuid4().hex[:8]}"
        async with collecting(park, client_id) as c:
            await publish_round(park)
            await until(lambda: c.received >= n)
            await c.flush()
        assert await counts(park) == [1]

        for _ in range(2):  # the collector is down: the broker keeps these for its session
            await publish_round(park)
        async with collecting(park, client_id, flush_messages=1000, flush_every=10**6) as c:
            await until(lambda: c.received >= 2 * n)
            # killed before storing them: nothing flushed, nothing acknowledged
        assert await counts(park) == [1]

        async with collecting(park, client_id) as c:
            await until(lambda: c.received >= 2 * n)  # redelivered
            await c.flush()
            assert await counts(park) == [3]
            await publish_round(park)  # a fresh round after them: nothing else comes first
            await until(lambda: c.received >= 3 * n)
            await c.flush()
            assert c.received == 3 * n
        assert await counts(park) == [4]

        async with collecting(park, client_id) as c:  # all acknowledged: nothing redelivered
            await publish_round(park)
            await until(lambda: c.received >= n)
            await c.flush()
            assert c.received == n
        assert await counts(park) == [5]
    finally:
        await sim.stop()
