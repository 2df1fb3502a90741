"""SimPark: deterministic build, a sensible mix, and a run loop that advances every meter."""

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from workers.meters.base import MeterKind
from workers.sim.clock import ManualClock, SimClock
from workers.sim.park import SimPark
from workers.sim.profiles import SHANGHAI, LoadProfile

T0 = datetime(2024, 7, 15, 9, 0, tzinfo=SHANGHAI)


def test_build_is_deterministic_and_mixed():
    a = SimPark.build(100, seed=7, start=T0, speed=60)
    b = SimPark.build(100, seed=7, start=T0, speed=60)
    assert list(a.meters) == list(b.meters)
    assert [m.total for m in a.meters.values()] == [m.total for m in b.meters.values()]
    kinds = [m.kind for m in a.meters.values()]
    assert kinds.count(MeterKind.WATER) == 10
    profiles = {m.profile for m in a.meters.values()}
    assert LoadProfile.FACTORY in profiles and LoadProfile.SHOP in profiles
    billing = sum(m.meter_billing for m in a.meters.values())
    assert 10 <= billing <= 50
    assert any(m.protected for m in a.meters.values())
    assert all(len(addr) == 12 for addr in a.meters)
    for m in a.meters.values():
        if m.kind is MeterKind.ELECTRICITY:
            assert sum(m.bands.values()) == m.total


def test_advance_all_follows_the_clock():
    park = SimPark.build(20, seed=1, start=T0, speed=3600)
    real = ManualClock()
    park.clock = SimClock(T0, speed=3600, real=real)
    before = {a: m.total for a, m in park.meters.items()}
    real.tick(3)  # three simulated hours of a weekday morning
    park.advance_all()
    grew = [a for a, m in park.meters.items() if m.total > before[a]]
    assert len(grew) >= 15
    assert all(m.last_advance == T0 + timedelta(hours=3) for m in park.meters.values())


async def test_run_stops_on_event():
    park = SimPark.build(5, seed=2, start=T0, speed=1000)
    stop = asyncio.Event()
    task = asyncio.create_task(park.run(0.01, stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert all(m.last_advance > T0 for m in park.meters.values())
    assert all(m.total >= Decimal(0) for m in park.meters.values())


async def test_every_park_meter_reads_back_over_its_protocol():
    """Values of every simulated meter fit the wire formats (no BadValue on any register)."""
    from workers.meters.cjt188.driver import Cjt188Driver, cjt188_hub
    from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub
    from workers.sim.cjt188_server import Cjt188Server
    from workers.sim.dlt645_server import Dlt645Server

    park = SimPark.build(40, seed=11, start=T0, speed=3600)
    real = ManualClock()
    park.clock = SimClock(T0, speed=3600, real=real)
    real.tick(8)  # a working day
    park.advance_all()
    electric = Dlt645Server(park.meters, park.clock)
    water = Cjt188Server(park.meters, park.clock)
    hubs = [
        dlt645_hub("127.0.0.1", await electric.start(), timeout=1.0, gap=0.0),
        cjt188_hub("127.0.0.1", await water.start(), timeout=1.0, gap=0.0),
    ]
    try:
        for address, m in park.meters.items():
            if m.kind is MeterKind.WATER:
                snap = await Cjt188Driver(hubs[1], address).read_snapshot()
            else:
                snap = await Dlt645Driver(hubs[0], address).read_snapshot()
            assert snap.reading == m.reading(snap.reading.taken_at) and snap.status == m.status()
    finally:
        for hub in hubs:
            await hub.close()
        await electric.close()
        await water.close()
