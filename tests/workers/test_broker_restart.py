"""Restart the MQTT broker mid-run: the platform's gateway link reconnects by itself.

A private Mosquitto on a free port (`mosquitto -p PORT`), so the shared broker is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from server.metering.models import Meter, Reading
from tests.workers.conftest import make_config, register
from tests.workers.helpers import Workers, assert_books_close, until
from workers.meters.base import Protocol_ as P
from workers.sim.gateway import SimGateway
from workers.sim.run import Simulation

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


class Broker:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "mosquitto", "-p", str(self.port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await until(lambda: _accepting(self.port))

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(_free_port())
    await b.start()
    yield b
    await b.stop()


async def _fresh_gateways(
    sim: Simulation, port: int, exit_stack: contextlib.AsyncExitStack
) -> None:
    """The simulated gateways do not reconnect on their own: give them new connections."""
    fresh = []
    for gw in sim.gateways:
        # Its listener died with the broker; collect that error so its exit does not re-raise.
        if gw._task is not None and gw._task.done():
            gw._task.exception()
            gw._task = None
        new = SimGateway(gw.gw_id, gw.meters, sim.park.clock, "127.0.0.1", port, prefix=gw.prefix)
        await exit_stack.enter_async_context(new)
        fresh.append(new)
    sim.gateways = fresh


async def test_restarting_mosquitto_mid_run_loses_nothing_and_bills_nothing_twice(
    db: None, broker: Broker
) -> None:
    sim = Simulation(make_config(20, ("127.0.0.1", broker.port)))
    await sim.start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            park = await register(sim)
            async with Workers(park) as w:
                await w.step(0)
                await broker.stop()
                await until(lambda: not w.link.connected.is_set())
                for _ in range(2):  # wired buses keep working while the broker is down
                    park.sim.park.clock.jump(timedelta(minutes=15))
                    await w.collector.poll_round()
                await broker.start()
                await until(lambda: w.link.connected.is_set() and w.link.connects >= 2)
                await _fresh_gateways(sim, broker.port, stack)
                await w.step(15)
                await w.step(15)
            gw_meters = await Meter.filter(protocol=P.MQTT_GATEWAY).values_list("id", flat=True)
            assert gw_meters
            for meter_id in gw_meters:
                assert await Reading.filter(meter_id=meter_id).count() == 3
            await assert_books_close(park)
    finally:
        await sim.stop()
