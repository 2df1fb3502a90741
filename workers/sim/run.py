"""The whole simulator: one SimPark served over every protocol (`shuidian simulate`).

Each electricity meter sits on exactly one bus, as in a real park:
DL/T 645 over one TCP transparent channel (40 %), Modbus TCP units (DDSY1352, DTSY1352 for
big or three-phase loads; 200 slave ids per port, 20 %), ADF400L boxes over RTU-over-TCP
(one port per box, 10 %) and MQTT gateways of `gateway_size` meters (30 %); water meters
speak CJ/T 188 on their own channel. `Simulation.directory` says where each meter is, so
the demo, the tests and the benchmarks can register the same meters on the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import aiomqtt
from pymodbus.framer import FramerType

from workers.meters.base import MeterKind, MeterProtocol
from workers.meters.modbus.maps import adf400l, ddsy1352, dtsy1352
from workers.meters.modbus.registers import ModelMap
from workers.sim.cjt188_server import Cjt188Server
from workers.sim.dlt645_server import Dlt645Server
from workers.sim.gateway import SimGateway
from workers.sim.meter import SimMeter
from workers.sim.modbus_server import SimModbusServer, SimSlave
from workers.sim.park import SimPark
from workers.sim.profiles import LoadProfile

log = logging.getLogger(__name__)

SLAVES_PER_PORT = 200
BIG_LOAD_KW = Decimal(30)  # above this a meter is three-phase (DTSY / ADF400L 3P)


@dataclass
class SimConfig:
    meters: int = 2000
    speed: float = 60.0
    seed: int = 1
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    host: str = "127.0.0.1"
    dlt645_port: int = 8645
    modbus_port: int = 5020  # first of consecutive ports
    modbus_rtu_port: int = 5120  # first of consecutive ports, one per ADF400L box
    cjt188_port: int = 8188
    mqtt_url: str | None = "mqtt://127.0.0.1:1883"
    mqtt_prefix: str = ""
    gateway_size: int = 50
    gateway_period: float = 15.0  # real seconds between realtime readings
    tick: float = 1.0  # real seconds between park advances


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one simulated meter answers."""

    protocol: MeterProtocol
    host: str
    port: int
    slave: int | None = None
    model: str | None = None
    gateway: str | None = None


def _next_port(base: int, k: int) -> int:
    return 0 if base == 0 else base + k


def _split(park: SimPark) -> dict[str, list[SimMeter]]:
    groups: dict[str, list[SimMeter]] = {"dlt645": [], "modbus": [], "adf": [], "mqtt": []}
    groups["water"] = []
    for i, m in enumerate(park.meters.values()):
        if m.kind is MeterKind.WATER:
            groups["water"].append(m)
            continue
        slot = i % 10
        key = "dlt645" if slot < 4 else "modbus" if slot < 6 else "adf" if slot == 6 else "mqtt"
        groups[key].append(m)
    return groups


def _unit_map(m: SimMeter) -> ModelMap:
    big = m.profile is LoadProfile.FACTORY or m.rated_kw > BIG_LOAD_KW
    return dtsy1352.MAP if big else ddsy1352.MAP


def _boxes(meters: list[SimMeter]) -> list[dict[int, SimSlave]]:
    """Pack ADF400L circuits into boxes: three-phase users first, at most 36 ids a box."""
    boxes: list[dict[int, SimSlave]] = []
    pending = sorted(meters, key=lambda m: m.rated_kw <= BIG_LOAD_KW)
    while pending:
        three = [m for m in pending[: adf400l.MAX_THREE_PHASE] if m.rated_kw > BIG_LOAD_KW]
        room = adf400l.MAX_SINGLE_PHASE - 3 * len(three)
        single = [m for m in pending[len(three) :] if m.rated_kw <= BIG_LOAD_KW][:room]
        layout = adf400l.slave_ids(single_phase=len(single), three_phase=len(three))
        members = zip(layout, three + single, strict=True)
        boxes.append({sid: SimSlave(m, layout[sid]) for sid, m in members})
        taken = {id(m) for m in three + single}
        pending = [m for m in pending if id(m) not in taken]
    return boxes


