"""ModbusDriver against the simulator's Modbus server over real sockets (TCP and RTU/TCP)."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from pymodbus.framer import FramerType

from workers.meters.base import (
    MeterDriver,
    MeterKind,
    MeterRejected,
    MeterUnreachable,
    RechargeRefused,
    RelayAction,
    RelayState,
)
from workers.meters.modbus.driver import ModbusBus, ModbusDriver
from workers.meters.modbus.maps import adf400l, ddsy1352, dtsy1352
from workers.sim.meter import SimMeter
from workers.sim.modbus_server import SimModbusServer, SimSlave
from workers.sim.profiles import LoadProfile

T0 = datetime(2025, 7, 1, 6, 30, tzinfo=UTC)


def make_meter(n: int, billing: bool = True, rated: str = "6") -> SimMeter:
    m = SimMeter(
        address=f"{n:012d}",
        kind=MeterKind.ELECTRICITY,
        profile=LoadProfile.SHOP,
        rated_kw=Decimal(rated),
        meter_billing=billing,
        total=Decimal("1234.56"),
        remaining_fen=50_000 if billing else 0,
        purchase_count=7 if billing else 0,
        seed=n,
    )
    m.advance(T0)
    m.advance(T0 + timedelta(hours=5, minutes=17))  # some use across several bands
    return m


def q(value: Decimal, step: str) -> Decimal:
    return value.quantize(Decimal(step), rounding=ROUND_HALF_EVEN)


@pytest.fixture(scope="module")
async def park():
    meters = {i: make_meter(i) for i in range(1, 4)}
    box = {sid: make_meter(100 + sid, rated="30" if sid == 1 else "4") for sid in (1, 4, 5)}
    layout = adf400l.slave_ids(single_phase=2, three_phase=1)
    tcp = await SimModbusServer(
        {
            1: SimSlave(meters[1], ddsy1352.MAP),
            2: SimSlave(meters[2], dtsy1352.MAP),
            3: SimSlave(meters[3], ddsy1352.MAP, silent=True),
        }
    ).start()
    rtu = await SimModbusServer(
        {sid: SimSlave(box[sid], layout[sid]) for sid in box}, framer=FramerType.RTU
    ).start()
    bus = ModbusBus("127.0.0.1", tcp.port, timeout=0.3)
    rtu_bus = ModbusBus("127.0.0.1", rtu.port, rtu=True, timeout=0.3, gap=0.002)
    yield meters, box, bus, rtu_bus
    bus.close()
    rtu_bus.close()
    await tcp.stop()
    await rtu.stop()


def test_driver_is_a_meter_driver(park):
    _, _, bus, _ = park
    assert isinstance(ModbusDriver(bus, 1, ddsy1352.MAP, "000000000001"), MeterDriver)


async def test_snapshot_matches_sim_state(park):
    meters, _, bus, _ = park
    for sid, model in ((1, ddsy1352.MAP), (2, dtsy1352.MAP)):
        m = meters[sid]
        snap = await ModbusDriver(bus, sid, model, m.address).read_snapshot()
        assert snap.reading.total == m.total > Decimal("1234.56")
        assert snap.reading.bands == m.bands
        assert sum(snap.reading.bands.values()) == snap.reading.total
        assert snap.money.remaining_fen == m.remaining_fen < 50_000
        assert snap.money.purchase_count == 7
        assert snap.status == m.status()
        assert snap.instant.voltage == m.voltage
        assert snap.instant.current == q(m.current, "0.01")
        assert snap.instant.power == q(m.power, "0.001")
        assert snap.instant.power_factor == m.power_factor


async def test_trip_and_close_read_back(park):
    meters, _, bus, _ = park
    driver = ModbusDriver(bus, 1, ddsy1352.MAP, meters[1].address)
    status = await driver.relay(RelayAction.TRIP)
    assert status.relay is RelayState.OPEN and meters[1].relay is RelayState.OPEN
    status = await driver.relay(RelayAction.CLOSE)
    assert status.relay is RelayState.CLOSED and meters[1].relay is RelayState.CLOSED


async def test_trip_under_protection_is_rejected_with_the_meters_code(park):
    meters, _, bus, _ = park
    driver = ModbusDriver(bus, 2, dtsy1352.MAP, meters[2].address)
    assert (await driver.relay(RelayAction.PROTECT_ON)).protected
    with pytest.raises(MeterRejected) as err:
        await driver.relay(RelayAction.TRIP)
    assert err.value.code == 4
    assert meters[2].relay is RelayState.CLOSED
    assert not (await driver.relay(RelayAction.PROTECT_OFF)).protected


async def test_recharge_needs_count_plus_one(park):
    meters, _, bus, _ = park
    m = meters[1]
    driver = ModbusDriver(bus, 1, ddsy1352.MAP, m.address)
    before = m.remaining_fen
    money = await driver.write_recharge(10_000, 8)
    assert (money.remaining_fen, money.purchase_count) == (before + 10_000, 8)
    # The same recharge again (a retried command) returns the first result, no double credit.
    again = await driver.write_recharge(10_000, 8)
    assert again == money and m.remaining_fen == before + 10_000
    # A different recharge under a used count is refused by the meter.
    with pytest.raises(RechargeRefused) as err:
        await driver.write_recharge(5_000, 8)
    assert err.value.code == 3
    with pytest.raises(RechargeRefused):
        await driver.write_recharge(5_000, 10)
    assert (m.remaining_fen, m.purchase_count) == (before + 10_000, 8)


async def test_prices_and_alarm_amounts_are_written(park):
    meters, _, bus, _ = park
    driver = ModbusDriver(bus, 2, dtsy1352.MAP, meters[2].address)
    prices = {1: Decimal("1.3100"), 2: Decimal("0.9800"), 3: Decimal("0.6600"), 4: Decimal("0.31")}
    await driver.write_prices(prices)
    assert meters[2].prices == prices
    await driver.write_alarm_amounts(3000, 800)
    assert (meters[2].alarm_1_fen, meters[2].alarm_2_fen) == (3000, 800)
    with pytest.raises(MeterRejected):
        await driver.write_alarm_amounts(100, 800)  # the meter wants alarm 2 ≤ alarm 1


async def test_silent_slave_is_unreachable_and_the_bus_carries_on(park):
    meters, _, bus, _ = park
    with pytest.raises(MeterUnreachable):
        await ModbusDriver(bus, 3, ddsy1352.MAP, meters[3].address).read_energy()
    energy = await ModbusDriver(bus, 1, ddsy1352.MAP, meters[1].address).read_energy()
    assert energy.total == meters[1].total


async def test_meter_going_offline_is_unreachable(park):
    meters, _, bus, _ = park
    driver = ModbusDriver(bus, 2, dtsy1352.MAP, meters[2].address)
    meters[2].online = False
    try:
        with pytest.raises(MeterUnreachable):
            await driver.read_status()
    finally:
        meters[2].online = True
    assert (await driver.read_status()).relay is RelayState.CLOSED


async def test_unmapped_address_is_a_modbus_exception(park):
    _, _, bus, _ = park
    with pytest.raises(MeterRejected) as err:
        await bus.read(1, 0x4000, 2)
    assert err.value.code == 2


async def test_rtu_over_tcp_adf400l_box(park):
    _, box, _, rtu_bus = park
    one = ModbusDriver(rtu_bus, 5, adf400l.MAP_1P, box[5].address)
    snap = await one.read_snapshot()
    assert snap.reading.total == box[5].total
    assert snap.reading.bands == box[5].bands
    assert snap.money.remaining_fen == box[5].remaining_fen
    assert snap.instant.power_factor is None  # the box has no PF register for a circuit
    assert (await one.relay(RelayAction.TRIP)).relay is RelayState.OPEN
    assert box[5].relay is RelayState.OPEN and box[4].relay is RelayState.CLOSED
    assert (await one.relay(RelayAction.CLOSE)).relay is RelayState.CLOSED
    money = await one.write_recharge(2_000, 8)
    assert money.purchase_count == 8 == box[5].purchase_count
    with pytest.raises(RechargeRefused):
        await one.write_recharge(2_000, 7)


async def test_rtu_over_tcp_three_phase_user(park):
    _, box, _, rtu_bus = park
    three = ModbusDriver(rtu_bus, 1, adf400l.MAP_3P, box[1].address)
    snap = await three.read_snapshot()
    assert snap.reading.total == box[1].total and snap.reading.bands == {}
    assert snap.money.remaining_fen == box[1].remaining_fen
    assert snap.instant.voltage is None
    with pytest.raises(MeterUnreachable):
        await ModbusDriver(rtu_bus, 2, adf400l.MAP_1P, "x").read_status()  # no such circuit
