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
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import aiomqtt
from pymodbus.framer import FramerType

from workers.meters.base import MeterKind, MeterProtocol
from workers.meters.modbus.maps import adf400l, ddsy1352, dtsy1352
from workers.meters.modbus.registers import ModelMap
from workers.sim.cjt188_server import Cjt188Server
from workers.sim.config import SimConfig, add_arguments, config_from
from workers.sim.dlt645_server import Dlt645Server
from workers.sim.gateway import SimGateway
from workers.sim.meter import SimMeter
from workers.sim.modbus_server import SimModbusServer, SimSlave
from workers.sim.park import SimPark
from workers.sim.profiles import LoadProfile

log = logging.getLogger(__name__)

SLAVES_PER_PORT = 200
BIG_LOAD_KW = Decimal(30)  # above this a meter is three-phase (DTSY / ADF400L 3P)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one simulated meter answers."""

    protocol: MeterProtocol
    host: str
    port: int
    slave: int | None = None
    model: str | None = None
    gateway: str | None = None


@dataclass
class Layout:
    """The park's buses: meters per DL/T 645 channel, Modbus port, ADF400L box, CJ/T 188
    channel and MQTT gateway (id, meters)."""

    dlt645: list[SimMeter]
    modbus: list[dict[int, SimSlave]]
    boxes: list[dict[int, SimSlave]]
    water: list[SimMeter]
    gateways: list[tuple[str, dict[str, SimMeter]]]


def _broker(mqtt_url: str | None) -> tuple[str, int]:
    url = urlsplit(mqtt_url or "mqtt://127.0.0.1:1883")
    return url.hostname or "127.0.0.1", url.port or 1883


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


