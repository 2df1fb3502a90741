"""Collection benchmark (issue #4): one billing round over DL/T 645 and Modbus TCP, and
gateway readings over MQTT, each next to the raw library loop on the same traffic.

    .venv/bin/python -m bench.collect --meters 10000 --messages 100000

Layout
------
The simulator runs in a subprocess (`--serve`), so on 2 cores the server and the client each
get one: a SimPark of N electricity meters served as DL/T 645 (one TCP port, one connection
per transparent channel) and as Modbus TCP (one port per bus, slave ids 1..K), plus a
publisher that plays the gateways. The client polls buses of K meters, one hub per bus,
all buses concurrently, as the collector will:

- DL/T 645, ours: `Dlt645Driver.read_billing()` through a `Hub` (energy block + status word,
  plus remaining/overdrawn/count/alarm-1 for meter-billed meters). Raw: the same pre-built
  frames written on a plain asyncio stream, each reply read by its length byte.
- Modbus, ours: `ModbusDriver.read_billing()` on a `ModbusBus`. Raw: an
  `AsyncModbusTcpClient` per bus reading the same register blocks.
- MQTT, ours: `GatewayClient` (topic parse + pydantic validation of every DataMessage).
  Raw: an aiomqtt subscriber counting the same messages.

The publisher writes pre-encoded MQTT 3.1.1 QoS 1 PUBLISH packets on a socket (cheap, so the
broker and the subscriber are what is measured), and stays at most `--window` messages ahead
of what the subscriber has counted (reported over the pipe): Mosquitto drops QoS 1 messages
for a client beyond `max_queued_messages` (1000), and a benchmark that loses messages lies.

Everything stays on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.common import proc_cpu

HOST = "127.0.0.1"
MQTT_PORT = 1883
START = datetime(2024, 7, 15, 10, 0, tzinfo=UTC)


# -- simulator side (subprocess) ---------------------------------------------------------------
def _dlt645_dis(prepaid: bool) -> list[int]:
    """Data identifiers `Dlt645Driver.read_billing` reads, in its order."""
    from workers.meters.dlt645 import dataid as di

    base = [di.ENERGY_BLOCK, di.STATUS_3]
    money = [di.REMAINING_MONEY, di.OVERDRAWN_MONEY, di.PURCHASE_COUNT, di.ALARM_1]
    return base + money if prepaid else base


async def _serve(n: int, per_bus: int, seed: int) -> None:
    from workers.sim.dlt645_server import Dlt645Server
    from workers.sim.modbus_server import SimModbusServer, SimSlave
    from workers.sim.park import SimPark
    from workers.sim.run import _unit_map

    park = SimPark.build(n, seed, START, speed=60.0, water_share=0.0)
    meters = list(park.meters.values())
    dlt = Dlt645Server(park.meters, park.clock)
    layout: dict[str, object] = {"dlt645": await dlt.start(HOST, 0), "meters": []}
    servers = []
    for k in range(0, n, per_bus):
        slaves = {i + 1: SimSlave(m, _unit_map(m)) for i, m in enumerate(meters[k : k + per_bus])}
        server = await SimModbusServer(slaves, HOST, 0, clock=park.clock).start()
        servers.append(server)
        for sid, s in slaves.items():
            row = [s.meter.address, s.meter.meter_billing, server.port, sid, s.model.model]
            layout["meters"].append(row)  # type: ignore[attr-defined]
    print(json.dumps(layout), flush=True)
    await _commands(park)
    for server in servers:
        await server.stop()
    await dlt.close()


async def _commands(park: object) -> None:
    """Follow the client's commands on stdin: `prep`, `go`, `ack`, `quit`."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    pub: Publisher | None = None
    task: asyncio.Task[int] | None = None
    while line := (await stdin.readline()).decode().split():
        cmd, args = line[0], line[1:]
        if cmd == "ack" and pub is not None:
            pub.credit(int(args[0]))
        elif cmd == "prep":
            pub = Publisher(park, int(args[0]), int(args[1]), args[2])
            print("ready", flush=True)
        elif cmd == "go" and pub is not None:
            task = asyncio.create_task(pub.run(int(args[0])))
            task.add_done_callback(_report_published)
        elif cmd == "quit":
            break


