"""Dlt645Driver against the simulator's DL/T 645 server over real sockets on 127.0.0.1."""

import asyncio
from datetime import datetime
from decimal import Decimal

import pytest

from workers.meters.base import (
    MeterDriver,
    MeterKind,
    MeterRejected,
    MeterUnreachable,
    RechargeRefused,
    RelayAction,
    RelayState,
)
from workers.meters.dlt645.driver import Dlt645Driver, broadcast_time, dlt645_hub, read_address
from workers.meters.dlt645.framer import ERR_AUTH, ERR_OTHER
from workers.meters.hub import CorruptReply
from workers.sim.clock import ManualClock, SimClock
from workers.sim.dlt645_server import Dlt645Server, Faults
from workers.sim.meter import SimMeter
from workers.sim.profiles import SHANGHAI, LoadProfile

A, B, C = "000000000161", "000000000162", "000000000163"
T0 = datetime(2024, 7, 15, 10, 0, tzinfo=SHANGHAI)


def make_meters() -> tuple[dict[str, SimMeter], SimClock, ManualClock]:
    real = ManualClock()
    clock = SimClock(T0, speed=60, real=real)
    meters = {
        "000000000161": SimMeter(
            address="000000000161",
            kind=MeterKind.ELECTRICITY,
            profile=LoadProfile.SHOP,
            rated_kw=Decimal("8"),
            meter_billing=True,
            total=Decimal("1234.56"),
            remaining_fen=1800,
            purchase_count=3,
        ),
        "000000000162": SimMeter(
            address="000000000162",
            kind=MeterKind.ELECTRICITY,
            profile=LoadProfile.OFFICE,
            rated_kw=Decimal("12"),
            meter_billing=False,
        ),
        "000000000163": SimMeter(
            address="000000000163",
            kind=MeterKind.ELECTRICITY,
            profile=LoadProfile.APARTMENT,
            rated_kw=Decimal("4"),
            meter_billing=True,
            remaining_fen=50_000,
        ),
    }
    for m in meters.values():
        m.advance(T0)
    real.tick(60)  # one simulated hour of use before the first read
    return meters, clock, real


@pytest.fixture
async def bus():
    meters, clock, real = make_meters()
    server = Dlt645Server(meters, clock, seed=5)
    port = await server.start()
    hub = dlt645_hub("127.0.0.1", port, timeout=0.3, gap=0.0)
    yield meters, server, hub, real
    await hub.close()
    await server.close()


def driver(hub, address, **kw) -> Dlt645Driver:
    return Dlt645Driver(hub, address, **kw)


async def test_reads_match_the_simulated_meter(bus):
    meters, _, hub, _ = bus
    d = driver(hub, A)
    assert isinstance(d, MeterDriver)
    energy = await d.read_energy()
    m = meters[A]
    assert m.total > Decimal("1234.56")  # the hour of use was integrated before answering
    assert energy.total == m.total and energy.bands == m.bands
    instant = await d.read_instant()
    assert instant == m.instant()
    assert await d.read_money() == m.money()
    assert await d.read_status() == m.status()
    snap = await d.read_snapshot()
    expected = m.snapshot(snap.reading.taken_at)
    assert snap == expected


async def test_platform_billed_meter_has_no_money_in_snapshot(bus):
    meters, _, hub, _ = bus
    snap = await driver(hub, B).read_snapshot()
    assert snap.money is None and snap.status == meters[B].status()


async def test_trip_and_close_read_back(bus):
    meters, _, hub, _ = bus
    d = driver(hub, C)
    status = await d.relay(RelayAction.TRIP)
    assert status.relay is RelayState.OPEN and meters[C].relay is RelayState.OPEN
    status = await d.relay(RelayAction.CLOSE_ALLOWED)
    assert status.relay is RelayState.OPEN and meters[C].close_allowed_pending
    status = await d.relay(RelayAction.CLOSE)
    assert status.relay is RelayState.CLOSED and meters[C].relay is RelayState.CLOSED


async def test_protect_blocks_trip(bus):
    meters, _, hub, _ = bus
    d = driver(hub, C)
    assert (await d.relay(RelayAction.PROTECT_ON)).protected
    with pytest.raises(MeterRejected) as exc:
        await d.relay(RelayAction.TRIP)
    assert exc.value.code == ERR_OTHER
    assert meters[C].relay is RelayState.CLOSED
    assert not (await d.relay(RelayAction.PROTECT_OFF)).protected


async def test_recharge_duplicate_and_refusal(bus):
    meters, _, hub, _ = bus
    d = driver(hub, A)
    await d.read_money()  # the server advances the meter to "now" on the first request
    before = meters[A].remaining_fen
    first = await d.write_recharge(10_000, 4)
    assert first.purchase_count == 4 and first == meters[A].money()
    assert meters[A].remaining_fen == before + 10_000
    again = await d.write_recharge(10_000, 4)  # a retried command: no second credit
    assert again.purchase_count == 4 and meters[A].remaining_fen == before + 10_000
    with pytest.raises(RechargeRefused):
        await d.write_recharge(5_000, 4)
    with pytest.raises(RechargeRefused):
        await d.write_recharge(5_000, 9)
    assert meters[A].purchase_count == 4