def _units(meters: list[SimMeter]) -> dict[int, SimSlave]:
    """One Modbus TCP port's DDSY1352/DTSY1352 units, slave ids from 1."""
    return {i + 1: SimSlave(m, _unit_map(m)) for i, m in enumerate(meters)}


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

    def layout(self) -> Layout:
        """Which meter sits on which bus (the same for a given config and seed)."""
        groups = _split(self.park)
        units, per = groups["modbus"], SLAVES_PER_PORT
        size = self.config.gateway_size
        mqtt = groups["mqtt"] if self.config.mqtt_url else []
        return Layout(
            dlt645=groups["dlt645"],
            modbus=[_units(units[k : k + SLAVES_PER_PORT]) for k in range(0, len(units), per)],
            boxes=_boxes(groups["adf"]),
            water=groups["water"],
            gateways=[
                (f"sim-gw-{k // size + 1:04d}", {m.address: m for m in mqtt[k : k + size]})
                for k in range(0, len(mqtt), size)
            ],
        )  # fmt: skip

    def plan(self) -> dict[str, Endpoint]:
        """The directory `start()` builds, from the configured ports and without opening any
        (`shuidian seed` registers the meters of a simulator running elsewhere)."""
        cfg = self.config
        if 0 in (cfg.dlt645_port, cfg.modbus_port, cfg.modbus_rtu_port, cfg.cjt188_port):
            raise ValueError("planning needs fixed ports (0 means any free port)")
        lay = self.layout()
        self._place(lay.dlt645, MeterProtocol.DLT645, cfg.dlt645_port)
        for k, slaves in enumerate(lay.modbus):
            self._place_slaves(slaves, MeterProtocol.MODBUS_TCP, cfg.modbus_port + k)
        for k, box in enumerate(lay.boxes):
            self._place_slaves(box, MeterProtocol.MODBUS_RTU_TCP, cfg.modbus_rtu_port + k)
        self._place(lay.water, MeterProtocol.CJT188, cfg.cjt188_port)
        host, port = _broker(cfg.mqtt_url)
        for gw_id, group in lay.gateways:
            self._place_gateway(gw_id, group, host, port)
        return self.directory

    def _place_gateway(self, gw_id: str, group: dict[str, SimMeter], host: str, port: int) -> None:
        for addr in group:
            self.directory[addr] = Endpoint(MeterProtocol.MQTT_GATEWAY, host, port, gateway=gw_id)

    def _place(self, meters: list[SimMeter], proto: MeterProtocol, port: int) -> None:
        for m in meters:
            self.directory[m.address] = Endpoint(proto, self.config.host, port)

    def _place_slaves(self, slaves: dict[int, SimSlave], proto: MeterProtocol, port: int) -> None:
        for sid, slave in slaves.items():
            self.directory[slave.meter.address] = Endpoint(
                proto, self.config.host, port, sid, slave.model.model
            )

    async def start(self) -> dict[str, str]:
        lay = self.layout()
        await self._start_dlt645(lay.dlt645)
        await self._start_modbus(lay)
        await self._start_water(lay.water)
        await self._start_gateways(lay.gateways)
        self._tasks.append(asyncio.create_task(self.park.run(self.config.tick, self._stop)))
        return self.endpoints

    async def _start_dlt645(self, meters: list[SimMeter]) -> None:
        host = self.config.host
        self.dlt645 = Dlt645Server({m.address: m for m in meters}, self.park.clock)
        port = await self.dlt645.start(host, self.config.dlt645_port)
        self.endpoints["DL/T 645 TCP"] = f"{host}:{port} ({len(meters)} meters)"
        self._place(meters, MeterProtocol.DLT645, port)

    async def _serve_modbus(self, slaves: dict[int, SimSlave], port: int, rtu: bool) -> int:
        framer = FramerType.RTU if rtu else FramerType.SOCKET
        server = SimModbusServer(slaves, self.config.host, port, framer, self.park.clock)
        await server.start()
        self.modbus.append(server)
        proto = MeterProtocol.MODBUS_RTU_TCP if rtu else MeterProtocol.MODBUS_TCP
        self._place_slaves(slaves, proto, server.port)
        return server.port

    async def _start_modbus(self, lay: Layout) -> None:
        host, ports = self.config.host, []
        for k, slaves in enumerate(lay.modbus):
            port = _next_port(self.config.modbus_port, k)
            ports.append(await self._serve_modbus(slaves, port, rtu=False))
        if ports:
            units = sum(len(s) for s in lay.modbus)
            self.endpoints["Modbus TCP"] = (
                f"{host}:{_ports(ports)} ({units} DDSY1352/DTSY1352, "
                f"slave ids 1..{SLAVES_PER_PORT} per port)"
            )
        ports = []
        for k, box in enumerate(lay.boxes):
            port = _next_port(self.config.modbus_rtu_port, k)
            ports.append(await self._serve_modbus(box, port, rtu=True))
        if ports:
            circuits = sum(len(b) for b in lay.boxes)
            self.endpoints["Modbus RTU over TCP"] = (
                f"{host}:{_ports(ports)} ({circuits} circuits in {len(ports)} ADF400L boxes)"
            )

    async def _start_water(self, meters: list[SimMeter]) -> None:
        if not meters:
            return
        server = Cjt188Server({m.address: m for m in meters}, self.park.clock)
        port = await server.start(self.config.host, self.config.cjt188_port)
        self.cjt188 = server
        self.endpoints["CJ/T 188 TCP"] = f"{self.config.host}:{port} ({len(meters)} water meters)"
        self._place(meters, MeterProtocol.CJT188, port)

    async def _start_gateways(self, groups: list[tuple[str, dict[str, SimMeter]]]) -> None:
        cfg = self.config
        if not groups:
            return
        host, port = _broker(cfg.mqtt_url)
        try:
            for gw_id, group in groups:
                gw = SimGateway(gw_id, group, self.park.clock, host, port, prefix=cfg.mqtt_prefix)
                await self._exit.enter_async_context(gw)
                self.gateways.append(gw)
                self._place_gateway(gw_id, group, host, port)
        except aiomqtt.MqttError as exc:
            self.endpoints["MQTT gateways"] = f"broker {host}:{port} unreachable ({exc})"
            return
        for gw in self.gateways:
            self._tasks.append(asyncio.create_task(gw.run(cfg.gateway_period, self._stop)))
        first, last = self.gateways[0].gw_id, self.gateways[-1].gw_id
        meters = sum(len(g) for _, g in groups)
        self.endpoints["MQTT gateways"] = (
            f"mqtt://{host}:{port} {cfg.mqtt_prefix}gw/{first}..{last} "
            f"({meters} meters, readings every {cfg.gateway_period:g} s)"
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
    add_arguments(p)
    return config_from(p.parse_args(argv))


async def serve(config: SimConfig, stop: asyncio.Event) -> None:
    """Run the simulation until `stop` is set, printing where each server listens."""
    sim = Simulation(config)
    endpoints = await sim.start()
    print(f"shuidian simulate: {config.meters} meters, ×{config.speed:g}, seed {config.seed}")
    if config.speed != 1:
        print(f"  platform clock       SHUIDIAN_SIM_CLOCK={sim.park.clock.spec()}")
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
