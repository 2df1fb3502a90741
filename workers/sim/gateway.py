"""A simulated MQTT gateway in front of a set of SimMeters (contract: docs/gateway-protocol.md).

Each `collect()` reads every meter and publishes realtime readings (`src=RT`) in messages
of up to `batch` meters. Fault switches, flipped by tests and the demo:

- `set_link(False)`: the uplink is "down": readings are buffered, commands are not heard,
  and the retained status turns offline (what the broker's last will would publish).
  `set_link(True)` publishes online and replays the buffer in collection order with
  `src=HIS`, the original `ts_collect` and a fresh, growing `seq`.
- `duplicates`: every message and ack is published twice (same msgid / seq), like a QoS 1
  redelivery.
- `reorder`: a replay is published in shuffled order (its seq still numbers collection
  order, so the platform can see the reordering).
- `drop_commands`: commands are silently ignored, so the platform's request times out.
- `instant_every`: U, I, P, PF (`u`, `i`, `p`, `pf`) ride in every Nth round's readings
  (1: every round; 0: never, like a gateway that predates those fields).

A command is executed at most once per cmd_id; a redelivered command gets the first ack.

The gateway reconnects by itself after the broker restarts (see `SimGateway`), buffering
while it is away and replaying as history when it is back, like a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Self

import aiomqtt
from pydantic import ValidationError

from workers.meters.base import MeterSnapshot
from workers.meters.gateway.schemas import (
    Ack,
    AckError,
    Command,
    DataMessage,
    GatewayStatus,
    MeterReading,
    Op,
    Source,
)
from workers.meters.gateway.topics import TopicKind, topic
from workers.sim.clock import SimClock
from workers.sim.meter import SimMeter, SimRechargeRefused, SimRefused

log = logging.getLogger(__name__)

ACKS_REMEMBERED = 1000


class SimGateway:
    """Use as `async with SimGateway(...) as gw:`; call `collect()` or `run(stop)`.

    Like a real gateway it keeps its uplink by itself: when the broker goes away (a restart,
    a network cut) it buffers what it collects, reconnects every `retry` seconds and, once
    connected again, replays the buffer as history (`src=HIS`). Only the first connection,
    in `__aenter__`, raises when the broker is unreachable.
    """

    def __init__(
        self,
        gw_id: str,
        meters: dict[str, SimMeter],
        clock: SimClock,
        hostname: str = "127.0.0.1",
        port: int = 1883,
        *,
        prefix: str = "",
        batch: int = 50,
        seed: int = 0,
        retry: float = 0.2,
        instant_every: int = 1,
    ) -> None:
        self.gw_id, self.meters, self.clock, self.prefix, self.batch = (
            gw_id,
            meters,
            clock,
            prefix,
            batch,
        )
        self.hostname, self.port, self.retry = hostname, port, retry
        self.link_up = True
        self.duplicates = False
        self.reorder = False
        self.drop_commands = False
        self.instant_every = instant_every
        self.rounds = 0  # collect() calls so far
        self.seq = 0
        self.buffer: list[tuple[datetime, list[MeterReading]]] = []
        self.connected = asyncio.Event()
        self.connects = 0
        self._acks: OrderedDict[str, Ack] = OrderedDict()
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._mqtt: aiomqtt.Client | None = None

    def _topic(self, kind: TopicKind) -> str:
        return topic(self.gw_id, kind, self.prefix)

    async def __aenter__(self) -> Self:
        await self._connect(online=True)
        self._task = asyncio.create_task(self._keep(), name=f"simgw-{self.gw_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._mqtt is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish_status(False)
        await self._drop()

    # -- the uplink -------------------------------------------------------------------------
    async def _connect(self, *, online: bool) -> None:
        client = aiomqtt.Client(
            self.hostname,
            self.port,
            identifier=f"shuidian-simgw-{self.gw_id}-{uuid.uuid4().hex[:6]}",
            will=aiomqtt.Will(self._topic(TopicKind.STATUS), _status(False), qos=1, retain=True),
        )
        await client.__aenter__()
        self._mqtt = client
        try:
            await client.subscribe(self._topic(TopicKind.CMD), qos=1)
            await self._publish_status(online)
        except BaseException:
            await self._drop()
            raise
        self.connects += 1
        self.connected.set()

    async def _drop(self) -> None:
        """Forget the current connection (it may already be dead)."""
        client, self._mqtt = self._mqtt, None
        self.connected.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _keep(self) -> None:
        """Listen for commands; when the connection is lost, reconnect and replay."""
        down_logged = False
        while True:
            try:
                if self._mqtt is None:
                    await self._connect(online=self.link_up)
                    log.info("sim gateway %s reconnected", self.gw_id)
                    down_logged = False
                    if self.link_up:
                        await self.replay()
                await self._listen(self._mqtt)  # type: ignore[arg-type]
            except aiomqtt.MqttError as exc:
                if not down_logged:
                    log.warning("sim gateway %s lost the broker: %s", self.gw_id, exc)
                    down_logged = True
            await self._drop()
            await asyncio.sleep(self.retry)

    async def _publish_status(self, online: bool) -> None:
        if self._mqtt is None:
            raise aiomqtt.MqttError("not connected")
        await self._mqtt.publish(self._topic(TopicKind.STATUS), _status(online), qos=1, retain=True)

    async def _publish(self, kind: TopicKind, payload: str) -> None:
        for _ in range(2 if self.duplicates else 1):
            if self._mqtt is None:
                raise aiomqtt.MqttError("not connected")
            await self._mqtt.publish(self._topic(kind), payload, qos=1)

    # -- readings ---------------------------------------------------------------------------
    async def collect(self) -> None:
        """Read every meter now; publish (link up and connected) or buffer (otherwise)."""
        ts = self.clock.now()
        every, self.rounds = self.instant_every, self.rounds + 1
        with_instant = every > 0 and (self.rounds - 1) % every == 0
        readings = [
            MeterReading.from_snapshot(_snapshot(m, ts, with_instant)) for m in self.meters.values()
        ]
        chunks = [readings[i : i + self.batch] for i in range(0, len(readings), self.batch)]
        for k, chunk in enumerate(chunks):
            if not (self.link_up and self.connected.is_set()):
                self.buffer.extend((ts, c) for c in chunks[k:])
                return
            try:
                await self._send(Source.REALTIME, ts, chunk)
            except aiomqtt.MqttError:
                # Maybe delivered, maybe not: keep it; a replayed duplicate is a no-op upstream.
                self.buffer.extend((ts, c) for c in chunks[k:])
                return

    def _message(self, src: Source, ts: datetime, chunk: list[MeterReading]) -> DataMessage:
        self.seq += 1
        return DataMessage(
            msgid=uuid.uuid4().hex,
            seq=self.seq,
            src=src,
            ts_collect=ts,
            ts_send=self.clock.now(),
            meters=chunk,
        )

    async def _send(self, src: Source, ts: datetime, chunk: list[MeterReading]) -> None:
        msg = self._message(src, ts, chunk)
        await self._publish(TopicKind.DATA, msg.model_dump_json(exclude_none=True))

    async def set_link(self, up: bool) -> None:
        """Flip the uplink; coming back up replays what was buffered as history."""
        if up == self.link_up:
            return
        self.link_up = up
        with contextlib.suppress(aiomqtt.MqttError):  # disconnected: the will said offline
            await self._publish_status(up)
        if up and self.connected.is_set():
            await self.replay()

    async def replay(self) -> None:
        """Publish the buffer as history; what cannot be sent now stays buffered."""
        backlog, self.buffer = self.buffer, []
        messages = [
            (self._message(Source.HISTORY, ts, chunk), (ts, chunk)) for ts, chunk in backlog
        ]
        if self.reorder:
            self._rng.shuffle(messages)
        for k, (msg, _) in enumerate(messages):
            try:
                await self._publish(TopicKind.DATA, msg.model_dump_json(exclude_none=True))
            except aiomqtt.MqttError:
                self.buffer[:0] = [item for _, item in messages[k:]]
                raise

    async def run(self, period: float, stop: asyncio.Event) -> None:
        """Collect every `period` real seconds until `stop` is set."""
        while not stop.is_set():
            await self.collect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    # -- commands ---------------------------------------------------------------------------
    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not self.link_up or self.drop_commands:
                continue
            raw = bytes(message.payload or b"")
            try:
                cmd = Command.model_validate_json(raw)
            except ValidationError as exc:
                await self._refuse_bad(raw, exc)
                continue
            try:
                ack = self._acks.get(cmd.cmd_id) or self._execute(cmd)
                self._remember(ack)
                await self._publish(TopicKind.ACK, ack.model_dump_json(exclude_none=True))
            except Exception:  # one bad command must not stop the gateway
                log.exception("sim gateway %s: command %s failed", self.gw_id, cmd.cmd_id)

    async def _refuse_bad(self, raw: bytes, exc: ValidationError) -> None:
        """Ack `bad_command` when a cmd_id can be found, else drop with a log line."""
        try:
            cmd_id = json.loads(raw).get("cmd_id")
        except (ValueError, AttributeError):
            cmd_id = None
        if not isinstance(cmd_id, str) or not 1 <= len(cmd_id) <= 64:
            log.warning("sim gateway %s: unreadable command dropped: %s", self.gw_id, exc)
            return
        ack = Ack(
            cmd_id=cmd_id,
            ok=False,
            error=AckError.BAD_COMMAND,
            message=str(exc.errors()[0]["msg"]),
            ts=datetime.now(UTC),
        )
        await self._publish(TopicKind.ACK, ack.model_dump_json(exclude_none=True))

    def _remember(self, ack: Ack) -> None:
        self._acks[ack.cmd_id] = ack
        while len(self._acks) > ACKS_REMEMBERED:
            self._acks.popitem(last=False)

    def _execute(self, cmd: Command) -> Ack:
        now = datetime.now(UTC)
        meter = self.meters.get(cmd.addr)
        if cmd.expires_at <= now:
            return _fail(cmd, now, AckError.EXPIRED)
        if meter is None:
            return _fail(cmd, now, AckError.UNKNOWN_METER)
        try:
            _apply(meter, cmd)
        except SimRechargeRefused as exc:
            return _fail(cmd, now, AckError.RECHARGE_REFUSED, exc.code, str(exc))
        except SimRefused as exc:
            return _fail(cmd, now, AckError.REFUSED, exc.code, str(exc))
        reading = MeterReading.from_snapshot(meter.snapshot(self.clock.now()))
        return Ack(cmd_id=cmd.cmd_id, ok=True, ts=now, meter=reading)


def _apply(meter: SimMeter, cmd: Command) -> None:
    if cmd.op is Op.RELAY and cmd.action is not None:
        meter.relay_action(cmd.action)
    elif cmd.op is Op.RECHARGE and cmd.amount_fen is not None and cmd.count is not None:
        meter.recharge(cmd.amount_fen, cmd.count)
    elif cmd.op is Op.PRICES and cmd.prices is not None:
        meter.set_prices(cmd.prices)
    elif cmd.op is Op.ALARMS and cmd.alarm_1_fen is not None and cmd.alarm_2_fen is not None:
        meter.set_alarm_amounts(cmd.alarm_1_fen, cmd.alarm_2_fen)


def _fail(
    cmd: Command, now: datetime, error: AckError, code: int | None = None, text: str = ""
) -> Ack:
    return Ack(cmd_id=cmd.cmd_id, ok=False, error=error, code=code, message=text or None, ts=now)


def _status(online: bool) -> str:
    return GatewayStatus(online=online, ts=datetime.now(UTC)).model_dump_json()


def _snapshot(meter: SimMeter, at: datetime, with_instant: bool) -> MeterSnapshot:
    snap = meter.snapshot(at)
    return snap if with_instant else dataclasses.replace(snap, instant=None)
