"""Restart the MQTT broker mid-run: the platform's gateway link and the simulated gateways
reconnect by themselves; a gateway buffers while the broker is away and replays after.

A private Mosquitto on a free port, so the shared broker is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from server.metering.models import Meter, Reading
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import WORKDAY_10AM, make_config, register
from tests.workers.helpers import Workers, assert_books_close, until
from workers.meters.gateway.schemas import DataMessage, Source
from workers.meters.gateway.topics import TopicKind, topic
from workers.sim.clock import SimClock
from workers.sim.gateway import SimGateway
from workers.sim.park import SimPark
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
    def __init__(self, port: int, config: Path | None = None) -> None:
        self.port, self.config = port, config
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = ["-c", str(self.config)] if self.config else ["-p", str(self.port)]
        self.proc = await asyncio.create_subprocess_exec(
            "mosquitto", *args,
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


async def test_restarting_mosquitto_mid_run_loses_nothing_and_bills_nothing_twice(
    db: None, broker: Broker
) -> None:
    sim = Simulation(make_config(20, ("127.0.0.1", broker.port)))
    await sim.start()
    try:
        park = await register(sim)
        async with Workers(park) as w:
            await w.step(0)
            await broker.stop()
            await until(lambda: not w.link.connected.is_set())
            await until(lambda: not any(gw.connected.is_set() for gw in sim.gateways))
            for _ in range(2):  # wired buses keep working while the broker is down
                park.sim.park.clock.jump(timedelta(minutes=15))
                await w.collector.poll_round()
            await broker.start()
            await until(lambda: w.link.connected.is_set() and w.link.connects >= 2)
            # The simulated gateways reconnect by themselves, like real ones.
            await until(lambda: all(gw.connects >= 2 for gw in sim.gateways))
            await w.step(15)
            await w.step(15)
        gw_meters = await Meter.filter(protocol=P.MQTT_GATEWAY).values_list("id", flat=True)
        assert gw_meters
        for meter_id in gw_meters:
            assert await Reading.filter(meter_id=meter_id).count() == 3
        await assert_books_close(park)
    finally:
        await sim.stop()


@pytest.fixture
def persist_dir() -> Iterator[Path]:
    """A directory the broker can write after dropping root (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="shuidian-mq-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def persistent_broker(persist_dir: Path) -> AsyncIterator[Broker]:
    """A Mosquitto of the test's own on a free port that keeps sessions and queued messages
    in `persist_dir` (what a collector's persistent session relies on)."""
    port = _free_port()
    conf = persist_dir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {persist_dir}/\n"
    )
    b = Broker(port, config=conf)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


async def test_a_gateway_buffers_while_the_broker_is_down_and_replays_after(
    persist_dir: Path,
) -> None:
    """The broker keeps sessions on disk (persistence), so the test's subscriber, a persistent
    session, misses nothing across the restart: whatever it gets is what the gateway sent."""
    conf = persist_dir / "mosquitto.conf"
    conf.write_text(
        f"listener {_free_port()} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {persist_dir}/\n"
    )
    broker = Broker(int(conf.read_text().split()[1]), config=conf)
    await broker.start()
    clock = SimClock(WORKDAY_10AM, speed=1.0, real=lambda: 0.0)  # moves only by jump()
    park = SimPark.build(4, seed=3, start=WORKDAY_10AM, speed=1.0)
    prefix = f"t{uuid.uuid4().hex[:6]}/"
    got: list[DataMessage] = []
    try:
        async with SimGateway("gw-r", park.meters, clock, port=broker.port, prefix=prefix) as gw:
            async with _subscriber(broker.port, prefix) as sub:
                await gw.collect()
                got += await _take(sub, 1)
            await broker.stop()
            await until(lambda: not gw.connected.is_set())
            for _ in range(3):  # collected while the broker is away: buffered
                clock.jump(timedelta(minutes=15))
                await gw.collect()
            assert len(gw.buffer) == 3
            await broker.start()
            await until(lambda: gw.connects >= 2 and not gw.buffer)
            async with _subscriber(broker.port, prefix) as sub:
                got += await _take(sub, 3)
    finally:
        await broker.stop()
    assert [m.src for m in got] == [Source.REALTIME] + [Source.HISTORY] * 3
    times = [m.ts_collect for m in got]
    assert times == [WORKDAY_10AM + timedelta(minutes=15 * k) for k in range(4)]


@contextlib.asynccontextmanager
async def _subscriber(port: int, prefix: str) -> AsyncIterator[aiomqtt.Client]:
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"test-sub-{prefix}", clean_session=False)
    async with client:
        await client.subscribe(topic("gw-r", TopicKind.DATA, prefix), qos=1)
        yield client


async def _take(client: aiomqtt.Client, n: int) -> list[DataMessage]:
    out: list[DataMessage] = []
    async with asyncio.timeout(15):  # only stops a hung test
        async for message in client.messages:
            out.append(DataMessage.model_validate_json(bytes(message.payload)))  # type: ignore[arg-type]
            if len(out) == n:
                return out
    return out