def _report_published(task: asyncio.Task[int]) -> None:
    error = task.exception()
    print(f"published {task.result() if error is None else f'failed: {error!r}'}", flush=True)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _packet(header: int, body: bytes) -> bytes:
    return bytes([header]) + _varint(len(body)) + body


def _str(raw: bytes) -> bytes:
    return len(raw).to_bytes(2, "big") + raw


class Publisher:
    """Plays the gateways: DataMessages as pre-encoded QoS 1 PUBLISH packets on a socket."""

    def __init__(self, park: object, messages: int, per_message: int, prefix: str) -> None:
        from workers.meters.gateway.schemas import MeterReading

        meters = list(park.meters.values())[:5000]  # type: ignore[attr-defined]
        self.readings = [
            MeterReading.from_snapshot(m.snapshot(START)).model_dump_json(exclude_none=True)
            for m in meters
        ]
        self.messages, self.per_message, self.prefix = messages, per_message, prefix
        self.gateways = max(1, len(meters) // 50)
        self._credit, self._event = 0, asyncio.Event()

    def credit(self, received: int) -> None:
        self._credit = received
        self._event.set()

    def payload(self, seq: int) -> bytes:
        k = seq * self.per_message
        batch = ",".join(
            self.readings[(k + j) % len(self.readings)] for j in range(self.per_message)
        )
        ts = START.isoformat()
        return (
            f'{{"v":1,"msgid":"{uuid.uuid4().hex}","seq":{seq},"src":"RT","ts_collect":"{ts}",'
            f'"ts_send":"{ts}","meters":[{batch}]}}'
        ).encode()

    def packet(self, seq: int) -> bytes:
        topic = f"{self.prefix}gw/bench-gw-{seq % self.gateways:04d}/up/data".encode()
        return _packet(0x32, _str(topic) + (seq % 65535 + 1).to_bytes(2, "big") + self.payload(seq))

    async def run(self, window: int) -> int:
        """Publish every message, never more than `window` ahead of the subscriber."""
        reader, writer = await asyncio.open_connection(HOST, MQTT_PORT)
        client_id = f"shuidian-bench-pub-{uuid.uuid4().hex[:8]}".encode()
        writer.write(_packet(0x10, _str(b"MQTT") + bytes([4, 2, 0, 60]) + _str(client_id)))
        if (await asyncio.wait_for(reader.readexactly(4), 5))[3] != 0:
            raise RuntimeError("broker refused the publisher")
        pubacks = asyncio.create_task(reader.readexactly(4 * self.messages))
        self._credit, sent = 0, 0
        while sent < self.messages:
            room = min(window - (sent - self._credit), self.messages - sent, 200)
            if room <= 0:
                self._event.clear()
                await asyncio.wait_for(self._event.wait(), 30)
                continue
            writer.write(b"".join(self.packet(s) for s in range(sent, sent + room)))
            sent += room
            await writer.drain()
        # Every PUBACK read before leaving: closing with unread bytes sends a RST, and the
        # broker then throws away whatever it had not read yet.
        await asyncio.wait_for(pubacks, 60)
        writer.write(b"\xe0\x00")  # DISCONNECT; the broker closes, we read its EOF
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return sent


# -- client side -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MeterRow:
    address: str
    prepaid: bool
    port: int
    slave: int
    model: str


@dataclass
class Result:
    path: str
    unit: str
    items: int
    seconds: float
    client_cpu: float
    server_cpu: float
    broker_cpu: float
    requests: int = 0
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


class Server:
    """The `--serve` subprocess and its pipe."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin, self.stdout = proc.stdin, proc.stdout

    @classmethod
    async def start(cls, n: int, per_bus: int, seed: int) -> tuple[Server, list[MeterRow], int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.collect", "--serve", "--meters", str(n),
            "--per-bus", str(per_bus), "--seed", str(seed),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
        )  # fmt: skip
        server = cls(proc)
        layout = json.loads(await asyncio.wait_for(server.stdout.readline(), 600))
        return server, [MeterRow(*row) for row in layout["meters"]], layout["dlt645"]

    def send(self, line: str) -> None:
        self.stdin.write(line.encode() + b"\n")

    async def expect(self, word: str, within: float) -> str:
        line = (await asyncio.wait_for(self.stdout.readline(), within)).decode().strip()
        if not line.startswith(word):
            raise RuntimeError(f"simulator said {line!r}, expected {word!r}")
        return line

    async def stop(self) -> None:
        self.send("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def _broker_pid() -> int | None:
    try:
        with open("/run/mosquitto/mosquitto.pid") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


async def measure(
    path: str, unit: str, server: Server, body: Callable[[], Awaitable[tuple[int, int, int]]]
) -> Result:
    """Run `body` (-> items, requests, errors) and time it with every process's CPU."""
    broker = _broker_pid()
    c0, s0, b0 = time.process_time(), proc_cpu(server.proc.pid), proc_cpu(broker)
    t0 = time.perf_counter()
    items, requests, errors = await body()
    seconds = time.perf_counter() - t0
    return Result(
        path, unit, items, seconds, time.process_time() - c0,
        proc_cpu(server.proc.pid) - s0, proc_cpu(broker) - b0, requests, errors,
    )  # fmt: skip


def buses(rows: list[MeterRow], per_bus: int) -> list[list[MeterRow]]:
    return [rows[k : k + per_bus] for k in range(0, len(rows), per_bus)]


Body = Callable[[], Awaitable[tuple[int, int, int]]]


def dlt645_ours(rows: list[MeterRow], per_bus: int, port: int, timeout: float) -> Body:
    from workers.meters.base import MeterError
    from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub

    async def channel(group: list[MeterRow]) -> tuple[int, int]:
        hub = dlt645_hub(HOST, port, timeout=timeout, gap=0.0)
        done = errors = 0
        try:
            for driver in [Dlt645Driver(hub, row.address) for row in group]:
                try:
                    await driver.read_billing()
                    done += 1
                except MeterError:
                    errors += 1
        finally:
            await hub.close()
        return done, errors

    async def body() -> tuple[int, int, int]:
        counts = await asyncio.gather(*(channel(g) for g in buses(rows, per_bus)))
        requests = sum(len(_dlt645_dis(r.prepaid)) for r in rows)
        return sum(c[0] for c in counts), requests, sum(c[1] for c in counts)

    return body


def dlt645_raw(rows: list[MeterRow], per_bus: int, port: int, timeout: float) -> Body:
    from workers.meters.dlt645.dataid import encode_di
    from workers.meters.dlt645.framer import READ, Frame, build_frame

    frames = {
        r.address: [
            build_frame(Frame(r.address, READ, encode_di(d))) for d in _dlt645_dis(r.prepaid)
        ]
        for r in rows
    }

    async def channel(group: list[MeterRow]) -> tuple[int, int, int]:
        reader, writer = await asyncio.open_connection(HOST, port)
        done = requests = errors = 0
        try:
            for row in group:
                ok = True
                for frame in frames[row.address]:
                    async with asyncio.timeout(timeout):
                        writer.write(frame)
                        await reader.readuntil(b"\x68")  # FE preamble and the first 68
                        head = await reader.readexactly(9)  # address, 68, C, L
                        await reader.readexactly(head[8] + 2)  # data, CS, 16
                    requests += 1
                    ok = ok and not head[7] & 0x40
                done, errors = done + ok, errors + (not ok)
        finally:
            writer.close()
        return done, requests, errors

    async def body() -> tuple[int, int, int]:
        counts = await asyncio.gather(*(channel(g) for g in buses(rows, per_bus)))
        return tuple(sum(c[i] for c in counts) for i in range(3))  # type: ignore[return-value]

    return body


def _models() -> dict[str, object]:
    from workers.meters.modbus.maps import ddsy1352, dtsy1352

    return {m.model: m for m in (ddsy1352.MAP, dtsy1352.MAP)}


def modbus_ours(rows: list[MeterRow], per_bus: int, timeout: float) -> Body:
    from workers.meters.base import MeterError
    from workers.meters.modbus.driver import ModbusBus, ModbusDriver
    from workers.meters.modbus.registers import plan_blocks

    models = _models()

    async def bus(group: list[MeterRow]) -> tuple[int, int]:
        mb = ModbusBus(HOST, group[0].port, timeout=timeout)
        done = errors = 0
        try:
            for r in group:
                try:
                    await ModbusDriver(mb, r.slave, models[r.model], r.address).read_billing()
                    done += 1
                except MeterError:
                    errors += 1
        finally:
            mb.close()
        return done, errors

    async def body() -> tuple[int, int, int]:
        counts = await asyncio.gather(*(bus(g) for g in buses(rows, per_bus)))
        names = ["total", "band_1", "band_2", "band_3", "band_4", "status", "remaining"]
        requests = sum(len(plan_blocks(models[r.model], [*names, "purchase_count"])) for r in rows)
        return sum(c[0] for c in counts), requests, sum(c[1] for c in counts)

    return body


def modbus_raw(rows: list[MeterRow], per_bus: int, timeout: float) -> Body:
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ModbusException

    from workers.meters.modbus.registers import plan_blocks

    names = ["total", "band_1", "band_2", "band_3", "band_4", "status", "remaining"]
    blocks = {
        name: [(b.address, b.count) for b in plan_blocks(m, [*names, "purchase_count"])]  # type: ignore[arg-type]
        for name, m in _models().items()
    }

    async def bus(group: list[MeterRow]) -> tuple[int, int, int]:
        client = AsyncModbusTcpClient(
            HOST, port=group[0].port, timeout=timeout, retries=0, reconnect_delay=0
        )
        await client.connect()
        done = requests = errors = 0
        try:
            for r in group:
                ok = True
                for address, count in blocks[r.model]:
                    try:
                        reply = await client.read_holding_registers(
                            address, count=count, device_id=r.slave
                        )
                        ok = ok and not reply.isError()
                    except ModbusException:
                        ok = False
                    requests += 1
                done, errors = done + ok, errors + (not ok)
        finally:
            client.close()
        return done, requests, errors

    async def body() -> tuple[int, int, int]:
        counts = await asyncio.gather(*(bus(g) for g in buses(rows, per_bus)))
        return tuple(sum(c[i] for c in counts) for i in range(3))  # type: ignore[return-value]

    return body


class Tally:
    """Messages counted by a subscriber; credits the publisher every 100."""

    def __init__(self, server: Server, expected: int) -> None:
        self.server, self.expected = server, expected
        self.messages = self.readings = 0
        self.done = asyncio.Event()

    def seen(self, readings: int) -> None:
        self.messages += 1
        self.readings += readings
        if self.messages % 100 == 0 or self.messages >= self.expected:
            self.server.send(f"ack {self.messages}")
        if self.messages >= self.expected:
            self.done.set()


def mqtt_body(
    server: Server, prefix: str, messages: int, per_message: int, window: int, ours: bool
) -> Body:
    import aiomqtt

    from workers.meters.gateway.client import GatewayClient
    from workers.meters.gateway.schemas import DataMessage

    bound = 30 + messages / 500  # seconds; even a slow machine does more than 500/s

    async def subscribe(tally: Tally) -> int:
        """Count until done; returns what was dropped as invalid."""
        if ours:

            async def on_data(gw: str, msg: DataMessage) -> None:
                tally.seen(len(msg.meters))

            async with GatewayClient(HOST, MQTT_PORT, prefix=prefix, on_data=on_data) as gc:
                server.send(f"go {window}")
                await asyncio.wait_for(tally.done.wait(), bound)
            return gc.stats["dropped"]
        identifier = f"shuidian-bench-raw-{uuid.uuid4().hex[:8]}"
        async with aiomqtt.Client(HOST, MQTT_PORT, identifier=identifier) as client:
            await client.subscribe(f"{prefix}gw/+/up/data", qos=1)
            server.send(f"go {window}")

            async def count() -> None:
                async for _ in client.messages:
                    tally.seen(per_message)
                    if tally.done.is_set():
                        return

            await asyncio.wait_for(count(), bound)
        return 0

    async def body() -> tuple[int, int, int]:
        tally = Tally(server, messages)
        try:
            dropped = await subscribe(tally)
        except TimeoutError:
            dropped = messages - tally.messages
        await server.expect("published", 30)
        return tally.messages, tally.readings, dropped

    return body


# -- the run -----------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> list[Result]:
    """Each path raw and ours, `--rounds` times, the order flipped every round."""
    n, k, t, m = args.meters, args.per_bus, args.timeout, args.messages
    server, rows, dlt_port = await Server.start(n, k, args.seed)
    prefix = f"bench-{os.getpid()}/"
    paths: list[tuple[str, str, Callable[[bool], Body]]] = []
    if "dlt645" in args.paths:
        dlt = (dlt645_ours, dlt645_raw)
        paths.append(("DL/T 645", "meters", lambda o: dlt[not o](rows, k, dlt_port, t)))
    if "modbus" in args.paths:
        mb = (modbus_ours, modbus_raw)
        paths.append(("Modbus TCP", "meters", lambda o: mb[not o](rows, k, t)))
    if "mqtt" in args.paths:
        per, w = args.per_message, args.window
        paths.append(("MQTT", "messages", lambda o: mqtt_body(server, prefix, m, per, w, o)))
        server.send(f"prep {m} {per} {prefix}")
        await server.expect("ready", 600)
    out: list[Result] = []
    try:
        for name, unit, make in paths:
            for r in range(args.rounds):
                for ours in (r % 2 == 1, r % 2 == 0):
                    label = f"{name} {'ours' if ours else 'raw'}"
                    out.append(await measure(label, unit, server, make(ours)))
    finally:
        await server.stop()
    return out


def report(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"collect benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"{args.meters} meters ({args.per_bus} per bus, all buses at once), "
        f"{args.messages} messages x {args.per_message} reading(s), {args.rounds} round(s)",
        f"{'path':<16}{'items':>16}{'wall s':>8}{'rate /s':>9}{'req/rd':>9}{'err':>5}"
        f"{'client us/item':>15}{'CPU s: client':>14}{'sim':>6}{'broker':>7}",
    ]
    for r in results:
        lines.append(
            f"{r.path:<16}{r.items:>7} {r.unit:<8}{r.seconds:>8.2f}{r.rate:>9.0f}"
            f"{r.requests:>9}{r.errors:>5}{r.client_cpu / max(r.items, 1) * 1e6:>15.0f}"
            f"{r.client_cpu:>14.2f}{r.server_cpu:>6.2f}{r.broker_cpu:>7.2f}"
        )
    lines.append("summary over all rounds (rate = items / wall seconds):")
    for family in dict.fromkeys(r.path.rsplit(" ", 1)[0] for r in results):
        ours = [r for r in results if r.path == f"{family} ours"]
        raw = [r for r in results if r.path == f"{family} raw"]
        rate = {
            k: sum(r.items for r in v) / sum(r.seconds for r in v)
            for k, v in (("o", ours), ("r", raw))
        }
        cpu = {
            k: sum(r.client_cpu for r in v) / sum(r.items for r in v)
            for k, v in (("o", ours), ("r", raw))
        }
        lines.append(
            f"  {family:<11} ours {rate['o']:>7.0f}/s  raw {rate['r']:>7.0f}/s  "
            f"ours/raw {rate['o'] / rate['r']:.2f}   client CPU per item ours/raw "
            f"{cpu['o'] * 1e6:.0f}/{cpu['r'] * 1e6:.0f} us  slowest ours round "
            f"{max(r.seconds for r in ours):.1f} s"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.collect", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=2000)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--per-bus", type=int, default=32, help="meters behind one channel / bus")
    p.add_argument("--per-message", type=int, default=1, help="readings in one MQTT message")
    p.add_argument("--window", type=int, default=800, help="messages in flight, < 1000")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2, help="raw/ours pairs, order flipped")
    p.add_argument("--paths", default="dlt645,modbus,mqtt")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.meters, args.per_bus, args.seed))
        return 0
    print(report(asyncio.run(run(args)), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