class Simulation:
    """Start with `await sim.start()`, stop with `await sim.stop()`; see `endpoints`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.park = SimPark.build(config.meters, config.seed, config.start, config.speed)
        self.directory: dict[str, Endpoint] = {}
        self.endpoints: dict[str, str] = {}
        self.dlt645: Dlt645Server | None = None
        self.cjt188: Cjt188Server | None = None
        self.modbus: list[SimModbusServer] = []
        self.gateways: list[SimGateway] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._exit = contextlib.AsyncExitStack()

    async def start(self) -> dict[str, str]:
        groups = _split(self.park)
        await self._start_dlt645(groups["dlt645"])
        await self._start_modbus(groups["modbus"], groups["adf"])
        await self._start_water(groups["water"])
        await self._start_gateways(groups["mqtt"])
        self._tasks.append(asyncio.create_task(self.park.run(self.config.tick, self._stop)))
        return self.endpoints

    async def _start_dlt645(self, meters: list[SimMeter]) -> None:
        host = self.config.host
        self.dlt645 = Dlt645Server({m.address: m for m in meters}, self.park.clock)
        port = await self.dlt645.start(host, self.config.dlt645_port)
        self.endpoints["DL/T 645 TCP"] = f"{host}:{port} ({len(meters)} meters)"
        for m in meters:
            self.directory[m.address] = Endpoint(MeterProtocol.DLT645, host, port)

    async def _serve_modbus(self, slaves: dict[int, SimSlave], port: int, rtu: bool) -> int:
        framer = FramerType.RTU if rtu else FramerType.SOCKET
        server = SimModbusServer(slaves, self.config.host, port, framer, self.park.clock)
        await server.start()
        self.modbus.append(server)
        proto = MeterProtocol.MODBUS_RTU_TCP if rtu else MeterProtocol.MODBUS_TCP
        for sid, slave in slaves.items():
            self.directory[slave.meter.address] = Endpoint(
                proto, self.config.host, server.port, sid, slave.model.model
            )
        return server.port

    async def _start_modbus(self, units: list[SimMeter], circuits: list[SimMeter]) -> None:
        host, ports = self.config.host, []
        for k in range(0, len(units), SLAVES_PER_PORT):
            chunk = units[k : k + SLAVES_PER_PORT]
            slaves = {i + 1: SimSlave(m, _unit_map(m)) for i, m in enumerate(chunk)}
            port = _next_port(self.config.modbus_port, k // SLAVES_PER_PORT)
            ports.append(await self._serve_modbus(slaves, port, rtu=False))
        if ports:
            self.endpoints["Modbus TCP"] = (
                f"{host}:{_ports(ports)} ({len(units)} DDSY1352/DTSY1352, "
                f"slave ids 1..{SLAVES_PER_PORT} per port)"
            )
        ports = []
        for k, box in enumerate(_boxes(circuits)):
            port = _next_port(self.config.modbus_rtu_port, k)
            ports.append(await self._serve_modbus(box, port, rtu=True))
        if ports:
            self.endpoints["Modbus RTU over TCP"] = (
                f"{host}:{_ports(ports)} ({len(circuits)} circuits in {len(ports)} ADF400L boxes)"
            )

    async def _start_water(self, meters: list[SimMeter]) -> None:
        if not meters:
            return
        server = Cjt188Server({m.address: m for m in meters}, self.park.clock)
        port = await server.start(self.config.host, self.config.cjt188_port)
        self.cjt188 = server
        self.endpoints["CJ/T 188 TCP"] = f"{self.config.host}:{port} ({len(meters)} water meters)"
        for m in meters:
            self.directory[m.address] = Endpoint(MeterProtocol.CJT188, self.config.host, port)

    async def _start_gateways(self, meters: list[SimMeter]) -> None:
        cfg = self.config
        if not cfg.mqtt_url or not meters:
            return
        url = urlsplit(cfg.mqtt_url)
        host, port = url.hostname or "127.0.0.1", url.port or 1883
        size = cfg.gateway_size
        try:
            for k in range(0, len(meters), size):
                gw_id = f"sim-gw-{k // size + 1:04d}"
                group = {m.address: m for m in meters[k : k + size]}
                gw = SimGateway(gw_id, group, self.park.clock, host, port, prefix=cfg.mqtt_prefix)
                await self._exit.enter_async_context(gw)
                self.gateways.append(gw)
                for addr in group:
                    self.directory[addr] = Endpoint(
                        MeterProtocol.MQTT_GATEWAY, host, port, gateway=gw_id
                    )
        except aiomqtt.MqttError as exc:
            self.endpoints["MQTT gateways"] = f"broker {host}:{port} unreachable ({exc})"
            return
        for gw in self.gateways:
            self._tasks.append(asyncio.create_task(gw.run(cfg.gateway_period, self._stop)))
        first, last = self.gateways[0].gw_id, self.gateways[-1].gw_id
        self.endpoints["MQTT gateways"] = (
            f"mqtt://{host}:{port} {cfg.mqtt_prefix}gw/{first}..{last} "
            f"({len(meters)} meters, readings every {cfg.gateway_period:g} s)"
        )

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._exit.aclose()
        for server in self.modbus:
            await server.stop()
        if self.dlt645 is not None:
            await self.dlt645.close()
        if self.cjt188 is not None:
            await self.cjt188.close()


def _ports(ports: list[int]) -> str:
    if ports == list(range(ports[0], ports[0] + len(ports))) and len(ports) > 1:
        return f"{ports[0]}-{ports[-1]}"
    return ",".join(map(str, ports))


def parse_args(argv: list[str] | None) -> SimConfig:
    p = argparse.ArgumentParser(prog="shuidian simulate", description="模拟园区: 电表/水表/网关")
    d = SimConfig()
    p.add_argument("--meters", type=int, default=d.meters)
    p.add_argument("--speed", type=float, default=d.speed, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start", type=datetime.fromisoformat, default=None, help="ISO 8601")
    p.add_argument("--host", default=d.host)
    p.add_argument("--dlt645-port", type=int, default=d.dlt645_port)
    p.add_argument("--modbus-port", type=int, default=d.modbus_port)
    p.add_argument("--modbus-rtu-port", type=int, default=d.modbus_rtu_port)
    p.add_argument("--cjt188-port", type=int, default=d.cjt188_port)
    p.add_argument("--mqtt-url", default=d.mqtt_url, help="'' to run without gateways")
    p.add_argument("--mqtt-prefix", default=d.mqtt_prefix)
    p.add_argument("--gateway-size", type=int, default=d.gateway_size)
    p.add_argument("--gateway-period", type=float, default=d.gateway_period)
    p.add_argument("--tick", type=float, default=d.tick)
    ns = vars(p.parse_args(argv))
    start = ns.pop("start")
    cfg = SimConfig(**ns)
    if start is not None:
        cfg.start = start if start.tzinfo else start.replace(tzinfo=UTC)
    return cfg


async def serve(config: SimConfig, stop: asyncio.Event) -> None:
    """Run the simulation until `stop` is set, printing where each server listens."""
    sim = Simulation(config)
    endpoints = await sim.start()
    print(f"shuidian simulate: {config.meters} meters, ×{config.speed:g}, seed {config.seed}")
    for name, where in endpoints.items():
        print(f"  {name:<20} {where}")
    print("Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    """`shuidian simulate --meters 2000 [--speed N] [--seed S] [--host H] [--*-port P]`."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(_run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
