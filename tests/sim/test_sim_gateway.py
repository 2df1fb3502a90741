"""SimGateway against real Mosquitto (127.0.0.1:1883): readings, outage replay, faults, commands."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workers.meters.base import (
    MeterKind,
    MeterRejected,
    MeterUnreachable,
    RechargeRefused,
    RelayAction,
    RelayState,
)
from workers.meters.gateway.client import GatewayClient
from workers.meters.gateway.driver import GatewayDriver
from workers.meters.gateway.schemas import Source
from workers.sim.clock import ManualClock, SimClock
from workers.sim.gateway import SimGateway
from workers.sim.meter import SimMeter
from workers.sim.profiles import LoadProfile

T0 = datetime(2025, 7, 1, 1, 0, tzinfo=UTC)
WAIT = 10.0  # a guard against hanging, not a timing assertion


def meters(n: int = 3) -> dict[str, SimMeter]:
    out = {}
    for i in range(1, n + 1):
        m = SimMeter(
            address=f"{i:012d}",
            kind=MeterKind.ELECTRICITY,
            profile=LoadProfile.APARTMENT,
            rated_kw=Decimal(4),
            meter_billing=True,
            total=Decimal("100.00"),
            remaining_fen=20_000,
            purchase_count=3,
            seed=i,
        )
        m.advance(T0)
        out[m.address] = m
    return out


class Rig:
    def __init__(self, n_meters: int = 3, batch: int = 50) -> None:
        self.prefix = f"test-{uuid.uuid4().hex[:10]}/"
        self.gw_id = "gw" + uuid.uuid4().hex[:8]
        self.real = ManualClock()
        self.clock = SimClock(T0, speed=60, real=self.real)
        self.meters = meters(n_meters)
        self.data: asyncio.Queue = asyncio.Queue()
        self.status: asyncio.Queue = asyncio.Queue()
        self.gateway = SimGateway(
            self.gw_id, self.meters, self.clock, prefix=self.prefix, batch=batch, seed=1
        )
        self.client = GatewayClient(
            prefix=self.prefix, on_data=self._on_data, on_status=self._on_status
        )

    async def _on_data(self, gw, msg):
        await self.data.put((gw, msg))

    async def _on_status(self, gw, status):
        await self.status.put((gw, status))

    async def next_data(self):
        return await asyncio.wait_for(self.data.get(), WAIT)

    async def next_status(self):
        return await asyncio.wait_for(self.status.get(), WAIT)

    def tick(self, minutes: int) -> None:
        self.real.tick(minutes)  # speed 60: one real second is a simulated minute
        for m in self.meters.values():
            m.advance(self.clock.now())


@pytest.fixture
async def rig():
    r = Rig()
    async with r.client, r.gateway:
        yield r


async def test_realtime_readings_arrive(rig):
    gw, status = await rig.next_status()
    assert gw == rig.gw_id and status.online
    rig.tick(90)
    await rig.gateway.collect()
    gw, msg = await rig.next_data()
    assert gw == rig.gw_id and msg.src is Source.REALTIME
    assert msg.ts_collect == T0 + timedelta(minutes=90)
    by_addr = {m.addr: m for m in msg.meters}
    for addr, sim in rig.meters.items():
        assert by_addr[addr].total == sim.total > Decimal("100.00")
        assert by_addr[addr].bands == sim.bands
        assert by_addr[addr].remaining == sim.remaining_fen


async def test_instant_values_ride_in_every_nth_round(rig):
    rig.gateway.instant_every = 2
    found = []
    for _ in range(3):
        rig.tick(15)
        await rig.gateway.collect()
        msg = (await rig.next_data())[1]
        found.append([m.has_instant() for m in msg.meters])
    assert found == [[True] * 3, [False] * 3, [True] * 3]
    assert msg.meters[0].u is not None and msg.meters[0].pf is not None


async def test_link_down_buffers_then_replays_as_history_in_order(rig):
    await rig.gateway.collect()
    first = (await rig.next_data())[1]
    await rig.next_status()
    await rig.gateway.set_link(False)
    assert not (await rig.next_status())[1].online
    stamps = []
    for _ in range(3):
        rig.tick(15)
        stamps.append(rig.clock.now())
        await rig.gateway.collect()
    assert rig.data.empty() and len(rig.gateway.buffer) == 3
    rig.tick(60)
    await rig.gateway.set_link(True)
    assert (await rig.next_status())[1].online
    replay = [(await rig.next_data())[1] for _ in range(3)]
    assert [m.src for m in replay] == [Source.HISTORY] * 3
    assert [m.ts_collect for m in replay] == stamps
    assert [m.seq for m in replay] == [first.seq + 1, first.seq + 2, first.seq + 3]
    assert all(m.ts_send == rig.clock.now() > m.ts_collect for m in replay)
    totals = [m.meters[0].total for m in replay]
    assert totals == sorted(totals)


async def test_duplicates_and_reordering_when_asked(rig):
    rig.gateway.duplicates = True
    await rig.gateway.collect()
    a, b = (await rig.next_data())[1], (await rig.next_data())[1]
    assert a == b  # same msgid and seq: a redelivery
    rig.gateway.duplicates = False
    await rig.gateway.set_link(False)
    for _ in range(6):
        rig.tick(10)
        await rig.gateway.collect()
    rig.gateway.reorder = True
    await rig.gateway.set_link(True)
    replay = [(await rig.next_data())[1] for _ in range(6)]
    seqs = [m.seq for m in replay]
    assert sorted(seqs) == list(range(a.seq + 1, a.seq + 7))
    assert seqs != sorted(seqs)  # seed 1 shuffles this batch
    # ts_collect still follows seq, so the platform can put them back in order.
    ordered = sorted(replay, key=lambda m: m.seq)
    assert [m.ts_collect for m in ordered] == sorted(m.ts_collect for m in replay)


async def test_commands_are_acked_and_change_the_meter(rig):
    addr = "000000000002"
    driver = GatewayDriver(rig.client, rig.gw_id, addr, timeout=WAIT)
    status = await driver.relay(RelayAction.TRIP)
    assert status.relay is RelayState.OPEN and rig.meters[addr].relay is RelayState.OPEN
    assert (await driver.relay(RelayAction.CLOSE)).relay is RelayState.CLOSED
    money = await driver.write_recharge(5_000, 4)
    assert money.purchase_count == 4 and money.remaining_fen == rig.meters[addr].remaining_fen
    with pytest.raises(RechargeRefused):
        await driver.write_recharge(7_000, 4)
    snap = await driver.read_snapshot()
    assert snap.reading.total == rig.meters[addr].total and snap.money == money
    await driver.write_prices({2: Decimal("1.0100")})
    assert rig.meters[addr].prices[2] == Decimal("1.0100")
    await driver.write_alarm_amounts(4_000, 1_000)
    assert rig.meters[addr].alarm_1_fen == 4_000
    with pytest.raises(MeterRejected):
        await GatewayDriver(rig.client, rig.gw_id, "999999999999", timeout=WAIT).read_status()


async def test_dropped_command_times_out_as_unreachable(rig):
    rig.gateway.drop_commands = True
    driver = GatewayDriver(rig.client, rig.gw_id, "000000000001", timeout=0.5)
    with pytest.raises(MeterUnreachable):
        await driver.relay(RelayAction.TRIP)
    assert rig.meters["000000000001"].relay is RelayState.CLOSED


async def test_expired_command_is_not_executed(rig):
    driver = GatewayDriver(
        rig.client, rig.gw_id, "000000000001", timeout=WAIT, ttl=timedelta(seconds=-1)
    )
    with pytest.raises(MeterUnreachable, match="expired"):
        await driver.relay(RelayAction.TRIP)
    assert rig.meters["000000000001"].relay is RelayState.CLOSED


async def test_batches_split_a_large_gateway():
    r = Rig(n_meters=7, batch=3)
    async with r.client, r.gateway:
        await r.gateway.collect()
        sizes = [len((await r.next_data())[1].meters) for _ in range(3)]
    assert sizes == [3, 3, 1]


async def test_bad_command_is_acked_as_such(rig):
    acks: asyncio.Queue = asyncio.Queue()

    async def on_ack(gw, ack):
        await acks.put(ack)

    rig.client.on_ack = on_ack
    cmd = '{"v":1,"cmd_id":"bad-1","expires_at":"2099-01-01T00:00:00Z","addr":"1","op":"fly"}'
    await rig.client._mqtt.publish(f"{rig.prefix}gw/{rig.gw_id}/down/cmd", cmd, qos=1)
    ack = await asyncio.wait_for(acks.get(), WAIT)
    assert (ack.cmd_id, ack.ok, ack.error) == ("bad-1", False, "bad_command")
