"""What staff change in the admin reaches a running collector without a restart: a meter
registered on a bus is polled at the next round, an edited gateway is read where it now
points, a removed meter is no longer read; an MQTT gateway registered while the collector
is subscribed is heard, and a meter replaced at the same address receives the readings.
Over the simulator's real sockets and the real Mosquitto."""

from __future__ import annotations

from datetime import timedelta

from server.metering.models import Meter, Reading, ReadingSource
from server.metering.service.devices.gateways import GatewayInput, create_gateway, edit_gateway
from server.metering.service.devices.meters import MeterInput, register_meter, remove_meter
from server.metering.vocabulary import MeterProtocol
from tests.factories import create_site
from tests.workers.helpers import until
from workers.collector import Collector
from workers.mqtt import GatewayLink
from workers.registry import DriverRegistry
from workers.sim.run import Simulation

ACTOR = "staff:1"


def _first(sim: Simulation, protocol: MeterProtocol) -> str:
    return next(a for a, ep in sim.directory.items() if ep.protocol is protocol)


async def test_a_meter_registered_on_a_bus_is_polled_at_the_next_round(
    db: None, sim: Simulation
) -> None:
    address = _first(sim, MeterProtocol.DLT645)
    ep = sim.directory[address]
    site = await create_site()
    bus = {"code": "DTU-1", "kind": "tcp", "host": ep.host, "port": str(ep.port)}
    gw = await create_gateway([site.id], site.id, GatewayInput.of(bus), actor=ACTOR)
    registry = DriverRegistry(clock=sim.park.clock.now, timeout=0.3)
    collector = Collector(registry, clock=sim.park.clock.now)
    try:
        assert (await collector.poll_round()).read == 0  # nothing registered yet
        form = {"kind": "electricity", "protocol": "dlt645", "address": address,
                "gateway_id": str(gw)}  # fmt: skip
        meter_id = await register_meter([site.id], MeterInput.of(form), actor=ACTOR)
        assert (await collector.poll_round()).read == 1
        reading = await Reading.get(meter_id=meter_id)
        assert reading.source == ReadingSource.POLL and (await Meter.get(id=meter_id)).online
        moved = GatewayInput.of({**bus, "port": "1"})  # the wrong port: the next round misses
        await edit_gateway([site.id], gw, moved, actor=ACTOR)
        assert (await collector.poll_round()).missed == 1
        await remove_meter([site.id], meter_id, actor=ACTOR)
        report = await collector.poll_round()
        assert (report.read, report.missed) == (0, 0)
    finally:
        await registry.close()


async def test_an_mqtt_gateway_registered_while_subscribed_is_heard(
    db: None, sim: Simulation
) -> None:
    simgw = sim.gateways[0]
    address = next(iter(simgw.meters))
    site = await create_site()
    registry = DriverRegistry(clock=sim.park.clock.now, timeout=0.3)
    collector = Collector(registry, clock=sim.park.clock.now, meter_refresh=0)
    host, port = sim.config.mqtt_url.removeprefix("mqtt://").split(":")  # type: ignore[union-attr]
    link = GatewayLink(
        host, int(port), prefix=sim.config.mqtt_prefix, on_data=collector.on_data, retry=0.2
    )
    async with link:
        await until(link.connected.is_set)
        gw = await create_gateway(  # after the collector subscribed
            [site.id], site.id, GatewayInput.of({"code": simgw.gw_id, "kind": "mqtt"}),
            actor=ACTOR,
        )  # fmt: skip
        form = {"kind": "electricity", "protocol": "mqtt_gateway", "address": address,
                "gateway_id": str(gw)}  # fmt: skip
        first = await register_meter([site.id], MeterInput.of(form), actor=ACTOR)
        await simgw.collect()
        await until(lambda: collector.received >= 1)
        await collector.flush()
        assert await Reading.filter(meter_id=first, source=ReadingSource.GATEWAY).count() == 1
        await remove_meter([site.id], first, actor=ACTOR)  # 换表 at the same address
        second = await register_meter([site.id], MeterInput.of(form), actor=ACTOR)
        sim.park.clock.jump(timedelta(minutes=15))
        await simgw.collect()
        await until(lambda: collector.received >= 2)
        await collector.flush()
        assert await Reading.filter(meter_id=second).count() == 1
        assert await Reading.filter(meter_id=first).count() == 1
    await registry.close()