async def test_writes_prices_and_alarm_amounts(bus):
    meters, _, hub, _ = bus
    d = driver(hub, A)
    await d.write_prices({1: Decimal("1.3012"), 4: Decimal("0.3")})
    assert meters[A].prices[1] == Decimal("1.3012") and meters[A].prices[4] == Decimal("0.3")
    await d.write_alarm_amounts(3000, 1000)
    assert (meters[A].alarm_1_fen, meters[A].alarm_2_fen) == (3000, 1000)


async def test_maximum_demand_of_this_and_the_previous_period(bus):
    meters, _, hub, real = bus
    d = driver(hub, A)
    before = await d.read_max_demand(previous=True)
    assert before.kw == 0 and before.at is None  # never settled in the simulation
    now = await d.read_max_demand()
    assert (now.kw, now.at) == (meters[A].demand_kw, meters[A].demand_at)
    assert now.at is not None and 0 < now.kw <= meters[A].rated_kw
    real.tick(60 * 24 * 17)  # 17 simulated days: into August, the meter settled on the 1st
    last = await d.read_max_demand(previous=True)
    assert last.at is not None and last.at.month == 7 and last.kw >= now.kw
    assert (last.kw, last.at) == (meters[A].last_demand_kw, meters[A].last_demand_at)
    august = await d.read_max_demand()
    assert august.at is not None and august.at.month == 8


async def test_wrong_password_is_rejected(bus):
    meters, _, hub, _ = bus
    with pytest.raises(MeterRejected) as exc:
        await driver(hub, A, password="02123456").relay(RelayAction.TRIP)
    assert exc.value.code == ERR_AUTH and meters[A].relay is RelayState.CLOSED


async def test_silence_and_unknown_address_are_unreachable(bus):
    meters, _, hub, _ = bus
    meters[A].online = False
    with pytest.raises(MeterUnreachable):
        await driver(hub, A).read_energy()
    with pytest.raises(MeterUnreachable):
        await driver(hub, "000000009999").read_energy()
    meters[A].online = True
    assert (await driver(hub, A).read_energy()).total == meters[A].total


async def test_bad_checksum_is_a_typed_error(bus):
    meters, server, hub, _ = bus
    server.meter_faults[A] = Faults(bad_checksum=True)
    with pytest.raises(CorruptReply):
        await driver(hub, A).read_money()
    assert (await driver(hub, B).read_energy()).total == meters[B].total


async def test_split_frames_and_random_preamble_still_parse(bus):
    meters, server, hub, _ = bus
    server.faults = Faults(split=True, random_preamble=True)
    d = driver(hub, A)
    for _ in range(3):
        assert (await d.read_energy()).total == meters[A].total


async def test_slow_reply_times_out_then_late_reply_is_skipped(bus):
    meters, server, hub, _ = bus
    server.meter_faults[A] = Faults(slow_seconds=0.5)
    d = driver(hub, A)
    with pytest.raises(MeterUnreachable):
        await d.read(0x00000000)
    del server.meter_faults[A]
    await asyncio.sleep(0.3)  # let the late reply arrive while nobody waits
    # The late reply is for DI 00000000; this read asks another DI and must not take it.
    assert await d.read_decimal(0x02010100) == meters[A].voltage


async def test_multi_frame_read(bus):
    meters, server, hub, _ = bus
    server.max_data = 9  # 20-byte energy block -> 4 frames
    energy = await driver(hub, A).read_energy()
    assert energy.total == meters[A].total and energy.bands == meters[A].bands


async def test_several_meters_share_one_channel(bus):
    meters, _, hub, _ = bus
    results = await asyncio.gather(*(driver(hub, a).read_energy() for a in (A, B, C) * 3))
    assert [r.total for r in results] == [meters[a].total for a in (A, B, C) * 3]


async def test_broadcast_time_and_read_address(bus):
    meters, server, hub, _ = bus
    await broadcast_time(hub, T0)
    with pytest.raises(MeterUnreachable):  # three meters would collide
        await read_address(hub)
    assert server.last_broadcast_time == T0  # handled before the later request
    for a in (B, C):
        del meters[a]
    assert await read_address(hub) == A


async def test_hub_reconnects_after_the_server_restarts(bus):
    meters, server, hub, _ = bus
    d = driver(hub, A)
    await d.read_energy()
    port = server.port
    await server.close()
    with pytest.raises(MeterUnreachable):
        await d.read_energy()
    server2 = Dlt645Server(meters, server.clock)
    await server2.start(port=port)
    try:
        assert (await d.read_energy()).total == meters[A].total
    finally:
        await server2.close()
