"""`kill -9` the collector mid-round: the `shuidian worker collector` process, PostgreSQL, a
Mosquitto of the test's own (persistence in a temp dir), the simulator in-process.

One DL/T 645 bus sits behind a gate (a TCP relay) that lets the first meters' requests
through and holds every request from the next meter on: the collector's exchange with that
meter stays in flight (SHUIDIAN_METER_TIMEOUT_S is longer than the test). Once the readings
of the meters read before it are in the database — stored as they were read, not when the
bus or the round ends — the process is killed. What it read is there; what it lost is the
exchange in flight. Gateways publish two rounds while it is down; the restarted collector
(same MQTT session) stores each of them once, reads every bus again and goes on polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.ledger.check import run_check
from server.metering.models import Gateway, Meter, MeteringPolicy, Reading
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park, make_config, register
from tests.workers.helpers import until
from tests.workers.test_broker_restart import (  # noqa: F401  (persist_dir: a fixture)
    Broker,
    persist_dir,
    persistent_broker,
)
from workers.meters.dlt645.framer import BROADCAST, WILDCARD, Corrupt, build_frame, parse_all
from workers.mqtt import GatewayLink
from workers.sim.run import Simulation

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto"),
]
ROOT = Path(__file__).resolve().parents[2]


class Gate:
    """A relay in front of a DL/T 645 bus: requests of the first `open_for` meters pass; from
    the first request of another meter on, nothing passes (on any connection) until `open`."""

    def __init__(self, to: tuple[str, int], open_for: int) -> None:
        self.to, self.open_for = to, open_for
        self.passed: list[str] = []  # meter addresses whose requests went through, in order
        self.held: str | None = None  # the meter whose exchange is held in flight
        self.holding = asyncio.Event()  # a request is being held: its exchange is in flight
        self.opened = asyncio.Event()
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def close(self) -> None:
        self.opened.set()
        if self.server is not None:
            self.server.close()

    def _passes(self, address: str) -> bool:
        if self.opened.is_set() or address in (BROADCAST, WILDCARD):
            return True
        if address not in self.passed and len(self.passed) >= self.open_for:
            self.held = self.held or address
            self.holding.set()
        if self.holding.is_set():
            return False
        if address not in self.passed:
            self.passed.append(address)
        return True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.to)

        async def requests() -> None:
            buf = b""
            while data := await reader.read(4096):
                frames, buf = parse_all(buf + data)
                for f in frames:
                    if not isinstance(f, Corrupt) and not self._passes(f.frame.address):
                        await self.opened.wait()  # held: the collector waits for its answer
                    up_writer.write(f.raw if isinstance(f, Corrupt) else build_frame(f.frame))
                    await up_writer.drain()

        async def answers() -> None:
            while data := await up_reader.read(4096):
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(OSError):
            await asyncio.gather(requests(), answers())
        up_writer.close()
        writer.close()


class CollectorProcess:
    """`shuidian worker collector` in a process of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, sim_clock: str) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "worker", "collector",
                cwd=ROOT, stdout=out, stderr=out,
                env={**os.environ, "PYTHONPATH": str(ROOT), **self.env,
                     "SHUIDIAN_SIM_CLOCK": sim_clock},
            )  # fmt: skip

    async def kill(self) -> None:
        assert self.proc is not None and self.proc.returncode is None, self.log.read_text()
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL

    async def stop(self) -> int:
        assert self.proc is not None and self.proc.returncode is None, self.log.read_text()
        self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()

    async def cleanup(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()  # a failed test's collector may be waiting on a held exchange
            await self.proc.wait()


def clock_spec(park: Park) -> str:
    """SHUIDIAN_SIM_CLOCK for the park's clock as it reads now (jumps included)."""
    return f"{park.now().isoformat()}/{time.time():.6f}/1"


@pytest.fixture
async def broker(persist_dir: Path) -> AsyncIterator[Broker]:  # noqa: F811
    async with persistent_broker(persist_dir) as b:
        yield b


async def readings(meter_ids: list[int]) -> dict[int, int]:
    rows = await Reading.filter(meter_id__in=meter_ids).values_list("meter_id", flat=True)
    return {m: rows.count(m) for m in meter_ids}


async def test_a_collector_killed_mid_round_loses_only_the_exchange_in_flight(
    db: None, database_url: str, broker: Broker, tmp_path: Path
) -> None:
    config = dataclasses.replace(make_config(40, ("127.0.0.1", broker.port)), mqtt_prefix="")
    sim = Simulation(config)
    await sim.start()
    gate: Gate | None = None
    worker = CollectorProcess(
        {
            "SHUIDIAN_DB_URL": database_url,
            "SHUIDIAN_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
            "SHUIDIAN_MQTT_CLIENT_ID": f"test-kill-{uuid.uuid4().hex[:8]}",
            "SHUIDIAN_DATA_DIR": str(tmp_path),
            "SHUIDIAN_METER_TIMEOUT_S": "120",  # the held exchange outlives the test
            "SHUIDIAN_PENDING_SWEEP_S": "1",
        },
        tmp_path / "collector.log",
    )
    try:
        park = await register(sim)
        await MeteringPolicy.update_or_create(site=park.site, defaults={"poll_interval_s": 1})
        meters = await Meter.filter(site_id=park.site.id).prefetch_related("gateway")
        gated = next(g for g in await Gateway.filter(site_id=park.site.id) if "dlt645" in g.code)
        on_bus = {m.address: m.id for m in meters if m.gateway_id == gated.id}
        assert len(on_bus) >= 10
        gate = Gate((gated.host, gated.port), open_for=len(on_bus) // 2)
        await gate.start()
        await Gateway.filter(id=gated.id).update(port=gate.port)
        polled = [m.id for m in meters if m.protocol != P.MQTT_GATEWAY]
        pushed = [m.id for m in meters if m.protocol == P.MQTT_GATEWAY]
        others = [m for m in polled if m not in on_bus.values()]

        client_id = worker.env["SHUIDIAN_MQTT_CLIENT_ID"]
        async with GatewayLink("127.0.0.1", broker.port, client_id=client_id, persistent=True) as s:
            await until(s.connected.is_set)  # the collector's session exists (it ran before)
        await worker.start(clock_spec(park))
        await until(gate.holding.is_set, 60)  # mid-round: an exchange is in flight
        for gw in sim.gateways:  # and the gateways report
            await gw.collect()

        async def stored_before_kill() -> bool:
            read = [on_bus[a] for a in gate.passed]
            counts = await readings(read + others + pushed)
            return all(n >= 1 for n in counts.values())

        await until(stored_before_kill, 30)
        read = [on_bus[a] for a in gate.passed]
        assert len(read) == len(on_bus) // 2
        await worker.kill()

        # What the killed collector read is stored; the rest of the gated bus is not: one
        # meter's exchange was in flight, the others had not been read yet.
        before = await readings(list(on_bus.values()))
        assert [a for a in on_bus if before[on_bus[a]]] == gate.passed
        assert sum(before.values()) == len(read)
        assert gate.held is not None and before[on_bus[gate.held]] == 0  # the one lost

        for _ in range(2):  # the collector is down: the broker keeps these for its session
            park.sim.park.clock.jump(timedelta(minutes=15))
            for gw in sim.gateways:
                await gw.collect()
        await gate.close()
        await Gateway.filter(id=gated.id).update(port=gated.port)  # the bus, direct again
        await worker.start(clock_spec(park))

        async def caught_up() -> bool:
            got = await readings(polled + pushed)
            # two polled rounds after the restart (every bus, the gated one whole), and the
            # two gateway rounds published while it was down
            return all(got[m] >= (3 if before.get(m, 1) else 2) for m in polled) and all(
                got[m] >= 3 for m in pushed
            )

        await until(caught_up, 40)
        assert await worker.stop() == 0
        after = await readings(pushed)
        assert set(after.values()) == {3}  # every gateway round stored, each reading once
        assert await run_check() == 0
    finally:
        await worker.cleanup()
        if gate is not None:
            await gate.close()
        await sim.stop()
