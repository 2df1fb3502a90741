"""Cjt188Driver against the simulator's CJ/T 188 server over real sockets."""

from datetime import datetime
from decimal import Decimal

import pytest

from workers.meters.base import (
    MeterDriver,
    MeterKind,
    MeterRejected,
    MeterUnreachable,
    RelayAction,
    RelayState,
)
from workers.meters.cjt188.driver import Cjt188Driver, cjt188_hub
from workers.meters.cjt188.framer import DI_VALVE, WRITE
from workers.meters.hub import CorruptReply
from workers.sim.cjt188_server import ST_ERROR, Cjt188Server
from workers.sim.clock import ManualClock, SimClock
from workers.sim.dlt645_server import Faults
from workers.sim.meter import SimMeter
from workers.sim.profiles import SHANGHAI, LoadProfile

T0 = datetime(2024, 7, 15, 7, 0, tzinfo=SHANGHAI)
W1, W2 = "000000000171", "000000000172"


def water(address: str) -> SimMeter:
    return SimMeter(
        address=address,
        kind=MeterKind.WATER,
        profile=LoadProfile.WATER,
        rated_kw=Decimal("1.5"),
        meter_billing=False,
        total=Decimal("321.09"),
    )


@pytest.fixture
async def bus():
    real = ManualClock()
    clock = SimClock(T0, speed=60, real=real)
    meters = {a: water(a) for a in (W1, W2)}
    for m in meters.values():
        m.advance(T0)
    real.tick(120)  # two simulated morning hours
    server = Cjt188Server(meters, clock, seed=3)
    port = await server.start()
    hub = cjt188_hub("127.0.0.1", port, timeout=0.3, gap=0.0)
    yield meters, server, hub
    await hub.close()
    await server.close()


async def test_reads_match_the_simulated_meter(bus):
    meters, _, hub = bus
    d = Cjt188Driver(hub, W1)
    assert isinstance(d, MeterDriver)
    energy = await d.read_energy()
    assert energy.total == meters[W1].total and energy.total > Decimal("321.09")
    snap = await d.read_snapshot()
    assert snap.address == W1 and snap.reading.total == meters[W1].total
    assert snap.status.relay is RelayState.CLOSED and snap.money is None


async def test_valve_close_and_open_read_back(bus):
    meters, _, hub = bus
    d = Cjt188Driver(hub, W2)
    assert (await d.relay(RelayAction.TRIP)).relay is RelayState.OPEN
    assert meters[W2].relay is RelayState.OPEN and meters[W1].relay is RelayState.CLOSED
    frozen = meters[W2].total
    assert (await d.relay(RelayAction.CLOSE)).relay is RelayState.CLOSED
    assert meters[W2].total == frozen  # no flow while the valve was shut (clock stood still)


async def test_unsupported_operations_are_rejected(bus):
    _, _, hub = bus
    d = Cjt188Driver(hub, W1)
    with pytest.raises(MeterRejected):
        await d.relay(RelayAction.PROTECT_ON)
    with pytest.raises(MeterRejected):
        await d.write_recharge(100, 1)
    with pytest.raises(MeterRejected):
        await d.read_money()


async def test_faults(bus):
    meters, server, hub = bus
    d = Cjt188Driver(hub, W1)
    server.faults = Faults(split=True, random_preamble=True)
    assert (await d.read_energy()).total == meters[W1].total
    server.meter_faults[W1] = Faults(bad_checksum=True)
    with pytest.raises(CorruptReply):
        await d.read_energy()
    server.meter_faults[W1] = Faults(silence=True)
    with pytest.raises(MeterUnreachable):
        await d.read_status()
    with pytest.raises(MeterUnreachable):
        await Cjt188Driver(hub, "000000009999").read_energy()
    assert (await Cjt188Driver(hub, W2).read_energy()).total == meters[W2].total


async def test_bad_valve_command_gets_an_abnormal_reply(bus):
    meters, _, hub = bus
    with pytest.raises(MeterRejected) as exc:
        await Cjt188Driver(hub, W1).request(WRITE, DI_VALVE, b"\x12")
    assert exc.value.code == ST_ERROR and meters[W1].relay is RelayState.CLOSED
