"""The whole simulator in-process with a small park: every server answers once."""

import asyncio
import contextlib
import io
import uuid
from datetime import UTC, datetime

from workers.meters.base import MeterProtocol
from workers.meters.cjt188.driver import Cjt188Driver, cjt188_hub
from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub
from workers.meters.gateway.client import GatewayClient
from workers.meters.modbus.driver import ModbusBus, ModbusDriver
from workers.meters.modbus.maps import get_map
from workers.sim.run import SimConfig, Simulation, parse_args, serve

WAIT = 10.0  # guard against hanging, not a timing assertion


def small_config(prefix: str) -> SimConfig:
    return SimConfig(
        meters=60,
        seed=7,
        start=datetime(2025, 7, 1, 2, 0, tzinfo=UTC),
        speed=60,
        dlt645_port=0,
        modbus_port=0,
        modbus_rtu_port=0,
        cjt188_port=0,
        mqtt_prefix=prefix,
        gateway_size=5,
        gateway_period=3600,
    )


def first(sim: Simulation, protocol: MeterProtocol) -> tuple[str, object]:
    return next((a, e) for a, e in sim.directory.items() if e.protocol is protocol)


async def test_every_server_answers():
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    data: asyncio.Queue = asyncio.Queue()

    async def on_data(gw, msg):
        await data.put((gw, msg))

    async with GatewayClient(prefix=prefix, on_data=on_data):
        sim = Simulation(small_config(prefix))
        await sim.start()
        try:
            meters = sim.park.meters
            electric = [a for a, m in meters.items() if m.kind == "electricity"]
            assert set(sim.directory) >= set(electric)  # every meter is on one bus

            addr, ep = first(sim, MeterProtocol.DLT645)
            hub = dlt645_hub(ep.host, ep.port)
            try:
                energy = await Dlt645Driver(hub, addr).read_energy()
            finally:
                await hub.close()
            assert energy.total == meters[addr].total

            for proto in (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP):
                addr, ep = first(sim, proto)
                bus = ModbusBus(ep.host, ep.port, rtu=proto is MeterProtocol.MODBUS_RTU_TCP)
                try:
                    driver = ModbusDriver(bus, ep.slave, get_map(ep.model), addr)
                    assert (await driver.read_energy()).total == meters[addr].total
                finally:
                    bus.close()

            gw, msg = await asyncio.wait_for(data.get(), WAIT)  # first round on start
            assert gw.startswith("sim-gw-")
            assert all(sim.directory[m.addr].gateway == gw for m in msg.meters)
        finally:
            await sim.stop()


async def test_water_meters_answer_over_cjt188():
    config = small_config("unused/")
    config.mqtt_url = None
    sim = Simulation(config)
    await sim.start()
    try:
        addr, ep = first(sim, MeterProtocol.CJT188)
        hub = cjt188_hub(ep.host, ep.port)
        try:
            energy = await Cjt188Driver(hub, addr).read_energy()
        finally:
            await hub.close()
        assert sim.park.meters[addr].kind == "water"
        assert energy.total == sim.park.meters[addr].total
    finally:
        await sim.stop()


async def test_serve_prints_where_each_server_listens():
    config = small_config("unused/")
    config.mqtt_url = None
    stop = asyncio.Event()
    stop.set()  # serve starts everything, prints, then stops at once
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await asyncio.wait_for(serve(config, stop), WAIT)
    text = out.getvalue()
    assert "60 meters" in text
    for name in ("DL/T 645 TCP", "Modbus TCP", "Modbus RTU over TCP", "CJ/T 188 TCP"):
        assert name in text


def test_command_line():
    cfg = parse_args(["--meters", "2000", "--speed", "120", "--seed", "3", "--modbus-port", "0"])
    assert (cfg.meters, cfg.speed, cfg.seed, cfg.modbus_port) == (2000, 120.0, 3, 0)
    cfg = parse_args(["--start", "2025-07-01T08:00:00+08:00", "--mqtt-url", ""])
    assert cfg.start == datetime(2025, 7, 1, 0, 0, tzinfo=UTC) and not cfg.mqtt_url
