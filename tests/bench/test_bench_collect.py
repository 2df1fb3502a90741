"""The pieces of bench/collect.py: read_billing on both drivers against the simulator over
real sockets, and the publisher's hand-encoded MQTT packets."""

from pymodbus.framer import FramerType

from bench.collect import START, Publisher, _dlt645_dis, _packet, _varint
from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub
from workers.meters.gateway.schemas import DataMessage
from workers.meters.modbus.driver import ModbusBus, ModbusDriver
from workers.sim.dlt645_server import Dlt645Server
from workers.sim.modbus_server import SimModbusServer, SimSlave
from workers.sim.park import SimPark
from workers.sim.run import _unit_map


def _park() -> SimPark:
    return SimPark.build(12, seed=3, start=START, speed=60.0, water_share=0.0)


def _expect(meter, snap) -> None:
    assert snap.address == meter.address
    assert snap.reading.total == meter.total
    assert snap.reading.bands == meter.bands
    assert snap.status == meter.status()
    assert snap.instant is None
    assert snap.money == (meter.money() if meter.meter_billing else None)


async def test_dlt645_read_billing_matches_the_meter():
    park = _park()
    park.clock.speed = 1e-9  # frozen enough: registers do not move between read and check
    server = Dlt645Server(park.meters, park.clock)
    port = await server.start()
    hub = dlt645_hub("127.0.0.1", port, timeout=1.0, gap=0.0)
    try:
        assert any(m.meter_billing for m in park.meters.values())
        for meter in park.meters.values():
            _expect(meter, await Dlt645Driver(hub, meter.address).read_billing())
    finally:
        await hub.close()
        await server.close()


async def test_modbus_read_billing_matches_the_meter():
    park = _park()
    park.clock.speed = 1e-9
    slaves = {i + 1: SimSlave(m, _unit_map(m)) for i, m in enumerate(park.meters.values())}
    server = await SimModbusServer(slaves, framer=FramerType.SOCKET, clock=park.clock).start()
    bus = ModbusBus("127.0.0.1", server.port, timeout=1.0)
    try:
        for sid, slave in slaves.items():
            snap = await ModbusDriver(bus, sid, slave.model, slave.meter.address).read_billing()
            assert snap.reading.total == slave.meter.total
            assert snap.status == slave.meter.status()
            assert snap.money is not None  # the map keeps the register even when unused
            assert snap.instant is None
    finally:
        bus.close()
        await server.stop()


def test_dlt645_frames_per_meter():
    assert len(_dlt645_dis(prepaid=False)) == 2
    assert len(_dlt645_dis(prepaid=True)) == 6


def test_mqtt_remaining_length_and_packet():
    assert _varint(0) == b"\x00"
    assert _varint(127) == b"\x7f"
    assert _varint(128) == b"\x80\x01"
    assert _varint(16_383) == b"\xff\x7f"
    assert _varint(321) == b"\xc1\x02"  # the example in MQTT 3.1.1 §2.2.3
    assert _packet(0xE0, b"") == b"\xe0\x00"


def test_published_payloads_are_valid_data_messages():
    pub = Publisher(_park(), messages=5, per_message=3, prefix="t/")
    for seq in range(5):
        msg = DataMessage.model_validate_json(pub.payload(seq))
        assert msg.seq == seq and len(msg.meters) == 3
    packet = pub.packet(7)
    assert packet[0] == 0x32  # PUBLISH, QoS 1
    assert b"t/gw/bench-gw-" in packet and packet.endswith(pub.payload(7)[-20:])
