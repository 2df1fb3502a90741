"""One owner per bus (PostgreSQL advisory locks, `workers.leases`): two collectors over one
park read every wired meter once per round between them, and when one dies its buses are
read by the other at its next round; two controllers execute every command once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from server.core.settings import Settings
from server.metering import service
from server.metering.models import (
    TERMINAL,
    CommandOp,
    CommandStatus,
    Gateway,
    GatewayKind,
    Meter,
    MeterCommand,
    Reading,
)
from server.metering.vocabulary import MeterKind
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park
from workers.collector import Collector
from workers.controller import Controller
from workers.leases import PgLeases
from workers.registry import DriverRegistry

pytestmark = pytest.mark.postgres


async def wired_counts(park: Park) -> Counter[int]:
    ids = (
        await Meter.filter(site_id=park.site.id)
        .exclude(protocol=P.MQTT_GATEWAY)
        .values_list("id", flat=True)
    )
    return Counter({m: await Reading.filter(meter_id=m).count() for m in ids})


async def test_two_collectors_share_the_buses_and_one_takes_over_when_the_other_dies(
    park: Park, settings: Settings
) -> None:
    wired = {g.code for g in await Gateway.filter(site_id=park.site.id)
             if g.kind != GatewayKind.MQTT}  # fmt: skip
    collectors = [
        Collector(DriverRegistry(clock=park.now, timeout=2), clock=park.now,
                  leases=PgLeases(settings.db_url, "collector"))
        for _ in range(2)
    ]  # fmt: skip
    a, b = collectors
    try:
        for c in collectors:
            await c.leases.join()
        for n in (1, 2):
            park.sim.park.clock.jump(timedelta(minutes=15))
            reports = [await c.poll_round() for c in collectors]
            read_a, read_b = [{r.bus for r in rep.buses} for rep in reports]
            assert read_a and read_b and not read_a & read_b  # shared, none read twice
            assert len(read_a | read_b) == len(wired)
            assert set((await wired_counts(park)).values()) == {n}

        await b.leases.close()  # b dies: PostgreSQL frees its locks with its session
        park.sim.park.clock.jump(timedelta(minutes=15))
        report = await a.poll_round()
        assert len(report.buses) == len(wired) and report.missed == 0
        assert set((await wired_counts(park)).values()) == {3}
    finally:
        for c in collectors:
            await c.leases.close()
            await c.registry.close()


async def test_two_controllers_execute_every_command_once(park: Park, settings: Settings) -> None:
    meters = [
        m for a, m in park.meters.items()
        if m.protocol != P.MQTT_GATEWAY and park.sim.park.meters[a].kind is MeterKind.ELECTRICITY
        and not park.sim.park.meters[a].protected
    ]  # fmt: skip
    assert len({m.gateway_id for m in meters}) >= 2
    commands = [
        await service.queue_command(m.id, CommandOp.TRIP, {}, actor="staff:9", reason="试跳",
                                    now=park.now())
        for m in meters
    ]  # fmt: skip
    executed: Counter[int] = Counter()
    by: dict[int, set[int]] = {0: set(), 1: set()}

    def hook(i: int):  # type: ignore[no-untyped-def]
        async def replied(cmd: MeterCommand) -> None:
            executed[cmd.id] += 1
            by[i].add(cmd.id)

        return replied

    controllers = [
        Controller(DriverRegistry(clock=park.now, timeout=0.3), clock=park.now, replied=hook(i),
                   leases=PgLeases(settings.db_url, "controller"))
        for i in range(2)
    ]  # fmt: skip
    try:
        for c in controllers:
            await c.leases.join()
        for _ in range(10):  # passes side by side until every command is done
            await asyncio.gather(*(c.run_once() for c in controllers))
            if not await MeterCommand.exclude(status__in=list(TERMINAL)).exists():
                break
    finally:
        for c in controllers:
            await c.leases.close()
            await c.registry.close()
    assert executed == Counter({c.id: 1 for c in commands})
    assert by[0] and by[1]  # both worked
    statuses = await MeterCommand.filter(id__in=[c.id for c in commands]).values_list(
        "status", flat=True
    )
    assert set(statuses) == {CommandStatus.ACKED}
