"""The simulator's Modbus server: register words from SimMeter state, writes, exceptions."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes

from workers.meters.base import MeterKind, RelayState
from workers.meters.modbus.maps import adf400l, ddsy1352
from workers.sim.clock import ManualClock, SimClock
from workers.sim.meter import SimMeter
from workers.sim.modbus_server import SimModbusServer, SimSlave, apply_write, read_words
from workers.sim.profiles import LoadProfile

T0 = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)


def meter(**kw) -> SimMeter:
    m = SimMeter(
        address="000000000042",
        kind=MeterKind.ELECTRICITY,
        profile=LoadProfile.OFFICE,
        rated_kw=Decimal(10),
        meter_billing=True,
        total=Decimal("1000.00"),
        remaining_fen=-150,
        purchase_count=3,
        protected=True,  # overdrawn but 保电, so the relay stays closed
        **kw,
    )
    m.advance(T0)
    return m


def test_read_words_are_the_meters_registers():
    m = meter()
    slave = SimSlave(m, ddsy1352.MAP)
    words = read_words(slave, 0x0000, 2)
    assert words == [0x0001, 0x86A0]  # 1000.00 kWh
    # remaining -1.50 yuan, count 3, status: alarm1 alarm2 owing 保电 (relay closed)
    assert read_words(slave, 0x0020, 4) == [0xFFFF, 0xFF6A, 3, 0b11110]
    assert read_words(slave, 0x0028, 2) == [0, 12000]  # price 1: 1.2000 yuan/kWh
    assert read_words(slave, 0x0001, 1) == [0x86A0]  # half of a u32 is allowed
    # A hole inside a read is 0 (band 4 is still empty at 0008–0009, 000A is unused).
    assert read_words(slave, 0x0009, 3) == [0, 0, int(m.voltage * 10)]
    assert read_words(slave, 0x000A, 1) == ExcCodes.ILLEGAL_ADDRESS  # nothing but a hole
    assert read_words(slave, 0x4000, 2) == ExcCodes.ILLEGAL_ADDRESS


def test_writes_reach_the_meter_or_are_refused_with_a_code():
    m = meter()
    slave = SimSlave(m, ddsy1352.MAP)
    assert apply_write(slave, 0x0030, [0, 1000, 4]) is None  # recharge 10.00 yuan, count 4
    assert (m.remaining_fen, m.purchase_count) == (850, 4)
    assert apply_write(slave, 0x0030, [0, 1000, 6]) == ExcCodes.ILLEGAL_VALUE
    assert apply_write(slave, 0x0030, [0, 1000]) == ExcCodes.ILLEGAL_VALUE  # count missing
    assert apply_write(slave, 0x0031, [1000, 5]) == ExcCodes.ILLEGAL_ADDRESS  # misaligned
    assert apply_write(slave, 0x0000, [0, 0]) == ExcCodes.ILLEGAL_ADDRESS  # read-only total
    assert apply_write(slave, 0x0057, [1, 1]) == ExcCodes.DEVICE_FAILURE  # trip under 保电
    assert apply_write(slave, 0x0059, [0]) is None and not m.protected
    assert apply_write(slave, 0x0057, [1, 1]) is None and m.relay is RelayState.OPEN
    assert apply_write(slave, 0x0057, [1, 9]) == ExcCodes.ILLEGAL_VALUE
    assert apply_write(slave, 0x0026, [0, 300]) is None  # alarm 2 alone
    assert (m.alarm_1_fen, m.alarm_2_fen) == (2000, 300)


def test_adf400l_forced_control():
    m = meter()
    slave = SimSlave(m, adf400l.MAP_1P)
    assert apply_write(slave, 0x0804, [0]) is None and not m.protected
    assert apply_write(slave, 0x0801, [1]) is None and m.relay is RelayState.OPEN
    assert read_words(slave, 0x0311, 1) == [0b01111]
    assert apply_write(slave, 0x0804, [1]) is None and m.relay is RelayState.CLOSED


@pytest.fixture
async def server():
    real = ManualClock()
    clock = SimClock(T0, speed=60, real=real)
    m = meter()
    srv = await SimModbusServer({7: SimSlave(m, ddsy1352.MAP)}, clock=clock).start()
    client = AsyncModbusTcpClient("127.0.0.1", port=srv.port, timeout=0.3, retries=0)
    await client.connect()
    yield srv, client, m, real
    client.close()
    await srv.stop()


async def test_server_advances_the_meter_before_answering(server):
    _, client, m, real = server
    before = m.total
    real.tick(120)  # two simulated hours
    rr = await client.read_holding_registers(0x0000, count=2, device_id=7)
    value = ddsy1352.MAP["total"].decode(rr.registers)
    assert value == m.total > before
    assert m.last_advance == T0 + timedelta(hours=2)


async def test_server_exceptions_on_the_wire(server):
    _, client, m, _ = server
    rr = await client.read_coils(0, count=1, device_id=7)
    assert rr.isError() and rr.exception_code == ExcCodes.ILLEGAL_FUNCTION
    rr = await client.write_registers(0x0030, [0, 100, 99], device_id=7)
    assert rr.isError() and rr.exception_code == ExcCodes.ILLEGAL_VALUE
    rr = await client.read_input_registers(0x0022, count=1, device_id=7)  # FC04 serves too
    assert rr.registers == [m.purchase_count]
