"""`Simulation.plan()` (what `shuidian seed` registers) is the directory `start()` builds for
the same options — polled meters and MQTT gateway meters — without opening a port; and the
simulator's clock can be followed by another process (SHUIDIAN_SIM_CLOCK)."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from workers.meters.base import MeterProtocol
from workers.registry import clock_from_spec
from workers.sim.clock import ManualClock, SimClock
from workers.sim.run import SimConfig, Simulation


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


async def test_the_plan_is_the_directory_start_builds(mqtt_broker: tuple[str, int]) -> None:
    dlt, modbus, rtu, water = _free_ports(4)
    config = SimConfig(
        meters=60, seed=7, start=datetime(2025, 7, 1, 2, 0, tzinfo=UTC), speed=60,
        dlt645_port=dlt, modbus_port=modbus, modbus_rtu_port=rtu, cjt188_port=water,
        mqtt_url=f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}",
        mqtt_prefix=f"plan-{uuid.uuid4().hex[:6]}/", gateway_size=5, gateway_period=3600,
    )  # fmt: skip
    planned = Simulation(config).plan()
    running = Simulation(config)
    await running.start()
    try:
        assert planned == running.directory
        assert len(planned) == 60
        assert any(e.protocol is MeterProtocol.MQTT_GATEWAY for e in planned.values())
    finally:
        await running.stop()


def test_a_plan_needs_fixed_ports() -> None:
    with pytest.raises(ValueError, match="fixed ports"):
        Simulation(dataclasses.replace(SimConfig(meters=10), dlt645_port=0)).plan()


def test_another_process_follows_a_sped_up_simulator_clock() -> None:
    start = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    real = ManualClock(1_000.0)
    sim = SimClock(start, speed=60, real=real)
    assert sim.spec() == f"{start.isoformat()}/1000.000/60"
    follow = clock_from_spec(sim.spec(), wall=real)  # the other process's wall clock
    real.tick(3600)  # an hour of wall time is 60 simulated hours, in both processes
    assert follow() == sim.now() == start + timedelta(hours=60)
